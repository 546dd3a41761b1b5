"""Links on the host and inside a container, through `ip` and `nsenter`.

Existence checks read /sys/class/net directly: no process for the common case.
"""

from __future__ import annotations

import json
import os

from pipework_wrapper.command import run

NETNS_DIR = "/var/run/netns"


def link_exists(name: str) -> bool:
    return os.path.exists(os.path.join("/sys/class/net", name))


def is_up(name: str) -> bool:
    """The link is administratively up (IFF_UP in sysfs flags)."""
    try:
        with open(os.path.join("/sys/class/net", name, "flags"), encoding="ascii") as handle:
            return bool(int(handle.read(), 16) & 1)
    except (OSError, ValueError):
        return False


def set_up(name: str, timeout: float = 10.0) -> None:
    run("ip", ["link", "set", "dev", name, "up"], timeout=timeout)


def host_addresses(name: str, timeout: float = 10.0) -> list[str]:
    """The addresses on a host link that the host itself uses (link-local ones aside)."""
    result = run("ip", ["-j", "addr", "show", "dev", name, "scope", "global"], timeout=timeout)
    return [f"{a['local']}/{a['prefixlen']}"
            for link in json.loads(result.stdout or "[]") for a in link.get("addr_info", [])]


def delete_link(name: str, timeout: float = 10.0) -> bool:
    """Delete a host link (a veth takes its peer with it); False if it was not there."""
    if not link_exists(name):
        return False
    result = run("ip", ["link", "del", name], timeout=timeout, ok=(0, 1))
    if result.code and link_exists(name):
        run("ip", ["link", "del", name], timeout=timeout)
    return True


def container_addresses(pid: int, ifname: str, timeout: float = 10.0) -> list[str]:
    """Addresses (with prefix) on `ifname` inside the network namespace of `pid`."""
    result = run("nsenter", ["-t", str(pid), "-n", "ip", "-j", "addr", "show", "dev", ifname],
                 timeout=timeout, ok=(0, 1))
    if result.code:
        return []
    return [f"{a['local']}/{a['prefixlen']}"
            for link in json.loads(result.stdout or "[]") for a in link.get("addr_info", [])]


def set_mtu(pid: int, ifname: str, host_ifname: str, mtu: int, timeout: float = 10.0) -> None:
    run("ip", ["link", "set", "dev", host_ifname, "mtu", str(mtu)], timeout=timeout)
    run("nsenter", ["-t", str(pid), "-n", "ip", "link", "set", "dev", ifname, "mtu", str(mtu)],
        timeout=timeout)


def add_route(pid: int, ifname: str, destination: str, gateway: str | None,
              timeout: float = 10.0) -> None:
    """A route of the pod's network inside the container (`replace`: idempotent)."""
    via = ["via", gateway] if gateway else []
    run("nsenter", ["-t", str(pid), "-n", "ip", "route", "replace", destination, *via,
                    "dev", ifname], timeout=timeout)


def netns_link(pid: int) -> str:
    """The /var/run/netns entry pipework makes (and leaves behind when it fails)."""
    return os.path.join(NETNS_DIR, str(pid))


def has_netns_link(pid: int) -> bool:
    return os.path.lexists(netns_link(pid))


def dangling_netns_links() -> list[int]:
    """PIDs whose /var/run/netns link a failed pipework left pointing to a dead process."""
    try:
        entries = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return [int(e) for e in entries if e.isdigit()
            and os.path.islink(netns_link(int(e))) and not os.path.exists(netns_link(int(e)))]


def remove_netns_link(pid: int) -> bool:
    path = netns_link(pid)
    if os.path.islink(path):
        os.unlink(path)
        return True
    return False
