"""Transmit checksum offload on the pods' interfaces: off where the bridge's datapath drops
TCP and UDP otherwise (netdev), untouched elsewhere, a refusal rolled back, and pods
left with it on by an earlier release fixed in place. Over fakes at the wrapper boundary;
tests/e2e/test_traffic.py shows the effect with real OVS and real streams, and the ioctl
itself runs against a real veth at the end of this file."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from pipework_wrapper import ethtool
from pipework_wrapper.errors import ToolFailed
from plugin import names
from plugin.errors import BackendError
from tests.unit.test_core import ID, NETNS, POD, SANDBOX, core, host, leases, want  # noqa: F401

IFACE = (SANDBOX.netns, "eth1")


@pytest.mark.parametrize("sandbox", [SANDBOX, NETNS], ids=["pipework", "netns"])
def test_setup_on_a_netdev_bridge_turns_the_pods_offload_off(tmp_path, host, sandbox):
    core(tmp_path, host).attach(POD, [want()], sandbox)
    assert host.offload[(sandbox.netns, "eth1")] is False
    # before the address check and the announcement: the pod is usable once announced
    assert host.calls.index("ip:offload") < host.calls.index("announce")


def test_a_system_bridge_is_left_alone_by_default(tmp_path, host):
    host.datapaths["br0"] = "system"
    core(tmp_path, host).attach(POD, [want()], SANDBOX)
    assert host.offload[IFACE] is True and "ip:offload" not in host.calls


@pytest.mark.parametrize("policy, datapath, on", [
    ("off", "system", False), ("on", "netdev", True), ("auto", "", True)])
def test_the_node_key_decides(tmp_path, host, policy, datapath, on):
    host.datapaths["br0"] = datapath
    core(tmp_path, host, pod_tx_checksum=policy).attach(POD, [want()], SANDBOX)
    assert host.offload[IFACE] is on


def test_each_interface_follows_its_own_bridge(tmp_path, host):
    host.datapaths["br1"] = "system"
    core(tmp_path, host).attach(POD, [want("eth1"), want("eth2", "br1", 300)], SANDBOX)
    assert host.offload[IFACE] is False and host.offload[(SANDBOX.netns, "eth2")] is True


def test_an_offload_that_stays_on_fails_setup_and_leaves_nothing(tmp_path, host):
    c = core(tmp_path, host)
    host.offload_stuck = True
    with pytest.raises(BackendError, match="transmit checksum offload of eth1 in the pod "
                                           "stays on"):
        c.attach(POD, [want()], SANDBOX)
    assert host.announced == []
    assert host.leftovers() == [] and leases(c) == [] and c.records.load(ID) == []


def test_setup_again_fixes_a_pod_left_with_offload_on_without_replugging(tmp_path, host):
    """What an earlier release left: attached, recorded, offload on."""
    c = core(tmp_path, host)
    (record,) = c.attach(POD, [want()], SANDBOX)
    host.offload[IFACE] = True
    assert c.differences(POD, want(), SANDBOX.netns) == [
        "eth1 in the pod leaves TCP/UDP checksums to transmit offload on br0, a "
        "userspace-datapath bridge, so its TCP and UDP are dropped; run setup (CNI: ADD) "
        "again or `vlanpipe init`, which turn it off; see pod_tx_checksum in config.yaml"]
    assert c.attach(POD, [want()], SANDBOX) == [record]
    assert host.offload[IFACE] is False and len(host.pipework.runs) == 1
    assert c.log.fields["checksum_offload_turned_off"] == "eth1"
    assert c.differences(POD, want(), SANDBOX.netns) == []


def test_check_without_the_namespace_judges_only_the_port(tmp_path, host):
    c = core(tmp_path, host)
    c.attach(POD, [want()], SANDBOX)
    host.offload[IFACE] = True
    assert c.differences(POD, want()) == []


def test_an_unreadable_interface_is_a_difference_not_a_crash(tmp_path, host):
    c = core(tmp_path, host)
    c.attach(POD, [want()], SANDBOX)
    del host.offload[IFACE]
    (found,) = c.differences(POD, want(), SANDBOX.netns)
    assert "cannot read the offload of eth1" in found
    assert names.host_veth(ID, "eth1") in host.ports


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a veth: needs root")
def test_the_ioctl_reads_and_turns_off_a_real_veths_offload():
    """The unit tier runs in a private network namespace: a veth made there is ours."""
    name = "vo" + secrets.token_hex(4)
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
                   check=True, timeout=10)
    try:
        here = "/proc/self/ns/net"
        assert ethtool.tx_checksum(here, name) is True  # a veth's default
        assert ethtool.set_tx_checksum(here, name, False) is False
        assert ethtool.tx_checksum(here, name) is False
        assert ethtool.tx_checksum(here, name + "p") is True  # per interface
        with pytest.raises(ToolFailed, match=f"cannot read the transmit checksum offload of "
                                             f"{name}x in {here}: No such device"):
            ethtool.tx_checksum(here, name + "x")
    finally:
        subprocess.run(["ip", "link", "del", name], check=False, timeout=10)
