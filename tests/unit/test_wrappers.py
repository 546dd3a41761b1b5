"""Argument shapes, OVSDB JSON parsing and announcement frames of the wrappers: pure logic."""

import ipaddress
import json
import threading

import pytest

from pipework_wrapper import announce, pipework
from pipework_wrapper.errors import ToolFailed
from pipework_wrapper import ovsdb_json


def test_pipework_vlan_goes_in_mac_slot_and_never_a_gateway():
    args = pipework.argv("k8s_br", "c" * 64, "eth1", "vp1", "10.0.0.5/24", 22)
    assert args == ["k8s_br", "-i", "eth1", "-l", "vp1", "c" * 64, "10.0.0.5/24", "@22"]
    args = pipework.argv("br", "c" * 64, "eth1", "vp1", "10.0.0.5/24", 22,
                         mac="0a:58:0a:00:00:05")
    assert args[-2:] == ["10.0.0.5/24", "0a:58:0a:00:00:05@22"]


def _table(headings, rows):
    return json.dumps({"headings": headings, "data": rows})


def test_documents_splits_concatenated_tables_and_decodes_ovsdb_values():
    text = "\n".join([
        _table(["name", "tag", "external_ids"],
               [["p1", 22, ["map", [["owner", "vlanpipe"]]]], ["p2", ["set", []], ["map", []]]]),
        _table(["name", "ports"], [["br", ["set", [["uuid", "u1"], ["uuid", "u2"]]]],
                                   ["br2", ["uuid", "u3"]]]),
    ])
    ports, bridges = ovsdb_json.documents(text)
    assert [p["name"] for p in ports] == ["p1", "p2"]
    assert ovsdb_json.scalar(ports[0]["tag"]) == 22 and ovsdb_json.scalar(ports[1]["tag"]) is None
    assert ovsdb_json.as_map(ports[0]["external_ids"]) == {"owner": "vlanpipe"}
    assert ovsdb_json.uuids(bridges[0]["ports"]) == ["u1", "u2"] and ovsdb_json.uuids(bridges[1]["ports"]) == ["u3"]


MAC = bytes.fromhex("0a580a160007")


def _ones_complement_sum(data: bytes) -> int:
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_the_gratuitous_arp_announces_the_address_at_the_mac_to_everyone():
    frame = announce.frame(MAC, ipaddress.ip_address("10.22.0.7"))
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == MAC and frame[12:14] == b"\x08\x06"
    op, sender_mac, sender_ip, target_ip = frame[20:22], frame[22:28], frame[28:32], frame[38:42]
    assert op == b"\x00\x01" and sender_mac == MAC
    assert sender_ip == target_ip == bytes([10, 22, 0, 7]) and len(frame) == 60


def test_the_unsolicited_neighbour_advertisement_follows_rfc_4861():
    address = ipaddress.ip_address("fd00:22::7")
    frame = announce.frame(MAC, address)
    assert frame[:6] == bytes.fromhex("333300000001") and frame[6:12] == MAC
    assert frame[12:14] == b"\x86\xdd"
    ipv6, icmp = frame[14:54], frame[54:]
    assert ipv6[6] == 58 and ipv6[7] == 255  # ICMPv6, hop limit 255 (else it is dropped)
    assert ipv6[8:24] == address.packed and ipv6[24:40] == ipaddress.ip_address("ff02::1").packed
    assert int.from_bytes(ipv6[4:6], "big") == len(icmp) == 32
    assert icmp[0] == 136 and icmp[1] == 0  # neighbour advertisement
    assert icmp[4] & 0xE0 == 0x20  # Override set; Router and Solicited clear
    assert icmp[8:24] == address.packed  # the target is the pod's own address
    assert icmp[24:26] == b"\x02\x01" and icmp[26:32] == MAC  # target link-layer address
    pseudo = ipv6[8:40] + len(icmp).to_bytes(4, "big") + b"\0\0\0\x3a"
    assert _ones_complement_sum(pseudo + icmp) == 0xFFFF  # the checksum verifies


def test_an_announcement_that_hangs_is_bounded(monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(announce, "_send", lambda *args: release.wait(30))
    try:
        with pytest.raises(ToolFailed, match="did not finish within 0.2s"):
            announce.announce("/proc/self/ns/net", "eth1", ["10.22.0.7/24"], timeout=0.2)
    finally:
        release.set()


def test_pipeworks_path_gives_it_a_waiting_ovs_vsctl_and_a_quiet_arping(tmp_path, monkeypatch):
    """Issue 23: pipework's own ovs-vsctl waits for a busy ovsdb-server, within the bound
    it is given; a changed bound rewrites it (the e2e tier runs it against a busy one)."""
    import os

    monkeypatch.setattr(pipework.shutil, "which", lambda name: f"/opt/ovs bin/{name}")
    folder = pipework.quiet_path(str(tmp_path / "quiet"), 60)
    shim = os.path.join(folder, "ovs-vsctl")
    assert os.readlink(os.path.join(folder, "arping")).endswith("true")
    assert open(shim).read() == "#!/bin/sh\nexec '/opt/ovs bin/ovs-vsctl' --retry --timeout=60 \"$@\"\n"
    assert os.access(shim, os.X_OK)
    assert os.stat(folder).st_mode & 0o077 == 0
    pipework.quiet_path(folder, 5)
    assert "--timeout=5 \"$@\"" in open(shim).read()
