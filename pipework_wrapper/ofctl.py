"""OpenFlow rules through ovs-ofctl: atomic bundles, reads, and deletes.

Rules are not stored in OVSDB, so they are written and read through the
bridge's OpenFlow management socket. Every change that adds rules is one
`ovs-ofctl --bundle add-flows` process: the lines (each starting with `add`
or `delete`) are applied as one OpenFlow 1.4 bundle, all or nothing, so a
reader never sees a port with half its rules. A change that only deletes is one
`ovs-ofctl add-flows` of `delete` lines, each flow mod on its own: what it deletes
belongs to a port that is gone or to a limit that is going, where half done is
only later (gc sweeps what a failure leaves), and a bundle costs twice as much
(measured on a quiet bridge: 5.8 against 2.7 ms of ovs-ofctl's CPU, 9.2 against
3.2 ms of wall time; 110 teardowns at once wait on ovs-vswitchd for each). Each
call is bounded like every other command (`pipework_wrapper.command.run`), and
waits for a busy ovs-vswitchd as ovs-vsctl waits for a busy ovsdb-server
(`pipework_wrapper.ovs.waiting`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipework_wrapper.ovs import waiting

HINT = "check that ovs-vswitchd is running and serves the bridge (ovs-ofctl show BRIDGE)"


@dataclass(frozen=True)
class Flow:
    """One rule as `dump-flows` shows it: enough to compare it with a wanted rule and to
    count what it matched."""

    cookie: int
    table: int
    priority: int
    match: str  # the match as ovs-ofctl prints it (normalised by the switch)
    actions: str
    packets: int


@dataclass(frozen=True)
class MeterFeatures:
    """What the bridge's datapath says its OpenFlow meters can do (`meter-features`)."""

    max_meter: int
    band_types: frozenset[str]
    capabilities: frozenset[str]

    def can_limit(self) -> bool:
        """Meters that drop above a rate in kbit/s, with a burst: what an egress limit is."""
        return (self.max_meter > 0 and "drop" in self.band_types
                and {"kbps", "burst"} <= self.capabilities)


class Ofctl:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def _ofctl(self, *args: str, input: bytes | None = None) -> str:
        """One ovs-ofctl, run again while ovs-vswitchd is too busy to accept it (110 setups
        at once fill its management socket's backlog, as they fill ovsdb-server's)."""
        return waiting("ovs-ofctl", args, self.timeout, HINT, input=input)

    def bundle(self, bridge: str, lines: list[str]) -> None:
        """Apply `lines` (`add ...` / `delete ...` flow mods) to `bridge` as one bundle."""
        self._add_flows(bridge, lines, "--bundle")

    def delete(self, bridge: str, lines: list[str]) -> None:
        """Apply `lines` (`delete ...` flow mods only) to `bridge`, one by one, in one
        process (see the module's docstring for why not as a bundle)."""
        if any(not line.startswith("delete ") for line in lines):
            raise ValueError(f"not a delete: {lines}")
        self._add_flows(bridge, lines)

    def _add_flows(self, bridge: str, lines: list[str], *options: str) -> None:
        """One `ovs-ofctl add-flows` of `lines` on stdin; none, no process."""
        if lines:
            self._ofctl(*options, "add-flows", bridge, "-",
                        input=("\n".join(lines) + "\n").encode())

    def dump(self, bridge: str, cookie: int, mask: int = -1) -> list[Flow]:
        """The rules of `bridge` whose cookie matches `cookie` under `mask`, with the
        packets each matched (one read)."""
        out = self._ofctl("--no-names", "dump-flows", bridge,
                          f"cookie={cookie:#x}/{_mask(mask)}")
        return [_flow(line) for line in out.splitlines() if " actions=" in line]


    def _meters(self, *args: str) -> str:
        """Meters are OpenFlow 1.3's: every meter command asks for it."""
        return self._ofctl("-O", "OpenFlow13", *args)

    def meter_features(self, bridge: str) -> MeterFeatures:
        out = self._meters("meter-features", bridge)
        found = re.search(r"max_meter:(\d+)", out)
        lists = {key: frozenset(m.group(1).split()) if m else frozenset()
                 for key in ("band_types", "capabilities")
                 for m in [re.search(rf"^{key}:(.*)$", out, re.M)]}
        return MeterFeatures(int(found.group(1)) if found else 0, **lists)

    def add_meter(self, bridge: str, meter: int, kbps: int, burst_kbits: int) -> None:
        """A meter that drops what its rules send above `kbps` (after a burst)."""
        self._meters("add-meter", bridge, f"meter={meter},kbps,burst,band=type=drop,"
                     f"rate={kbps},burst_size={burst_kbits}")

    def delete_meter(self, bridge: str, meter: int) -> None:
        """Delete meter `meter` of `bridge` (absent: fine), and the rules that use it."""
        self._meters("del-meter", bridge, f"meter={meter}")

    def meters(self, bridge: str) -> list[int]:
        """The ids of `bridge`'s meters."""
        out = self._meters("dump-meters", bridge)
        return [int(m) for m in re.findall(r"^meter=(\d+)", out, re.M)]


def _mask(mask: int) -> str:
    return "-1" if mask == -1 else f"{mask:#x}"


# What dump-flows prints besides a rule's identity, match and actions.
_STATS = {"duration", "n_packets", "n_bytes", "idle_age", "hard_age", "reset_counts"}


def _flow(line: str) -> Flow:
    """Parse one dump line: `cookie=0x5, duration=1s, table=1, n_packets=2, ...,
    priority=5,in_port=3 actions=NORMAL`."""
    head, actions = line.strip().split(" actions=", 1)
    fields, match = {}, []
    for part in (p for p in re.split(r",\s*|\s+", head) if p):
        key, _, value = part.partition("=")
        if key in ("cookie", "table", "priority", "n_packets") and key not in fields:
            fields[key] = value
        elif key not in _STATS:
            match.append(part)
    return Flow(cookie=int(fields.get("cookie", "0"), 0), table=int(fields.get("table", "0")),
                priority=int(fields.get("priority", "32768")), match=",".join(match),
                actions=actions.strip(), packets=int(fields.get("n_packets", "0")))
