"""What the plugin left on the host and on disk, for tests to compare before and after."""

from __future__ import annotations

import os

from tests.support import hostnet


def our_ports(bridge: str) -> dict[str, dict]:
    """The ports on `bridge`, its own local port left out."""
    return {n: p for n, p in hostnet.ovs_ports().items() if p["bridge"] == bridge and n != bridge}


def leases(state_dir: str) -> list[str]:
    """Addresses leased on disk by the local allocator; its owner index must match them."""
    addresses, owners = [], []
    for root, _, files in os.walk(os.path.join(state_dir, "ipam")):
        kind = os.path.basename(root)
        (addresses if kind == "addr" else owners if kind == "owner" else []).extend(files)
    assert len(owners) == len(addresses), (owners, addresses)
    return sorted(addresses)
