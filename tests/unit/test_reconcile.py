"""reconcile and gc's rule sweep over the fakes (tests/support/wired.py, fake_ofctl.py):
what they change, that a second run changes nothing, that rules of others are put back
after the one flush Open vSwitch makes (a fail mode change), and that a pod's lock
serialises them with its setup and teardown. The real switch: tests/e2e/test_reconcile.py."""

from __future__ import annotations

from dataclasses import replace

from pipework_wrapper.ofctl import Flow
from plugin import names
from plugin.calllog import CallLog
from plugin.core import flows, rules
from plugin.errors import LockTimeout
from plugin.locks import pod_lock
from plugin.ops.gc import sweep
from plugin.ops.reconcile import reconcile
from tests.unit.test_gc import ID, attached, config, docker, host  # noqa: F401 (fixtures)

PORT = names.host_veth(ID, "eth1")
FOREIGN = Flow(0x1234, 1, 7, "dl_type=0x88b6", "drop", 0)


def guarded(config, host) -> bool:
    [record] = attached_records(config)
    lines = rules.wanted(record, host.ports[PORT], True)
    return bool(lines) and rules.same(lines, host.ofctl.dump("br0", flows.cookie(PORT)))


def attached_records(config):
    from plugin.core.records import RecordStore

    return RecordStore(config.state_dir).load(ID)


def test_reconcile_secures_the_bridge_guards_the_pod_and_then_changes_nothing(config, host,
                                                                              docker):
    attached(config)
    host.ofctl.rules["br0"] = [FOREIGN]
    done = reconcile(config)
    assert done.failures == [] and done.changed == [
        "bridge br0: fail_mode secure (was standalone), default rules installed",
        f"default/22-web eth1 (port {PORT}): guard rules installed"]
    assert host.fail_modes["br0"] == "secure" and guarded(config, host)
    assert rules.bridge_missing(rules.by_cookie(host.ofctl.dump("br0", flows.BRIDGE))) == []
    assert host.ofctl.dump("br0", 0x1234) == [FOREIGN]  # flushed by the switch, put back
    before = list(host.ofctl.rules["br0"])
    assert reconcile(config).changed == [] and host.ofctl.rules["br0"] == before


def test_after_a_restart_the_rules_come_back_pods_first(config, host, docker, monkeypatch):
    """On a secure bridge left empty, the admission default goes in last: until then only
    guarded pods pass, each through its own rules."""
    attached(config)
    reconcile(config)
    host.ofctl.rules["br0"] = []  # what an ovs-vswitchd restart leaves
    order = []
    real = host.ofctl.bundle
    monkeypatch.setattr(host.ofctl, "bundle", lambda bridge, lines: (
        order.extend(lines[-1:]), real(bridge, lines)))
    assert reconcile(config).changed == [
        "bridge br0: default rules installed",
        f"default/22-web eth1 (port {PORT}): guard rules installed"]
    assert order[0] == rules.forward_line() and order[-1] == rules.guard_default_line()
    assert guarded(config, host)


def test_a_pods_lock_holds_reconcile_off_its_rules(config, host, docker):
    config = replace(config, lock_timeout=0.2)
    attached(config)
    with pod_lock(config.state_dir, ID, 1):  # a setup or teardown of the pod, running
        done = reconcile(config)
    assert [type(f) for f in done.failures] == [LockTimeout] and host.fail_modes == {}
    assert done.changed[0].startswith("bridge br0: not reconciled:")
    reconcile(config)
    host.ofctl.rules["br0"] = [f for f in host.ofctl.rules["br0"]
                               if f.cookie != flows.cookie(PORT)]
    with pod_lock(config.state_dir, ID, 1):
        done = reconcile(config)
    assert done.changed[-1].startswith(f"default/22-web eth1 (port {PORT}): not reconciled")
    assert not guarded(config, host)


def test_rules_of_a_gone_port_are_swept_by_gc_and_reconcile(config, host, docker):
    attached(config)
    reconcile(config)
    gone = flows.cookie("vpgone")
    host.ofctl.rules["br0"].append(Flow(gone, 0, 10, "in_port=99", "drop", 0))
    log = CallLog(config.log_file, "gc")
    dry = [a.line() for a in sweep(config, log, dry_run=True)]
    assert dry == ["would remove 1 OpenFlow rules on bridge br0: the 1 port(s) they guarded "
                   "no longer exist"]
    assert host.ofctl.dump("br0", gone)
    assert [a.line() for a in sweep(config, log)] == [dry[0].replace("would remove", "removed")]
    assert host.ofctl.dump("br0", gone) == [] and guarded(config, host)
    host.ofctl.rules["br0"].append(Flow(gone, 0, 10, "in_port=99", "drop", 0))
    assert reconcile(config).changed == [
        "bridge br0: swept the rules of 1 port(s) that no longer exist"]
    assert host.ofctl.dump("br0", gone) == []


def test_after_a_restart_an_egress_limit_comes_back_with_the_guard(config, host, docker):
    """An ovs-vswitchd restart drops meters and rules alike: reconcile gives a limited pod
    its meter and the rule through it again, once, beside its guard."""
    from plugin.core import bandwidth
    from plugin.core.records import RecordStore
    from plugin.policy.bandwidth import Bandwidth

    attached(config)
    [record] = attached_records(config)
    limited = replace(record, bandwidth=Bandwidth(egress_rate=20_000_000,
                                                  egress_burst=5_000_000))
    RecordStore(config.state_dir).save(ID, [limited])
    reconcile(config)
    host.ofctl.rules["br0"], host.ofctl.meter_table["br0"] = [], {}  # the restart
    assert reconcile(config).changed == [
        "bridge br0: default rules installed",
        f"default/22-web eth1 (port {PORT}): guard rules installed",
        f"default/22-web eth1 (port {PORT}): egress limit restored"]
    number = host.ports[PORT].ofport
    assert host.ofctl.meter_table["br0"] == {bandwidth.meter_id(number): (20000, 5000)}
    assert [f.actions for f in host.ofctl.dump("br0", flows.cookie(PORT))
            if f.table == flows.FORWARD] == [f"meter:{bandwidth.meter_id(number)},NORMAL"]
    assert guarded(config, host) and reconcile(config).changed == []
