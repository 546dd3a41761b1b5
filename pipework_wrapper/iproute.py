"""Links on the host and inside a pod's network namespace, through `ip` and `nsenter`.

A pod's namespace is named by a path (`/proc/<PID>/ns/net` for a Docker
container, `/var/run/netns/cni-<uuid>` from a CRI runtime): `nsenter --net=PATH`
reaches both. Several changes inside a pod go to one `ip -batch` process.
Existence checks read /sys/class/net directly: no process for the common case.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from pipework_wrapper.command import run

NETNS_DIR = "/var/run/netns"


def link_exists(name: str) -> bool:
    return os.path.exists(os.path.join("/sys/class/net", name))


IFF_UP, IFF_PROMISC = 0x1, 0x100


def is_up(name: str) -> bool:
    """The link is administratively up (IFF_UP in sysfs flags)."""
    return bool(_flags(name) & IFF_UP)


def in_datapath(name: str) -> bool:
    """Open vSwitch's datapath has the link: both datapaths put a port's device in
    promiscuous mode when they add it (the userspace one once it reads from it), and
    nothing else here does, so the flag says "traffic from this link is switched"
    without asking OVSDB."""
    return bool(_flags(name) & IFF_PROMISC)


def _flags(name: str) -> int:
    try:
        with open(os.path.join("/sys/class/net", name, "flags"), encoding="utf-8") as handle:
            return int(handle.read(), 16)
    except (OSError, ValueError):
        return 0


def root_qdiscs(name: str, timeout: float = 10.0) -> list[str]:
    """The kinds of the root queueing disciplines on a host link (`htb` once Open vSwitch
    applied a linux-htb QoS to it)."""
    result = run("tc", ["-j", "qdisc", "show", "dev", name], timeout=timeout)
    return [q.get("kind", "") for q in json.loads(result.stdout or "[]") if q.get("root")]


def set_up(name: str, timeout: float = 10.0) -> None:
    run("ip", ["link", "set", "dev", name, "up"], timeout=timeout)


def host_addresses(name: str, timeout: float = 10.0) -> list[str]:
    """The addresses on a host link that the host itself uses (link-local ones aside).
    iproute2 6.1 prints `{}` in `addr_info` for each address `scope global` filters out
    (a link-local one, on any interface that is up with IPv6): those are skipped."""
    result = run("ip", ["-j", "addr", "show", "dev", name, "scope", "global"], timeout=timeout)
    return [f"{a['local']}/{a['prefixlen']}"
            for link in json.loads(result.stdout or "[]") for a in link.get("addr_info", [])
            if "local" in a]


def tx_checksum(netns: str, ifname: str, timeout: float = 5.0) -> bool:
    """Whether the pod's `ifname` leaves checksums to transmit offload (`ethtool`)."""
    from pipework_wrapper import ethtool  # only the calls that plug or check load it

    return ethtool.tx_checksum(netns, ifname, timeout)


def link_locals(netns: str, ifname: str, timeout: float = 5.0) -> list[str]:
    """The IPv6 link-local addresses of `ifname` in the pod (`pipework_wrapper.linklocal`:
    read in-process); none if IPv6 is off on it."""
    from pipework_wrapper import linklocal  # only the calls that plug load it

    return linklocal.link_locals(netns, ifname, timeout)


def set_tx_checksum(netns: str, ifname: str, on: bool, timeout: float = 5.0) -> bool:
    """Turn the pod's `ifname` transmit checksum offload on or off; the state read back."""
    from pipework_wrapper import ethtool

    return ethtool.set_tx_checksum(netns, ifname, on, timeout)


def delete_link(name: str, timeout: float = 10.0) -> bool:
    """Delete a host link (a veth takes its peer with it); False if it was not there."""
    if not link_exists(name):
        return False
    result = run("ip", ["link", "del", name], timeout=timeout, ok=(0, 1))
    if result.code and link_exists(name):
        run("ip", ["link", "del", name], timeout=timeout)
    return True


@dataclass(frozen=True)
class PodLink:
    """A link inside a pod, as `ip -j addr show` gives it."""

    mac: str
    addresses: tuple[str, ...]  # "10.0.0.5/24", global scope only


