"""doctor's view of this node's pods: every attachment `list` shows in a state other than
ok is a failed row naming the pods, with the fix for that state.

A node whose checks all pass while a pod has lost its veth is not healthy;
the uplink and damaged records have rows of their own.
"""

from __future__ import annotations

from plugin.config.schema import Config
from plugin.ops.listing import rows
from plugin.ops.liveness import Liveness

SHOWN = 10  # pods named per row; `list` has them all
FIXES = {
    "container gone": "run gc: their containers are gone",
    "port missing": "tear the pods down (teardown, or the runtime's DEL); gc does it once "
                    "their containers are gone",
    "interface error": "run gc (it removes broken interfaces), then set the pods up again",
    "docker down": "start dockerd: these pods cannot be judged without it",
}


def checks(config: Config) -> list[tuple[str, bool, str, str]]:
    """(name, ok, detail, fix) rows: one per unhealthy state, or one that says all are ok."""
    pods = [r for r in rows(config, Liveness(config)) if r.infra_id]
    bad: dict[str, list[str]] = {}
    for row in pods:
        if row.state != "ok":
            bad.setdefault(row.state, []).append(f"{row.namespace}/{row.pod} {row.interface}")
    if not bad:
        return [("pods", True, f"{len(pods)} attachment(s), all ok", "")]
    return [(f"pods {state}", False, f"{len(who)}: " + ", ".join(who[:SHOWN])
             + (f" and {len(who) - SHOWN} more (see list)" if len(who) > SHOWN else ""),
             FIXES.get(state, "see list and run gc"))
            for state, who in sorted(bad.items())]
