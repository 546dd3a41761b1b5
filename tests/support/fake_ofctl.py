"""ovs-ofctl at the wrapper boundary, for the unit tier: each bridge's rules in memory.

It keeps what `pipework_wrapper.ofctl.Ofctl` is asked (bundles of `add` and `delete
[table=T,]cookie=C/M[,in_port=N]` lines, deletes of such lines, dumps by cookie and
mask), so setup, teardown, gc, reconcile and CHECK run over it as over the switch.
What the switch does with the rules is the e2e tier's.
"""

from __future__ import annotations

from typing import Callable

from pipework_wrapper.errors import ToolFailed
from pipework_wrapper.ofctl import Flow, MeterFeatures


class FakeOfctl:
    def __init__(self, bridges: set[str], step: Callable[[str], None] = lambda name: None
                 ) -> None:
        self.bridges = bridges  # the host's: a bridge it lacks is refused, as ovs-ofctl does
        # the host's step counter: "ofctl:bundle", "ofctl:delete" (a fault may stop there)
        self.step = step
        self.rules: dict[str, list[Flow]] = {}
        self.meter_table: dict[str, dict[int, tuple[int, int]]] = {}  # bridge -> id -> rate

    def _on(self, bridge: str) -> list[Flow]:
        if bridge not in self.bridges:
            raise ToolFailed(f"ovs-ofctl: {bridge} is not a bridge or a socket")
        return self.rules.setdefault(bridge, [])

    def bundle(self, bridge: str, lines: list[str]) -> None:
        self.step("ofctl:bundle")
        self.rules[bridge] = _applied(self._on(bridge), lines)

    def delete(self, bridge: str, lines: list[str]) -> None:
        if any(not line.startswith("delete ") for line in lines):
            raise ValueError(f"not a delete: {lines}")
        if lines:
            self.step("ofctl:delete")
            self.rules[bridge] = _applied(self._on(bridge), lines)

    def dump(self, bridge: str, cookie: int, mask: int = -1) -> list[Flow]:
        return [f for f in self._on(bridge) if _matches(f.cookie, cookie, mask)]

    def meter_features(self, bridge: str) -> MeterFeatures:
        self._on(bridge)
        return MeterFeatures(200000, frozenset({"drop"}), frozenset({"kbps", "burst"}))

    def add_meter(self, bridge: str, meter: int, kbps: int, burst_kbits: int) -> None:
        self._on(bridge)
        self.meter_table.setdefault(bridge, {})[meter] = (kbps, burst_kbits)

    def delete_meter(self, bridge: str, meter: int) -> None:
        """The meter and the rules that use it go, as OpenFlow deletes them."""
        self.meter_table.get(bridge, {}).pop(meter, None)
        self.rules[bridge] = [f for f in self._on(bridge)
                              if f"meter:{meter}," not in f.actions]

    def meters(self, bridge: str) -> list[int]:
        return sorted(self.meter_table.get(bridge, {}))


def rule(line: str) -> Flow:
    """The rule an `add` line makes, as the fake keeps it."""
    match, actions = line.partition(" ")[2].split(",actions=", 1)
    fields = dict(part.partition("=")[::2] for part in match.split(","))
    rest = [p for p in match.split(",")
            if p.partition("=")[0] not in ("table", "cookie", "priority")]
    return Flow(int(fields.get("cookie", "0"), 0), int(fields.get("table", "0")),
                int(fields.get("priority", "32768")), ",".join(rest), actions, 0)


def _matches(value: int, cookie: int, mask: int) -> bool:
    mask &= (1 << 64) - 1
    return value & mask == cookie & mask


def _applied(found: list[Flow], lines: list[str]) -> list[Flow]:
    """The rules after `lines` (`add` / `delete` flow mods), in order."""
    for line in lines:
        verb, _, body = line.partition(" ")
        if verb == "delete":
            fields = dict(part.partition("=")[::2] for part in body.split(","))
            cookie, _, mask = fields["cookie"].partition("/")
            found = [f for f in found if not (
                _matches(f.cookie, int(cookie, 0), int(mask or "-1", 0))
                and ("table" not in fields or int(fields["table"]) == f.table)
                and ("in_port" not in fields
                     or f"in_port={fields['in_port']}" in f.match.split(",")))]
            continue
        flow = rule(line)
        found = [f for f in found if (f.table, f.priority, set(f.match.split(",")))
                 != (flow.table, flow.priority, set(flow.match.split(",")))] + [flow]
    return found
