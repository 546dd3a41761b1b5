"""Bandwidth limits in the node config (a network's `bandwidth`, the node's
`bandwidth_max`), read with the CNI bandwidth plugin's keys and units."""

from __future__ import annotations

from plugin.config.reader import Section
from plugin.errors import ConfigError
from plugin.policy.bandwidth import Bandwidth
from plugin.policy.bandwidth import parse as parse_limits


def parse_bandwidth(s: Section, name: str) -> Bandwidth:
    """Limits in the CNI bandwidth plugin's keys and units (`plugin.policy.bandwidth`)."""
    try:
        return parse_limits(s.raw(name, None), f"config {s.source}: {s.key(name)}")
    except ValueError as exc:
        raise ConfigError(str(exc), "fix the file or remove the key to take the default") \
            from None
