"""What the plugin left on the host and on disk, for tests to compare before and after."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.support import hostnet


def our_ports(bridge: str) -> dict[str, dict]:
    """The ports on `bridge`, its own local port left out."""
    return {n: p for n, p in hostnet.ovs_ports().items() if p["bridge"] == bridge and n != bridge}


def forget_config_cache(folder: str) -> None:
    """Remove the config cache entries (in /run/vlanpipe) of config files under `folder`:
    plugin calls made with a config there leave one each."""
    from plugin.config import cache

    mine = os.path.basename(cache.entry_path(folder))[:-len(".json")]
    try:
        names = os.listdir(cache.RUNTIME_DIR)
    except OSError:
        return
    for name in names:
        if name.startswith(mine):
            try:
                os.unlink(os.path.join(cache.RUNTIME_DIR, name))
            except FileNotFoundError:
                pass


def leases(state_dir: str) -> list[str]:
    """Addresses leased on disk by the local allocator; its owner index must match them."""
    addresses, owners = [], []
    for root, _, files in os.walk(os.path.join(state_dir, "ipam")):
        kind = os.path.basename(root)
        (addresses if kind == "addr" else owners if kind == "owner" else []).extend(files)
    assert len(owners) == len(addresses), (owners, addresses)
    return sorted(addresses)


def log_records(log_file: str) -> list[dict[str, Any]]:
    """The plugin's JSON log lines (debug lines, which are not JSON, left out)."""
    try:
        with open(log_file, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.startswith("{")]
    except FileNotFoundError:
        return []


def failing_ip(directory: Path) -> str:
    """A folder to put first on PATH whose `ip` fails `addr add` and runs the real one
    otherwise: pipework then fails after it made the veth, the port and the netns link."""
    directory.mkdir()
    ip = directory / "ip"
    ip.write_text('#!/bin/sh\ncase "$*" in *"addr add"*) echo "injected failure" >&2; exit 2;; '
                  'esac\nexec /usr/sbin/ip "$@"\n')
    ip.chmod(0o755)
    return str(directory)
