"""Where the cluster-wide allocator and the pins live: `plugin.config.etcd` reads the
node config's `etcd` section into this, the etcd client connects by it.

A module of its own, loaded only on a node whose config has an `etcd` section: every
call reads the config, and a node without etcd builds no part of it (issue 23).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EtcdConfig:
    """Where the cluster-wide allocator and the pins live."""

    endpoints: tuple[str, ...]
    prefix: str = "/vlanpipe"
    timeout: float = 5.0
    ca_cert: str | None = None
    cert: str | None = None
    key: str | None = None