def pod_link(netns: str, ifname: str, timeout: float = 10.0) -> PodLink | None:
    """`ifname` inside the namespace at `netns`; None if it is not there."""
    result = run("nsenter", [f"--net={netns}", "ip", "-j", "addr", "show", "dev", ifname],
                 timeout=timeout, ok=(0, 1))
    links = json.loads(result.stdout or "[]") if not result.code else []
    if not links:
        return None
    return PodLink(links[0].get("address", ""),
                   tuple(f"{a['local']}/{a['prefixlen']}" for a in links[0].get("addr_info", [])
                         if a.get("scope") == "global"))


def container_addresses(netns: str, ifname: str, timeout: float = 10.0) -> list[str]:
    """Addresses (with prefix) on `ifname` inside the namespace at `netns`."""
    found = pod_link(netns, ifname, timeout)
    return list(found.addresses) if found else []


def set_mtu(netns: str, ifname: str, host_ifname: str, mtu: int, timeout: float = 10.0) -> None:
    run("ip", ["link", "set", "dev", host_ifname, "mtu", str(mtu)], timeout=timeout)
    in_pod(netns, [f"link set dev {ifname} mtu {mtu}"], timeout)


def in_pod(netns: str, commands: list[str], timeout: float = 10.0) -> None:
    """`ip` commands run inside the namespace at `netns`, all in one process (`ip -batch`).
    Each is one line of words the plugin built from validated values: no shell."""
    run("nsenter", [f"--net={netns}", "ip", "-batch", "-"], timeout=timeout,
        input="".join(f"{command}\n" for command in commands).encode())


def enable_ipv6(netns: str, ifname: str, timeout: float = 10.0) -> None:
    """IPv6 on `ifname` inside the pod, without duplicate address detection (an address
    must be usable when setup returns, not tentative). Docker turns IPv6 off in its
    containers; the pod's other interfaces keep what they have."""
    conf = f"net/ipv6/conf/{ifname}"
    run("nsenter", [f"--net={netns}", "sysctl", "-q", "-w", f"{conf}/accept_dad=0",
                    f"{conf}/disable_ipv6=0"], timeout=timeout)


def ipv6_defaults(netns: str, values: tuple[str, str] | None = None,
                  timeout: float = 10.0) -> tuple[str, str]:
    """The pod's defaults for new interfaces: (disable_ipv6, accept_dad); with `values`,
    set them first (and return the former ones)."""
    keys = ("net/ipv6/conf/default/disable_ipv6", "net/ipv6/conf/default/accept_dad")
    before = run("nsenter", [f"--net={netns}", "sysctl", "-n", *keys],
                 timeout=timeout).stdout.split()
    if values is not None:  # accept_dad first: an address must never start tentative
        run("nsenter", [f"--net={netns}", "sysctl", "-q", "-w", f"{keys[1]}={values[1]}",
                        f"{keys[0]}={values[0]}"], timeout=timeout)
    return before[0], before[1]


def add_veth(host_ifname: str, netns: str, ifname: str, mac: str, mtu: int | None,
             timeout: float = 10.0) -> None:
    """A veth pair whose peer is made directly inside the pod's namespace, with its final
    name and MAC: nothing is left half-named if this process is killed."""
    size = ["mtu", str(mtu)] if mtu else []
    run("ip", ["link", "add", host_ifname, *size, "type", "veth", "peer", "name", ifname,
               *size, "address", mac, "netns", netns], timeout=timeout)
    run("ip", ["link", "set", "dev", host_ifname, "up"], timeout=timeout)


def namespace_id(netns: str) -> tuple[int, int] | None:
    """(device, inode) of a namespace path: together they name one namespace while it lives."""
    try:
        st = os.stat(netns)
    except OSError:
        return None
    return st.st_dev, st.st_ino


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
    """Whether the link was there: gc and a rollback may race on it (or an operator's `ip
    netns del`), so a link that vanishes between the look and the unlink counts as removed."""
    path = netns_link(pid)
    if not os.path.islink(path):
        return False
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return True
