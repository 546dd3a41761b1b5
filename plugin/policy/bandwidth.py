"""A pod's bandwidth limits: the CNI bandwidth plugin's keys and units, read once.

Multus and the kubelet pass a pod's limits as `runtimeConfig.bandwidth`
(`ingressRate`/`ingressBurst`, `egressRate`/`egressBurst`: bits per second and
bits), the same keys a network config uses for its defaults and the node
config for its maximums, so one reader serves all three. Directions are the
pod's: ingress is traffic towards the pod, egress traffic from it (the one
kube-ovn had reversed). As in the bandwidth plugin, 0 or absent means "no
limit", and a rate goes with a burst.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from plugin.errors import shown

# Field -> the key the bandwidth plugin (and every config here) spells it with.
KEYS = {"ingress_rate": "ingressRate", "ingress_burst": "ingressBurst",
        "egress_rate": "egressRate", "egress_burst": "egressBurst"}
HINT = ("give rates in bits per second and bursts in bits, as the CNI bandwidth plugin "
        "takes them")
MIN_RATE = 1000  # bit/s: OpenFlow meters count in kbit/s
MAX_RATE = (2 ** 32 - 1) * 1000  # a meter's rate is 32 bits of kbit/s
MAX_BURST = (2 ** 32 - 1) * 8  # the bandwidth plugin's bound: 4 GB


@dataclass(frozen=True)
class Bandwidth:
    """Limits in bit/s (rates) and bits (bursts); 0: none in that direction."""

    ingress_rate: int = 0
    ingress_burst: int = 0
    egress_rate: int = 0
    egress_burst: int = 0

    @property
    def ingress(self) -> bool:
        return self.ingress_rate > 0

    @property
    def egress(self) -> bool:
        return self.egress_rate > 0

    def over(self, default: "Bandwidth") -> "Bandwidth":
        """These limits where they set a direction, `default`'s where they do not: a pod
        that asks only for an ingress limit keeps its network's egress limit."""
        ingress = self if self.ingress else default
        egress = self if self.egress else default
        return Bandwidth(ingress.ingress_rate, ingress.ingress_burst,
                         egress.egress_rate, egress.egress_burst)

    def exceeding(self, maximum: "Bandwidth") -> list[tuple[str, int, int]]:
        """(key, value, maximum) of each value above a set maximum (0: unbounded)."""
        return [(KEYS[f.name], getattr(self, f.name), getattr(maximum, f.name))
                for f in fields(self)
                if getattr(maximum, f.name) and getattr(self, f.name) > getattr(maximum, f.name)]

    def shown(self) -> str:
        """For messages and the log: "ingress 20 Mbit/s (burst 1 Mbit), egress none"."""
        return ", ".join(f"{d} {_rate(r)} (burst {_bits(b)})" if r else f"{d} none"
                         for d, r, b in (("ingress", self.ingress_rate, self.ingress_burst),
                                         ("egress", self.egress_rate, self.egress_burst)))


def parse(value: Any, where: str) -> Bandwidth:
    """`value` (a mapping of the four keys) as limits; ValueError names `where.KEY`, the
    value and the fix, in one line."""
    if value is None:
        return Bandwidth()
    if not isinstance(value, dict):
        raise ValueError(f"{where} = {shown(value)} must be a mapping of "
                         f"{', '.join(KEYS.values())}")
    unknown = sorted(str(k) for k in value if k not in KEYS.values())
    if unknown:
        raise ValueError(f"{where}.{shown(unknown[0])} is not a bandwidth key "
                         f"(the keys: {', '.join(KEYS.values())})")
    found = {}
    for name, key in KEYS.items():
        number = value.get(key, 0)
        bound = MAX_BURST if name.endswith("burst") else MAX_RATE
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= bound:
            unit = "bits" if name.endswith("burst") else "bits per second"
            raise ValueError(f"{where}.{key} = {shown(number)} must be a whole number of "
                             f"{unit}, 0 to {bound}")
        found[name] = number
    limits = Bandwidth(**found)
    for direction in ("ingress", "egress"):
        rate, burst = found[f"{direction}_rate"], found[f"{direction}_burst"]
        if bool(rate) != bool(burst):
            given, missing = (("Rate", "Burst") if rate else ("Burst", "Rate"))
            raise ValueError(f"{where}.{direction}{given} is set without "
                             f"{direction}{missing}: give both (or neither)")
        if rate and rate < MIN_RATE:
            raise ValueError(f"{where}.{direction}Rate = {rate} is below {MIN_RATE} bits per "
                             "second, the smallest rate an OpenFlow meter counts")
    return limits


def _rate(bits: int) -> str:
    return f"{bits / 1e6:g} Mbit/s"


def _bits(bits: int) -> str:
    return f"{bits / 1e6:g} Mbit"

