"""`watch`: notice an ovs-vswitchd restart and run reconcile, for as long as it runs.

The plugin is a call-per-event program; this is the one long-running piece, shipped as
a systemd unit (deploy/vlanpipe-watch.service). A restarted ovs-vswitchd has no rules,
and the plugin's bridges, in fail_mode=secure, forward nothing until reconcile puts
them back: the watcher shortens that outage to about one poll.

It polls cheaply: each tick reads ovs-vswitchd's pidfile (one small file, no process);
a new PID (or none, then one) means a restart. Every `check_every` ticks it also asks
each bridge in use for its default rules (one bounded ovs-ofctl per bridge), which
catches what the pidfile cannot: rules flushed by hand, a daemon restarted under the
same PID. Any sign runs reconcile, retried each tick until it succeeds.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from pipework_wrapper.ofctl import Ofctl
from pipework_wrapper.ovs import Ovs
from plugin.config.schema import Config
from plugin.core import flows, rules
from plugin.errors import Failure
from plugin.ops.reconcile import Outcome, bridges_in_use, reconcile

PIDFILE = "ovs-vswitchd.pid"


def pidfile() -> str:
    """Where ovs-vswitchd --pidfile writes (OVS_RUNDIR, as OVS's own tools read it)."""
    return os.path.join(os.environ.get("OVS_RUNDIR", "/var/run/openvswitch"), PIDFILE)


def vswitchd_pid(path: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return int(handle.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def rules_missing(config: Config) -> bool:
    """Whether a bridge in use lacks the plugin's default rules (what a restart leaves)."""
    ovs, ofctl = Ovs(config.ovs_timeout), Ofctl(config.ovs_timeout)
    bridges = bridges_in_use(config, ovs.ports()) & set(ovs.fail_modes())
    return any(rules.bridge_missing({flows.BRIDGE: ofctl.dump(b, flows.BRIDGE)})
               for b in sorted(bridges))


def watch(config: Config, report: Callable[[Outcome], None], interval: float = 0.2,
          check_every: int = 25, ticks: int | None = None) -> None:
    """Poll every `interval` seconds (the rules every `check_every` ticks) and reconcile
    when ovs-vswitchd restarted; `report` gets each reconcile that changed or failed
    something. Runs until killed (`ticks`: that many polls, for tests)."""
    path = pidfile()
    seen = vswitchd_pid(path)
    due = True  # reconcile once at start: the watcher may start after a restart
    tick = 0
    while ticks is None or tick < ticks:
        pid = vswitchd_pid(path)
        if pid != seen:
            seen, due = pid, True
        if not due and tick % check_every == 0:
            try:
                due = rules_missing(config)
            except Failure:
                due = True  # ovs-vswitchd not answering yet: reconcile retries
        if due:
            outcome = _reconcile(config)
            due = bool(outcome.failures)
            if outcome.changed or outcome.failures:
                report(outcome)
        tick += 1
        time.sleep(interval)


def _reconcile(config: Config) -> Outcome:
    try:
        return reconcile(config)
    except Failure as exc:  # OVSDB itself did not answer: the next tick tries again
        return Outcome([f"not reconciled: {exc.line()}"], [exc])
