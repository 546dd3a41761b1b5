"""Judging rules read back from a bridge (plugin/core/rules.py) and when the watcher
reconciles (plugin/ops/watch.py). What the rules do to frames is shown on real OVS
(tests/e2e/test_reconcile.py, tests/nodes/test_restart.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipework_wrapper.ofctl import Flow, _flow
from pipework_wrapper.ovs import Port
from plugin.core import flows, rules
from plugin.core.records import Attachment
from plugin.errors import ToolFailed
from plugin.identity import Identity
from plugin.ops import watch
from plugin.ops.reconcile import Outcome

RECORD = Attachment(Identity("default", "22-web", "a" * 64, "eth1"),
                    bridge="br0", port="vp1234abcd", vlan=22, network="pods",
                    addresses=("10.0.0.5/24",), mac="0a:58:0a:00:00:05")
PORT = Port("vp1234abcd", "br0", 22, ofport=7)


def as_dumped(line: str, packets: int = 0) -> Flow:
    """A wanted `add` line as ovs-ofctl dump-flows prints it: fields reordered, stats."""
    body = line.split(" ", 1)[1]
    match, actions = body.split(",actions=", 1)
    fields = dict(part.partition("=")[::2] for part in match.split(","))
    rest = [p for p in match.split(",") if p.split("=")[0] not in ("table", "cookie", "priority")]
    return _flow(f" cookie={fields['cookie']}, duration=1.5s, table={fields['table']}, "
                 f"n_packets={packets}, n_bytes=0, priority={fields['priority']},"
                 f"{','.join(reversed(rest))} actions={actions}")


def wanted() -> list[str]:
    lines = rules.wanted(RECORD, PORT, node_default=True)
    assert lines
    return lines


def test_rules_as_the_switch_prints_them_are_the_wanted_ones_in_any_order():
    found = [as_dumped(line) for line in reversed(wanted())]
    assert rules.same(wanted(), found)
    assert rules.differences(RECORD, PORT, found, True) == []
    assert not rules.same(wanted(), found[1:])
    assert "differ from the" in rules.differences(RECORD, PORT, found[1:], True)[0]
    assert "has none of its" in rules.differences(RECORD, PORT, [], True)[0]


def test_a_record_of_an_earlier_release_follows_the_node_and_lacks_no_mac():
    old = replace(RECORD, mac="")  # the MAC follows from the addresses
    assert rules.wanted(old, PORT, True) == wanted()
    assert rules.wanted(old, PORT, False) == []
    assert rules.wanted(replace(RECORD, port_security="on"), PORT, False) == wanted()
    assert rules.wanted(RECORD, replace(PORT, ofport=None), True) is None
    assert rules.wanted(replace(RECORD, addresses=()), PORT, True) is None


def test_drops_count_only_the_drop_rules_packets():
    found = [as_dumped(line, packets=3) for line in wanted()]
    assert rules.drops(found) == 3 * sum(line.endswith("actions=drop") for line in wanted())


def test_stale_cookies_are_those_of_ports_gone_never_the_bridges():
    gone = flows.cookie("vpgone")
    found = rules.by_cookie([as_dumped(line) for line in [*wanted(), *flows.bridge_rules()]]
                            + [replace(as_dumped(wanted()[0]), cookie=gone)])
    assert rules.stale(found, ["vp1234abcd"]) == [gone]
    assert rules.stale(found, []) == sorted([gone, flows.cookie("vp1234abcd")])
    assert rules.bridge_missing(found) == []
    assert rules.bridge_missing({}) == [rules.forward_line(), rules.guard_default_line()]


def test_rules_of_others_are_put_back_and_ovs_own_default_is_not():
    dumped = [_flow(" cookie=0x1234, table=1, n_packets=9, priority=7,dl_type=0x88b6,"
                    "idle_timeout=30 actions=drop"),
              _flow(" cookie=0x0, table=0, n_packets=9, priority=0 actions=NORMAL"),
              as_dumped(wanted()[0])]
    assert rules.others(dumped) == [
        "add cookie=0x1234,table=1,priority=7,dl_type=0x88b6,idle_timeout=30,actions=drop"]


@pytest.fixture
def vswitchd(tmp_path, monkeypatch):
    """A pidfile the watcher reads, and the reconciles it runs (each reports `changed`)."""
    monkeypatch.setenv("OVS_RUNDIR", str(tmp_path))
    state = {"calls": 0, "fail": 0, "missing": False}

    def reconcile(config):
        state["calls"] += 1
        if state["fail"]:
            state["fail"] -= 1
            return Outcome(["not reconciled"], [ToolFailed("ovs-vswitchd not answering")])
        return Outcome(["bridge br0: default rules installed"])

    monkeypatch.setattr(watch, "reconcile", reconcile)
    monkeypatch.setattr(watch, "rules_missing", lambda config: state["missing"])
    monkeypatch.setattr(watch.time, "sleep", lambda seconds: None)
    (tmp_path / watch.PIDFILE).write_text("100\n")
    return state


def test_the_watcher_reconciles_at_start_then_only_after_a_restart(vswitchd, tmp_path):
    reports = []
    watch.watch(None, reports.append, ticks=10)  # type: ignore[arg-type]
    assert vswitchd["calls"] == 1  # at start: it may start after a restart
    (tmp_path / watch.PIDFILE).write_text("200\n")
    watch.watch(None, reports.append, ticks=10)  # type: ignore[arg-type]
    assert vswitchd["calls"] == 2  # (a new watcher: once at its start)
    vswitchd["fail"] = 3  # ovs-vswitchd not answering yet: retried each tick until it does
    watch.watch(None, reports.append, ticks=10)  # type: ignore[arg-type]
    assert vswitchd["calls"] == 6 and len(reports) == 6


def test_the_watcher_notices_a_restart_by_the_pid_or_the_missing_rules(vswitchd, tmp_path,
                                                                       monkeypatch):
    pids = iter(["100", "100", "100", "200"] + ["200"] * 20)
    monkeypatch.setattr(watch, "vswitchd_pid", lambda path: int(next(pids)))
    watch.watch(None, lambda outcome: None, ticks=10, check_every=100)  # type: ignore[arg-type]
    assert vswitchd["calls"] == 2  # at start, and at the new PID
    vswitchd["missing"] = True  # rules flushed by hand, same PID
    watch.watch(None, lambda outcome: None, ticks=4, check_every=2)  # type: ignore[arg-type]
    assert vswitchd["calls"] == 2 + 1 + 1  # at start, then at tick 2 (tick 0 was the start)
