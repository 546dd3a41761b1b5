"""Ask a pod's VLAN whether anyone else already uses the pod's addresses, with no process.

An allocator knows only the leases it handed out: a node that crashed and came
back with a pod's address, a host someone configured by hand, or a lease store
restored from an old backup all put a second host on the wire with an address
the allocator thinks is free (whereabouts #75/#110/#176). Before setup returns,
it asks the VLAN itself, from the pod's interface:

- IPv4: an ARP probe in RFC 5227's format (sender IP 0.0.0.0, sender MAC the
  pod's, target the address), broadcast. A host holding the address answers it
  (Linux does, for a request from 0.0.0.0), and its answer names its MAC.
- IPv6: duplicate address detection's neighbour solicitation (RFC 4862 5.4.2:
  source ::, destination the address's solicited-node multicast group, no
  link-layer option). A host holding the address answers with a neighbour
  advertisement to all nodes.

One probe per address, then one short wait for every answer at once: RFC
5227's full timing (three probes over seconds) would cost every pod seconds,
while a host on the same VLAN answers in about a millisecond. A probe of the
same address from another MAC (someone else setting it up right now) counts as
a conflict too, as both RFCs say.

A worker thread enters the pod's namespace (`inside`) and uses a packet socket
bound to the interface, opened before the probes leave so no answer is missed.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import time
from dataclasses import dataclass
from typing import Union

from pipework_wrapper.announce import ETH_P_ARP, ETH_P_IPV6, checksum
from pipework_wrapper.inside import inside
from pipework_wrapper.timing import timed

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # sll_pkttype of a frame this socket's host sent: our own probes
NEIGHBOUR_SOLICITATION, NEIGHBOUR_ADVERTISEMENT = 135, 136
UNSPECIFIED = ipaddress.IPv6Address("::")


@dataclass(frozen=True)
class Answer:
    """Another host on the VLAN that uses `address` (the IP, no prefix): its MAC."""

    address: str
    mac: str


def probe(netns: str, ifname: str, addresses: list[str], wait: float,
          timeout: float = 5.0) -> list[Answer]:
    """Probe each address (`a.b.c.d/len` or IPv6) from `ifname` and listen `wait` seconds;
    the first other MAC heard for each address, in `addresses`' order."""
    with timed("probe"):
        return inside(netns, lambda: _probe(ifname, addresses, wait),
                      f"probe {', '.join(addresses)} on {ifname}", timeout + wait)


def _probe(ifname: str, addresses: list[str], wait: float) -> list[Answer]:
    wanted = [ipaddress.ip_interface(a).ip for a in addresses]
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.bind((ifname, ETH_P_ALL))
        mac = sock.getsockname()[4]
        if len(mac) != 6:
            raise OSError(f"{ifname} is not an Ethernet interface")
        for address in wanted:
            sock.send(frame(mac, address))
        found: dict[str, Answer] = {}
        deadline = time.monotonic() + wait
        while len(found) < len(wanted):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            data, where = sock.recvfrom(2048)
            if where[2] == PACKET_OUTGOING:
                continue
            answer = conflict(data, mac, wanted)
            if answer is not None:
                found.setdefault(answer.address, answer)
    return [found[str(a)] for a in wanted if str(a) in found]


def frame(mac: bytes, address: Address) -> bytes:
    """The Ethernet frame that probes for `address` from `mac`."""
    if address.version == 4:
        return _arp_probe(mac, address)
    return _dad_solicitation(mac, address)


def _arp_probe(mac: bytes, address: ipaddress.IPv4Address) -> bytes:
    """RFC 5227 2.1.1: an ARP request, sender IP all zeroes, target hardware address zero."""
    ethernet = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, bytes(4), bytes(6),
                      address.packed)
    return (ethernet + arp).ljust(60, b"\0")


def solicited_node(address: ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    """ff02::1:ffXX:XXXX, the group every holder of `address` listens on (RFC 4291 2.7.1)."""
    return ipaddress.IPv6Address(b"\xff\x02" + bytes(9) + b"\x01\xff" + address.packed[13:])


def _dad_solicitation(mac: bytes, address: ipaddress.IPv6Address) -> bytes:
    """RFC 4862 5.4.2: a neighbour solicitation for `address` from ::, to its solicited-node
    group, hop limit 255, without a source link-layer option (RFC 4861 4.3 forbids one
    from ::)."""
    group = solicited_node(address)
    icmp = struct.pack("!BBHI16s", NEIGHBOUR_SOLICITATION, 0, 0, 0, address.packed)
    pseudo = UNSPECIFIED.packed + group.packed + struct.pack("!I3xB", len(icmp), 58)
    icmp = icmp[:2] + struct.pack("!H", checksum(pseudo + icmp)) + icmp[4:]
    ipv6 = struct.pack("!IHBB16s16s", 6 << 28, len(icmp), 58, 255, UNSPECIFIED.packed,
                       group.packed)
    return b"\x33\x33" + group.packed[12:] + mac + struct.pack("!H", ETH_P_IPV6) + ipv6 + icmp


def conflict(data: bytes, mac: bytes, wanted: list[Address]) -> Answer | None:
    """The conflict a received frame shows, if any: another MAC that uses (ARP sender, IPv6
    neighbour advertisement) or probes for (ARP probe, DAD solicitation) a wanted address."""
    if len(data) < 14:
        return None
    kind = struct.unpack("!H", data[12:14])[0]
    if kind == ETH_P_ARP:
        return _arp_conflict(data[14:], mac, wanted)
    if kind == ETH_P_IPV6:
        return _ipv6_conflict(data, mac, wanted)
    return None


def _arp_conflict(arp: bytes, mac: bytes, wanted: list[Address]) -> Answer | None:
    if len(arp) < 28:
        return None
    htype, ptype, hlen, plen, op, sha, spa, _, tpa = struct.unpack("!HHBBH6s4s6s4s", arp[:28])
    if (htype, ptype, hlen, plen) != (1, 0x0800, 6, 4) or sha == mac:
        return None
    sender, target = ipaddress.IPv4Address(spa), ipaddress.IPv4Address(tpa)
    if sender in wanted:  # a reply, or any ARP the holder sends about itself
        return Answer(str(sender), _mac(sha))
    if op == 1 and int(sender) == 0 and target in wanted:  # another probe for it
        return Answer(str(target), _mac(sha))
    return None


def _ipv6_conflict(data: bytes, mac: bytes, wanted: list[Address]) -> Answer | None:
    """Neighbour discovery right after the IPv6 header (no extension header: RFC 4861's
    messages carry none in practice, and hop limit 255 says they were not routed)."""
    if len(data) < 14 + 40 + 24 or data[6:12] == mac:
        return None
    ipv6, icmp = data[14:54], data[54:]
    if ipv6[6] != 58 or ipv6[7] != 255:
        return None
    source = ipaddress.IPv6Address(ipv6[8:24])
    target = ipaddress.IPv6Address(icmp[8:24])
    if target not in wanted:
        return None
    if icmp[0] == NEIGHBOUR_ADVERTISEMENT:
        return Answer(str(target), _mac(_target_link_layer(icmp[24:]) or data[6:12]))
    if icmp[0] == NEIGHBOUR_SOLICITATION and source == UNSPECIFIED:
        return Answer(str(target), _mac(data[6:12]))
    return None


def _target_link_layer(options: bytes) -> bytes | None:
    """The target link-layer address option (type 2) of an advertisement, if it has one."""
    while len(options) >= 8:
        kind, length = options[0], options[1] * 8
        if length == 0:
            return None
        if kind == 2 and length >= 8:
            return options[2:8]
        options = options[length:]
    return None


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)
