"""Announce a pod's address to its neighbours, from inside the pod, with no process.

When a pod moves to another node with the same address and MAC, the switches
keep sending its MAC to the port they last heard it on, and the pod stays
unreachable until something it sends passes through them. So setup sends one
gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6) from the
pod's interface: every switch on the VLAN learns the new port at once.

arping would do it in a process that waits a second after its one packet;
here a worker thread enters the pod's network namespace (`inside`), opens a
packet socket bound to the interface and sends. Nothing outlives the call, and
it takes about a millisecond.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from pipework_wrapper.inside import inside
from pipework_wrapper.timing import timed

ETH_P_ARP, ETH_P_IPV6 = 0x0806, 0x86DD
ALL_NODES = ipaddress.IPv6Address("ff02::1")


def announce(netns: str, ifname: str, addresses: list[str], timeout: float = 5.0) -> None:
    """One announcement of each address (`a.b.c.d/len` or an IPv6 one) on `ifname`."""
    with timed("announce"):
        inside(netns, lambda: _send(ifname, addresses),
               f"announce {', '.join(addresses)} on {ifname}", timeout)


def _send(ifname: str, addresses: list[str]) -> None:
    """From a packet socket bound to `ifname` (in the current thread's namespace)."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((ifname, 0))
        mac = sock.getsockname()[4]
        if len(mac) != 6:
            raise OSError(f"{ifname} is not an Ethernet interface")
        for address in addresses:
            sock.send(frame(mac, ipaddress.ip_interface(address).ip))


def frame(mac: bytes, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    """The Ethernet frame that announces `address` at `mac`."""
    if address.version == 4:
        return _gratuitous_arp(mac, address)
    return _unsolicited_advertisement(mac, address)


def _gratuitous_arp(mac: bytes, address: ipaddress.IPv4Address) -> bytes:
    """An ARP request for the sender's own address to broadcast (RFC 5227's announcement)."""
    ethernet = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, address.packed,
                      bytes(6), address.packed)
    return (ethernet + arp).ljust(60, b"\0")


def _unsolicited_advertisement(mac: bytes, address: ipaddress.IPv6Address) -> bytes:
    """A neighbour advertisement to all nodes, Override set, with the link-layer address
    (RFC 4861 7.2.6)."""
    icmp = struct.pack("!BBHI16sBB6s", 136, 0, 0, 0x20000000, address.packed, 2, 1, mac)
    pseudo = address.packed + ALL_NODES.packed + struct.pack("!I3xB", len(icmp), 58)
    icmp = icmp[:2] + struct.pack("!H", checksum(pseudo + icmp)) + icmp[4:]
    ipv6 = struct.pack("!IHBB16s16s", 6 << 28, len(icmp), 58, 255, address.packed,
                       ALL_NODES.packed)
    return b"\x33\x33\x00\x00\x00\x01" + mac + struct.pack("!H", ETH_P_IPV6) + ipv6 + icmp


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): of ICMPv6 over its pseudo-header here and for the
    probe's neighbour solicitation (`pipework_wrapper.probe`), of IPv4 headers in the
    tests' crafted frames."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
