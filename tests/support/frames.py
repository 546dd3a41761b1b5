"""Crafted Ethernet frames for port-security tests, and the pod-side sender and listener.

A test builds frames here (forged or honest: ARP, IPv4/UDP, IPv6, neighbour
discovery, router advertisements, DHCP), each ending with a marker of its own
after the packet (Ethernet padding: switches forward it, stacks ignore it). The
sender and the listener run in pods' network namespaces through `nsenter --net`
with the host's Python (tests/support/frame_agent.py): the sender writes the
frames on a raw AF_PACKET socket, the listener counts, per marker, the frames its
interface receives.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import select
import struct
import subprocess
import sys
from dataclasses import dataclass
from typing import Mapping, Sequence

from pipework_wrapper.announce import checksum

AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "frame_agent.py")
BROADCAST = "ff:ff:ff:ff:ff:ff"
ALL_NODES = "ff02::1"


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def ethernet(dst: str, src: str, kind: int, payload: bytes) -> bytes:
    return _mac(dst) + _mac(src) + struct.pack("!H", kind) + payload


def arp(op: int, sha: str, spa: str, tha: str, tpa: str) -> bytes:
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + _mac(sha) \
        + ipaddress.IPv4Address(spa).packed + _mac(tha) + ipaddress.IPv4Address(tpa).packed


def ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0,
                         ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def udp4(src: str, dst: str, sport: int, dport: int, data: bytes) -> bytes:
    return ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data)


def ipv6(src: str, dst: str, next_header: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB", 6 << 28, len(payload), next_header, 255) \
        + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + payload


def icmp6(src: str, dst: str, kind: int, body: bytes) -> bytes:
    pseudo = ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed \
        + struct.pack("!IxxxB", 4 + len(body), 58)
    summed = checksum(pseudo + struct.pack("!BBH", kind, 0, 0) + body)
    return ipv6(src, dst, 58, struct.pack("!BBH", kind, 0, summed) + body)


def udp6(src: str, dst: str, sport: int, dport: int, data: bytes) -> bytes:
    return ipv6(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data)


def multicast_mac(address: str) -> str:
    tail = ipaddress.IPv6Address(address).packed[-4:]
    return "33:33:" + ":".join(f"{b:02x}" for b in tail)


def udp_from(mac: str, ip: str, data: bytes = b"guard") -> bytes:
    """A broadcast UDP datagram from `mac`/`ip` (IPv4 or IPv6)."""
    if ":" in ip:
        return ethernet(multicast_mac(ALL_NODES), mac, 0x86DD,
                        udp6(ip, ALL_NODES, 40000, 9, data))
    return ethernet(BROADCAST, mac, 0x0800, udp4(ip, "255.255.255.255", 40000, 9, data))


def arp_from(mac: str, op: int, spa: str, tpa: str) -> bytes:
    return ethernet(BROADCAST, mac, 0x0806,
                    arp(op, mac, spa, "00:00:00:00:00:00" if op == 1 else BROADCAST, tpa))


def advertisement(mac: str, source: str, target: str) -> bytes:
    """An unsolicited neighbour advertisement: `target` is at `mac` (override set)."""
    body = struct.pack("!I", 0x20000000) + ipaddress.IPv6Address(target).packed \
        + struct.pack("!BB", 2, 1) + _mac(mac)
    return ethernet(multicast_mac(ALL_NODES), mac, 0x86DD,
                    icmp6(source, ALL_NODES, 136, body))


def router_advertisement(mac: str, source: str) -> bytes:
    """A router advertisement (hop limit 64, router lifetime 1800 s) with a prefix."""
    prefix = struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) \
        + ipaddress.IPv6Address("fd00:bad::").packed
    body = struct.pack("!BBHII", 64, 0, 1800, 0, 0) + struct.pack("!BB", 1, 1) + _mac(mac) \
        + prefix
    return ethernet(multicast_mac(ALL_NODES), mac, 0x86DD, icmp6(source, ALL_NODES, 134, body))


def dhcp_offer(mac: str, source: str) -> bytes:
    """A DHCP offer (server port 67 to client port 68), broadcast."""
    body = struct.pack("!BBBBIHH", 2, 1, 6, 0, 0x1234, 0, 0x8000) + bytes(4) \
        + ipaddress.IPv4Address("10.200.0.9").packed + ipaddress.IPv4Address(source).packed \
        + bytes(4) + _mac("02:00:00:00:00:77") + bytes(10 + 64 + 128) \
        + bytes([99, 130, 83, 99, 53, 1, 2, 255])
    return ethernet(BROADCAST, mac, 0x0800, udp4(source, "255.255.255.255", 67, 68, body))


def marked(frames: Mapping[str, bytes]) -> dict[str, str]:
    """Each frame with a marker of its own appended (hex), by name; markers by name in
    `markers_of`."""
    return {name: (frame + _marker(name)).hex() for name, frame in frames.items()}


_TOKEN = secrets.token_bytes(4)


def _marker(name: str) -> bytes:
    return b"VPG" + _TOKEN + name.encode()[:16].ljust(16, b".")


def markers(names: Sequence[str]) -> dict[str, str]:
    return {name: _marker(name).hex() for name in names}


class Agent:
    """One frame agent in a namespace (`argv_prefix`: how to reach it, e.g. nsenter)."""

    def __init__(self, prefix: Sequence[str], *args: str) -> None:
        self.proc = subprocess.Popen([*prefix, sys.executable, AGENT, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ready(self, timeout: float = 30) -> "Agent":
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if readable else ""
        if not line.startswith("ready"):
            self.proc.kill()
            raise AssertionError(f"frame agent did not start: {line!r} "
                                 f"{self.proc.communicate(timeout=10)[1][-2000:]}")
        return self

    def result(self, timeout: float = 120) -> dict:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=10)
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise AssertionError(f"frame agent failed: {(err or out)[-2000:]}") from None


def nsenter(netns: str, via: Sequence[str] = ()) -> list[str]:
    return [*via, "nsenter", f"--net={netns}"]


def listen(netns: str, ifname: str, names: Sequence[str], seconds: float,
           via: Sequence[str] = ()) -> Agent:
    """A listener counting, for `seconds`, the frames on `ifname` carrying each marker."""
    return Agent(nsenter(netns, via), "listen", ifname, str(seconds),
                 json.dumps(markers(names))).ready()


def send(netns: str, ifname: str, frames: Mapping[str, bytes], repeat: int = 3,
         via: Sequence[str] = ()) -> dict:
    """Send each frame `repeat` times from `ifname` in the namespace."""
    return Agent(nsenter(netns, via), "send", ifname, str(repeat),
                 json.dumps(marked(frames))).result()


def spam(netns: str, ifname: str, frames: Mapping[str, bytes], seconds: float) -> Agent:
    """A sender already running in the namespace that waits for `ifname` to appear and then
    sends the frames in a loop for `seconds` (for the "no window" test)."""
    return Agent(nsenter(netns), "spam", ifname, str(seconds),
                 json.dumps(marked(frames))).ready()


@dataclass(frozen=True)
class Pod:
    """A pod as frames see it: where it is, its OVS port, its MAC and addresses."""

    netns: str
    ifname: str
    port: str  # its OVS port
    mac: str
    ip4: str
    ip6: str
    link_local: str


def pod_at(netns: str, ifname: str, port: str = "") -> Pod:
    out = subprocess.run(["nsenter", f"--net={netns}", "ip", "-j", "addr", "show", "dev",
                          ifname], capture_output=True, text=True, timeout=10, check=True)
    (link,) = json.loads(out.stdout)
    found = {(a["family"], a["scope"]): a["local"] for a in link["addr_info"]}
    return Pod(netns, ifname, port, link["address"], found.get(("inet", "global"), ""),
               found.get(("inet6", "global"), ""), found.get(("inet6", "link"), ""))


def heard(sender: Pod, listener: Pod, sent: dict[str, bytes]) -> dict[str, int]:
    """How many of each frame `listener` received while `sender` sent each three times."""
    listening = listen(listener.netns, listener.ifname, list(sent), seconds=3)
    send(sender.netns, sender.ifname, sent)
    return listening.result()["counts"]
