"""Summaries of repeated measurements: medians and quartiles, never means.

One slow outlier (a dockerd hiccup, an OVS reconfiguration of another
bridge) moves a mean a lot and a median not at all; the quartiles show the
spread that remains.
"""

from __future__ import annotations

import statistics
from typing import Iterable


def summary(values: Iterable[float]) -> dict[str, float]:
    """n, median, p25, p75, min, max of the values (ms or KB), rounded for reading."""
    data = sorted(float(v) for v in values)
    if not data:
        return {"n": 0}
    if len(data) == 1:
        p25 = p75 = data[0]
    else:
        p25, _, p75 = statistics.quantiles(data, n=4, method="inclusive")
    return {"n": len(data), "median": round(statistics.median(data), 1), "p25": round(p25, 1),
            "p75": round(p75, 1), "min": round(data[0], 1), "max": round(data[-1], 1)}


def median(values: Iterable[float]) -> float | None:
    data = [float(v) for v in values]
    return round(statistics.median(data), 2) if data else None


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return round(a / b, 2)


def phase_medians(phase_maps: Iterable[dict[str, float]]) -> dict[str, float]:
    """Median of each phase across calls, in the order the phases first appear."""
    seen: dict[str, list[float]] = {}
    for phases in phase_maps:
        for name, value in phases.items():
            seen.setdefault(name, []).append(value)
    return {name: round(statistics.median(values), 2) for name, values in seen.items()}
