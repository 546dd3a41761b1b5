"""A pod interface's IPv6 link-local addresses, read from inside its namespace, no process.

Port security lets a pod send IPv6 only from its own addresses, and neighbour
discovery, MLD and router solicitations come from the link-local one, which the
pod's kernel makes itself (EUI-64, stable-privacy or random, as the pod's
`addr_gen_mode` says): so it is read, never assumed. The kernel adds it a moment
after the link comes up (the carrier event is handled asynchronously), so when
IPv6 is on and the interface generates one, the read waits for it, bounded.
`/proc/thread-self/net` is the namespace of the reading thread (`/proc/self/net`
would be the process's), and sysctl files opened by that thread are its namespace's.
"""

from __future__ import annotations

import ipaddress
import time

from pipework_wrapper.inside import inside
from pipework_wrapper.timing import timed

SCOPE_LINK = 0x20
WAIT = 1.0  # seconds a link-local address may take to appear once the link is up


def link_locals(netns: str, ifname: str, timeout: float = 5.0) -> list[str]:
    """The link-local addresses of `ifname` in the namespace at `netns` (none if IPv6 is
    off on it, or it makes none)."""
    with timed("linklocal"):
        return inside(netns, lambda: _wait(ifname, min(WAIT, timeout / 2)),
                      f"read the IPv6 link-local addresses of {ifname}", timeout)


def _wait(ifname: str, wait: float) -> list[str]:
    deadline = time.monotonic() + wait
    while True:
        found = _read(ifname)
        if found or not _generates(ifname) or time.monotonic() > deadline:
            return found
        time.sleep(0.002)


def _read(ifname: str) -> list[str]:
    try:
        with open("/proc/thread-self/net/if_inet6", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:  # IPv6 is off in this kernel
        return []
    found = []
    for line in lines:
        address, _, _, scope, _, name = line.split()
        if name == ifname and int(scope, 16) == SCOPE_LINK:
            found.append(str(ipaddress.IPv6Address(int(address, 16))))
    return sorted(found)


def _generates(ifname: str) -> bool:
    """Whether IPv6 is on for `ifname` and its kernel makes a link-local address."""
    conf = f"/proc/sys/net/ipv6/conf/{ifname}"
    try:
        with open(f"{conf}/disable_ipv6", encoding="utf-8") as handle:
            disabled = handle.read().strip() != "0"
        with open(f"{conf}/addr_gen_mode", encoding="utf-8") as handle:
            mode = handle.read().strip()
    except OSError:  # no IPv6 in this kernel, or no such interface
        return False
    return not disabled and mode != "1"  # 1: IN6_ADDR_GEN_MODE_NONE
