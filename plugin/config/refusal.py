"""How a tenant's network config is refused: one line naming the key, its value and
why, and who can change it (the tenant, or the node's administrator)."""

from __future__ import annotations

from typing import Any

from plugin.errors import SHOWN, ConfigError, shown


def invalid(key: str, value: Any, why: str) -> ConfigError:
    """A network config's key that is not what the key may be: the tenant can fix it."""
    return ConfigError(f"network config key '{key}' = {shown(value)} {why}",
                       "fix the network config (the file in /etc/cni/net.d or the "
                       "NetworkAttachmentDefinition)")


def refused(key: str, value: Any, why: str) -> ConfigError:
    """A network config's key that the node does not allow: the tenant or the node's
    administrator can change it."""
    return ConfigError(f"network config key '{key}' = {shown(value)} {why}",
                       "change the network config, or ask the node's administrator (the node "
                       "config's cni section)")


def named(key: str) -> str:
    """A key as a message shows it inside its dotted path: escaped, cut short, unquoted."""
    text = ascii(key)[1:-1]
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."
