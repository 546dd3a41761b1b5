"""reconcile and gc against the real Open vSwitch: bridges fail closed, each attachment's
rules as its record asks, rules of gone ports swept, and no rule the plugin does not own
ever touched."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest

from pipework_wrapper.ofctl import Ofctl
from plugin import names
from plugin.core import flows, rules
from plugin.core.records import RecordStore
from tests.support import hostnet
from tests.support.kubelet import make_plugin

from .test_exec_plugin import NS, base_config

FOREIGN = 0x1234  # a cookie that is not the plugin's
FOREIGN_RULES = [f"cookie={FOREIGN:#x},table=0,priority=5,dl_type=0x88b5,actions=drop",
                 f"cookie={FOREIGN:#x},table=1,priority=7,dl_type=0x88b6,actions=drop"]


@pytest.fixture
def plugin(tmp_path, bridge):
    return make_plugin(str(tmp_path), base_config(bridge))


def dump(bridge: str, cookie: int = 0, mask: int = 0):
    return Ofctl(5).dump(bridge, cookie, mask)


def fail_mode(bridge: str) -> str:
    return hostnet.ovs("get-fail-mode", bridge).strip()


def ofport(port: str) -> int:
    return int(hostnet.ovs("get", "Interface", port, "ofport"))


def record_of(plugin, infra_id: str):
    [record] = RecordStore(plugin.state_dir).load(infra_id)
    return record


def guarded_as_recorded(plugin, bridge: str, infra_id: str) -> bool:
    record = record_of(plugin, infra_id)
    guard = flows.guard_of(record, ofport(record.port), True)
    assert guard is not None
    return rules.same(flows.guard_rules(guard), dump(bridge, flows.cookie(record.port), -1))


def add_foreign_rules(bridge: str) -> list:
    for rule in FOREIGN_RULES:
        hostnet.run(["ovs-ofctl", "--timeout=5", "add-flow", bridge, rule])
    return sorted(map(rules.flow_key, dump(bridge, FOREIGN, -1)))


def test_reconcile_guards_a_pod_once_and_touches_no_foreign_rule(plugin, bridge, container):
    """A pod without rules (this branch's setup, or an earlier release's) gets exactly its
    record's rules and the bridge fails closed; a second run changes and prints nothing;
    rules of another cookie, in both tables, survive both; a lost rule is put back."""
    plugin.ok("setup", NS, "22-web", container.id)
    port = names.host_veth(container.id, "eth1")
    foreign = add_foreign_rules(bridge)
    first = plugin.ok("reconcile").output
    assert f"bridge {bridge}: fail_mode secure (was standalone), default rules installed" \
        in first, first
    assert f"{NS}/22-web eth1 (port {port}): guard rules installed" in first, first
    assert fail_mode(bridge) == "secure" and guarded_as_recorded(plugin, bridge, container.id)
    assert plugin.ok("reconcile").output == ""
    assert sorted(map(rules.flow_key, dump(bridge, FOREIGN, -1))) == foreign
    own = dump(bridge, flows.cookie(port), -1)
    drop = next(f for f in own if f.priority == flows.DENY)
    hostnet.run(["ovs-ofctl", "--timeout=5", "--strict", "del-flows", bridge,
                 f"table=0,priority={drop.priority},{drop.match}"])
    assert "rules replaced" in plugin.ok("reconcile").output
    assert guarded_as_recorded(plugin, bridge, container.id)
    assert sorted(map(rules.flow_key, dump(bridge, FOREIGN, -1))) == foreign
    plugin.ok("teardown", NS, "22-web", container.id)
    plugin.ok("reconcile")  # (teardown removes its rules itself where setup made them)
    assert {f.cookie for f in dump(bridge, flows.PREFIX, flows.MASK)} == {flows.BRIDGE}
    assert sorted(map(rules.flow_key, dump(bridge, FOREIGN, -1))) == foreign


def test_a_port_deleted_by_hand_leaves_rules_that_gc_sweeps(plugin, bridge, make_container):
    """del-port leaves a port's rules, which a new port with the same OpenFlow number would
    inherit: gc removes them (a dry run first names them) and nothing else."""
    kept, lost = make_container("kept"), make_container("lost")
    plugin.ok("setup", NS, "22-kept", kept.id)
    plugin.ok("setup", NS, "22-lost", lost.id)
    plugin.ok("reconcile")
    foreign = add_foreign_rules(bridge)
    lost_port = names.host_veth(lost.id, "eth1")
    assert dump(bridge, flows.cookie(lost_port), -1)
    hostnet.ovs("del-port", bridge, lost_port)
    dry = json.loads(plugin.ok("gc", "--dry-run", "--json").output)
    swept = [a for a in dry if "OpenFlow rules" in a["what"]]
    assert [(a["outcome"], a["why"]) for a in swept] == [
        ("would remove", "the 1 port(s) they guarded no longer exist")], dry
    assert dump(bridge, flows.cookie(lost_port), -1)
    done = json.loads(plugin.ok("gc", "--json").output)
    assert [a["outcome"] for a in done if "OpenFlow rules" in a["what"]] == ["removed"], done
    assert dump(bridge, flows.cookie(lost_port), -1) == []
    assert guarded_as_recorded(plugin, bridge, kept.id)
    assert sorted(map(rules.flow_key, dump(bridge, FOREIGN, -1))) == foreign
    for pod, c in (("22-kept", kept), ("22-lost", lost)):
        plugin.ok("teardown", NS, pod, c.id)


def test_init_makes_a_live_bridge_fail_closed_with_a_short_cut(plugin, bridge,
                                                               make_container):
    """Upgrading a bridge in the default fail mode with pods talking. Open vSwitch flushes a
    bridge's rules when its fail mode changes, so init puts everything back in one bundle
    right after: the pods' traffic stops for at most a few pings (50 ms apart), and a
    rule of another cookie survives."""
    a, b = make_container("a"), make_container("b")
    plugin.ok("setup", NS, "22-a", a.id)
    plugin.ok("setup", NS, "22-b", b.id)
    assert fail_mode(bridge) == ""
    foreign = add_foreign_rules(bridge)
    target = hostnet.container_addresses(b.id, "eth1")[0].split("/")[0]
    assert hostnet.ping(a.id, target)  # (ARP resolved before the clock starts)
    pinger = subprocess.Popen(["docker", "exec", a.id, "ping", "-q", "-c", "60", "-i", "0.05",
                               "-W", "2", target], stdout=subprocess.PIPE, text=True)
    try:
        plugin.ok("init")
        assert fail_mode(bridge) == "secure"
    finally:
        out, _ = pinger.communicate(timeout=60)
    sent, received = map(int, re.findall(r"(\d+) packets transmitted, (\d+) packets received",
                                         out)[0])
    assert sent == 60 and received >= sent - 6, out
    print(f"\n{sent - received} of {sent} pings (50 ms apart) lost across init's switch")
    assert sorted(map(rules.flow_key, dump(bridge, FOREIGN, -1))) == foreign
    assert guarded_as_recorded(plugin, bridge, a.id) and guarded_as_recorded(plugin, bridge, b.id)
    for pod, c in (("22-a", a), ("22-b", b)):
        plugin.ok("teardown", NS, pod, c.id)


def test_cni_check_fails_while_the_rules_differ_from_the_record(tmp_path, bridge, container):
    """CHECK judges the port security rules of a record that asks for them: none (its rules
    lost), then exactly as recorded after reconcile, then one rule missing."""
    from tests.support.cni_runtime import Runtime, pod_args

    runtime = Runtime(str(tmp_path / "cni"))
    conf = runtime.netconf("1.0.0", bridge, vlan=22)
    result = runtime.ok("ADD", conf, container, args=pod_args(NS, "web", container.id)).body
    store = RecordStore(runtime.state_dir)
    [record] = store.load(container.id)
    store.save(container.id, [dataclasses.replace(record, port_security="on")])
    check = {**conf, "prevResult": result}
    hostnet.run(["ovs-ofctl", "--timeout=5", "del-flows", bridge,
                 f"cookie={flows.cookie(record.port):#x}/-1"])
    error = runtime.fails(1003, "CHECK", check, container)
    assert f"port {record.port} has none of its" in error["msg"], error
    operator = subprocess.run([*runtime.command, "reconcile"], capture_output=True, text=True,
                              env={**os.environ, "VLANPIPE_CONFIG": runtime.config_path},
                              timeout=60)
    assert operator.returncode == 0 and "guard rules installed" in operator.stdout, operator
    runtime.ok("CHECK", check, container)
    drop = next(f for f in dump(bridge, flows.cookie(record.port), -1)
                if f.priority == flows.DENY)
    hostnet.run(["ovs-ofctl", "--timeout=5", "--strict", "del-flows", bridge,
                 f"table=0,priority={drop.priority},{drop.match}"])
    error = runtime.fails(1003, "CHECK", check, container)
    assert "differ from the" in error["msg"], error
    runtime.ok("DEL", conf, container)


def test_doctor_counts_what_a_spoofing_pod_had_dropped(plugin, bridge, make_container):
    """A guarded pod that sends frames as someone else is named in doctor's `pod drops` row
    with the frames its rules dropped; an honest neighbour is not."""
    from tests.support import forge

    liar, honest = make_container("liar"), make_container("honest")
    plugin.ok("setup", NS, "22-liar", liar.id)
    plugin.ok("setup", NS, "22-honest", honest.id)
    plugin.ok("reconcile")
    sent = subprocess.run(["nsenter", "-t", str(liar.pid), "-n", sys.executable, forge.__file__,
                           "eth1", forge.lie("02:66:de:ad:be:ef"), "1"], capture_output=True,
                          text=True, timeout=60)
    lied = json.loads(sent.stdout.splitlines()[-1])["sent"]

    def drops() -> dict:
        checks, _ = json.JSONDecoder().raw_decode(plugin("doctor", "--json").output)
        return {c["name"]: c for c in checks}["pod drops"]

    def counted(row: dict) -> int:
        found = re.search(rf"{NS}/22-liar eth1 (\d+)", row["detail"])
        return int(found.group(1)) if found else 0

    # The datapath hands its counts to the OpenFlow rules every half second or so (longer
    # on a loaded machine): read until they are all in, within a generous bound.
    hostnet.wait_until(lambda: counted(drops()) >= lied, timeout=30, interval=0.5)
    row = drops()
    assert row["ok"] and counted(row) >= lied > 0, (row, lied)
    assert "22-honest" not in row["detail"], row
    for pod, c in (("22-liar", liar), ("22-honest", honest)):
        plugin.ok("teardown", NS, pod, c.id)


def test_a_port_given_a_gone_ports_openflow_number_keeps_none_of_its_rules(plugin, bridge,
                                                                          make_container):
    """del-port leaves the old port's rules, matching its OpenFlow number; a new port given
    that number would be governed by them (its neighbour's MAC and address admitted from
    it). reconcile sweeps them and gives the new port its own rules only."""
    old, new = make_container("old"), make_container("new")
    plugin.ok("setup", NS, "22-old", old.id)
    plugin.ok("reconcile")
    old_port, new_port = names.host_veth(old.id, "eth1"), names.host_veth(new.id, "eth1")
    number = ofport(old_port)
    hostnet.ovs("del-port", bridge, old_port)
    assert all(f"in_port={number}" in f.match for f in dump(bridge, flows.cookie(old_port), -1))
    plugin.ok("setup", NS, "22-new", new.id)
    hostnet.ovs("set", "Interface", new_port, f"ofport_request={number}")
    assert hostnet.wait_until(lambda: ofport(new_port) == number, timeout=10)
    plugin.ok("reconcile")
    on_number = [f for f in dump(bridge, flows.PREFIX, flows.MASK) if f"in_port={number}" in
                 f.match.split(",")]
    assert on_number and {f.cookie for f in on_number} == {flows.cookie(new_port)}
    assert guarded_as_recorded(plugin, bridge, new.id)
    plugin.ok("teardown", NS, "22-new", new.id)
    plugin.ok("teardown", NS, "22-old", old.id)
