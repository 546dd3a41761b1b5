"""The conflict probe's frames and how answers are read (pipework_wrapper/probe.py): pure
bytes, checked field by field against RFC 5227 (ARP probe) and RFC 4862/4861 (duplicate
address detection). The real wire: tests/e2e/test_conflict_probe.py."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from pipework_wrapper import probe
from pipework_wrapper.announce import checksum

MAC = bytes.fromhex("0a580a160007")
OTHER = bytes.fromhex("02aabbccddee")
V4 = ipaddress.ip_address("10.22.0.7")
V6 = ipaddress.ip_address("fd00:22::1:2:3")


def arp(op: int, sha: bytes, spa: str, tha: bytes, tpa: str, dst: bytes = b"\xff" * 6) -> bytes:
    return (dst + sha + b"\x08\x06" + struct.pack(
        "!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, ipaddress.IPv4Address(spa).packed, tha,
        ipaddress.IPv4Address(tpa).packed)).ljust(60, b"\0")


def neighbour(kind: int, src_mac: bytes, source: str, target: str, options: bytes = b"",
              hops: int = 255) -> bytes:
    icmp = struct.pack("!BBHI16s", kind, 0, 0, 0, ipaddress.IPv6Address(target).packed) + options
    ipv6 = struct.pack("!IHBB16s16s", 6 << 28, len(icmp), 58, hops,
                       ipaddress.IPv6Address(source).packed,
                       ipaddress.IPv6Address("ff02::1").packed)
    return b"\x33\x33\x00\x00\x00\x01" + src_mac + b"\x86\xdd" + ipv6 + icmp


def test_the_arp_probe_has_rfc_5227s_fields():
    frame = probe.frame(MAC, V4)
    assert len(frame) == 60 and frame[:6] == b"\xff" * 6 and frame[6:12] == MAC
    assert frame[12:14] == b"\x08\x06"
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = struct.unpack("!HHBBH6s4s6s4s",
                                                                     frame[14:42])
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)  # a request
    assert sha == MAC and spa == bytes(4)  # sender IP 0.0.0.0: no cache takes it
    assert tha == bytes(6) and tpa == V4.packed


def test_the_dad_solicitation_goes_from_the_unspecified_address_to_the_solicited_node_group():
    frame = probe.frame(MAC, V6)
    group = ipaddress.IPv6Address("ff02::1:ff02:3")
    assert probe.solicited_node(V6) == group
    assert frame[:6] == bytes.fromhex("3333ff020003") and frame[6:12] == MAC
    assert frame[12:14] == b"\x86\xdd"
    ipv6, icmp = frame[14:54], frame[54:]
    version, length, next_header, hops, source, dest = struct.unpack("!IHBB16s16s", ipv6)
    assert (version >> 28, length, next_header, hops) == (6, 24, 58, 255)
    assert source == bytes(16) and dest == group.packed
    assert (icmp[0], icmp[1], icmp[4:8]) == (135, 0, bytes(4)) and icmp[8:24] == V6.packed
    assert len(icmp) == 24  # no source link-layer option from ::
    pseudo = source + dest + struct.pack("!I3xB", len(icmp), 58)
    assert checksum(pseudo + icmp) == 0  # the checksum field makes the sum come out right


def test_an_arp_reply_from_another_mac_is_a_conflict_naming_that_mac():
    reply = arp(2, OTHER, str(V4), MAC, "0.0.0.0", dst=MAC)
    assert probe.conflict(reply, MAC, [V4]) == probe.Answer("10.22.0.7", "02:aa:bb:cc:dd:ee")


@pytest.mark.parametrize("frame", [
    arp(2, MAC, "10.22.0.7", OTHER, "10.22.0.9"),        # our own MAC
    arp(2, OTHER, "10.22.0.8", MAC, "0.0.0.0"),          # another address
    arp(1, OTHER, "10.22.0.9", bytes(6), "10.22.0.7"),   # someone resolving us: not a holder
    arp(2, OTHER, "10.22.0.7", MAC, "0.0.0.0")[:30],     # cut short
    b"\x00" * 10,
], ids=["own-mac", "other-address", "resolution", "short", "tiny"])
def test_what_is_not_a_conflict(frame):
    assert probe.conflict(frame, MAC, [V4]) is None


def test_another_hosts_probe_for_the_same_address_is_a_conflict():
    """RFC 5227 2.1.1: two hosts probing one address at once both back off."""
    other_probe = arp(1, OTHER, "0.0.0.0", bytes(6), str(V4))
    assert probe.conflict(other_probe, MAC, [V4]) == probe.Answer(str(V4), "02:aa:bb:cc:dd:ee")


def test_a_neighbour_advertisement_names_its_target_link_layer_address():
    option = b"\x02\x01" + bytes.fromhex("02ffeeddccbb")  # type 2, 8 bytes
    advert = neighbour(136, OTHER, "fd00:22::1:2:3", str(V6), option)
    assert probe.conflict(advert, MAC, [V4, V6]) == probe.Answer(str(V6), "02:ff:ee:dd:cc:bb")
    bare = neighbour(136, OTHER, "fd00:22::1:2:3", str(V6))  # no option: the frame's source
    assert probe.conflict(bare, MAC, [V6]) == probe.Answer(str(V6), "02:aa:bb:cc:dd:ee")


def test_ipv6_frames_that_are_not_a_conflict():
    assert probe.conflict(neighbour(136, MAC, str(V6), str(V6)), MAC, [V6]) is None
    assert probe.conflict(neighbour(136, OTHER, "fd00:22::9", "fd00:22::9"), MAC, [V6]) is None
    routed = neighbour(136, OTHER, str(V6), str(V6), hops=254)  # RFC 4861 7.1.2: dropped
    assert probe.conflict(routed, MAC, [V6]) is None
    resolving = neighbour(135, OTHER, "fd00:22::9", str(V6))  # address resolution, not DAD
    assert probe.conflict(resolving, MAC, [V6]) is None
    dad = neighbour(135, OTHER, "::", str(V6))  # another host's DAD for the same address
    assert probe.conflict(dad, MAC, [V6]) == probe.Answer(str(V6), "02:aa:bb:cc:dd:ee")


def test_a_probe_that_hangs_is_bounded(monkeypatch):
    import threading

    from pipework_wrapper.errors import ToolFailed

    release = threading.Event()
    monkeypatch.setattr(probe, "_probe", lambda *args: release.wait(30))
    try:
        with pytest.raises(ToolFailed, match="probe 10.22.0.7/24 on eth1 .*did not finish"):
            probe.probe("/proc/self/ns/net", "eth1", ["10.22.0.7/24"], wait=0.1, timeout=0.1)
    finally:
        release.set()
