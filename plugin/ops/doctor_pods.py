"""doctor's view of this node's pods: every attachment `list` shows in a state other than
ok is a failed row naming the pods, with the fix for that state.

A node whose checks all pass while a pod has lost its veth is not healthy;
the uplink and damaged records have rows of their own.
"""

from __future__ import annotations

from plugin.config.schema import Config
from plugin.ops.listing import State, rows
from plugin.ops.liveness import Liveness

SHOWN = 10  # pods named per row; `list` has them all
FIXES = {
    State.GONE: "run gc: their containers are gone",
    State.MISSING: "tear the pods down (teardown, or the runtime's DEL); gc does it once "
                   "their containers are gone",
    State.BROKEN: "run gc (it removes broken interfaces), then set the pods up again",
    State.UNJUDGED: "start dockerd: these pods cannot be judged without it",
}


def checks(config: Config) -> list[tuple[str, bool, str, str]]:
    """(name, ok, detail, fix) rows: one per unhealthy state, or one that says all are ok."""
    from plugin.ops import doctor_guard

    pods = [r for r in rows(config, Liveness(config)) if r.infra_id]
    guard = doctor_guard.checks(config, pods)
    bad: dict[State, list[str]] = {}
    for row in pods:
        if row.kind is not State.OK:
            bad.setdefault(row.kind, []).append(f"{row.namespace}/{row.pod} {row.interface}")
    if not bad:
        return [("pods", True, f"{len(pods)} attachment(s), all ok", ""), *guard]
    return guard + [(f"pods {kind.value}", False, f"{len(who)}: " + ", ".join(who[:SHOWN])
             + (f" and {len(who) - SHOWN} more (see list)" if len(who) > SHOWN else ""),
             FIXES.get(kind, "see list and run gc"))
            for kind, who in sorted(bad.items(), key=lambda item: item[0].value)]
