"""What gc did, would do, or could not judge: one record per thing, for people and scripts.

`gc` prints each as a line and `--json` as an object; the log line keeps the
lines. A record says what (a port, a lease, a file), whose (namespace/pod, or
none for files no pod owns), why, and the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

REMOVED, WOULD_REMOVE, KEPT, FAILED, NOT_JUDGED, SKIPPED = (
    "removed", "would remove", "kept", "failed", "not judged", "skipped")


@dataclass(frozen=True)
class Action:
    outcome: str  # one of the six above
    what: str     # "port vp1a2b3c (eth1)", "lease 10.22.0.5/24 on pods", a path
    pod: str      # "namespace/pod", or "" for a file no pod owns
    why: str

    def line(self) -> str:
        whose = f" of {self.pod}" if self.pod else ""
        return f"{self.outcome} {self.what}{whose}: {self.why}"
