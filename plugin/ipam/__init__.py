"""IP address management: networks per VLAN and the allocators that serve them.

This package's own import does nothing, so reading the config (which imports
`plugin.ipam.networks`, the types it parses into) does not load the allocators:
`status` never needs them. The core talks to `plugin.ipam.allocators.Allocators`.
"""
