"""IP address management: networks per VLAN and the allocators that serve them.

This package's own import does nothing, so reading the config (which imports
`plugin.ipam.networks`) does not load the allocators: `status` never needs them.
The core talks to `plugin.ipam.allocators.Ipam`.
"""
