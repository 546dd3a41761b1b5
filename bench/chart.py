"""The PNG for the README: where each contender's time goes, and how setup scales.

Top: one stacked bar per contender and card floor for setup, and for
teardown (plus the status calls), split into phases (the plugin's from its
log; the others' from their separate processes). Bottom: the probe pod's
setup and teardown latency, by the plugin and by pipework at equal work,
against the number of pods already attached.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on these machines; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

from bench.report import CARD, CONTENDERS, PLUGIN  # noqa: E402

WHOLE = "whole call (no phases)"
SHORT = {"pipework": "pipework, equal work", "pipework+arping": "pipework + 1 s arping",
         "floor": "floor.sh", "plugin+probe": "plugin + conflict probe"}


def draw(results: dict[str, Any], path: str) -> None:
    fig = plt.figure(figsize=(13, 9), constrained_layout=True)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.1, 1])
    colors = _palette(results)
    _phase_bars(fig.add_subplot(grid[0, 0]), results, [("setup", c) for c in CONTENDERS],
                "setup: median per phase (ms)", colors)
    teardown_rows = [("teardown", c) for c in CONTENDERS] + [("status", PLUGIN), ("status", CARD)]
    _phase_bars(fig.add_subplot(grid[0, 1]), results, teardown_rows,
                "teardown (and status): median per phase (ms)", colors)
    _scale(fig.add_subplot(grid[1, :]), results)
    machine = results.get("machine", {})
    fig.suptitle(f"vlanpipe benchmark - {machine.get('cores')} cores, {machine.get('cpu', '')}, "
                 f"{results.get('started', '')}", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _palette(results: dict[str, Any]) -> dict[str, Any]:
    """The plugin's phases from tab20, the others' processes from tab20b: no colour shared."""
    colors: dict[str, Any] = {}
    for who, entry in results["contenders"].items():
        cmap, base = (plt.get_cmap("tab20"), 0) if who == PLUGIN else (plt.get_cmap("tab20b"), 100)
        for kind in ("setup", "teardown", "status"):
            for phase in entry.get(kind, {}).get("phases_ms", {}):
                if phase not in colors:
                    index = sum(1 for v in colors.values() if v[1] == base)
                    colors[phase] = (cmap(index % cmap.N), base)
    return {WHOLE: "lightgrey", **{name: color for name, (color, _) in colors.items()}}


def _phase_bars(ax: Any, results: dict[str, Any], rows: list[tuple[str, str]], title: str,
                colors: dict[str, Any]) -> None:
    labels, used = [], set()
    rows = [(k, c) for k, c in rows if results["contenders"].get(c, {}).get(k)]
    for y, (kind, who) in enumerate(rows):
        entry = results["contenders"][who][kind]
        left = 0.0
        # A call that logs no phases (the plugin's status may not) is one bar.
        phases = entry["phases_ms"] or {WHOLE: entry["wall_ms"]["median"]}
        for phase, value in phases.items():
            ax.barh(y, value, left=left, color=colors[phase],
                    label=phase if phase not in used else None, edgecolor="white", linewidth=0.5)
            used.add(phase)
            left += value
        median = entry["wall_ms"]["median"]
        ax.text(max(left, median), y, f" {median:.0f} ms", va="center", fontsize=8)
        name = SHORT.get(who, who)
        labels.append(f"{name} {kind}" if kind == "status" else name)
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("ms")
    ax.margins(x=0.18)
    ax.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))


def _scale(ax: Any, results: dict[str, Any]) -> None:
    levels = results.get("scale", {}).get("levels", [])
    if not levels:
        ax.set_axis_off()
        return
    xs = [lv["pods_attached"] for lv in levels]
    for who, line in ((PLUGIN, "-"), ("pipework", "--")):
        for kind, marker in (("setup", "o"), ("teardown", "s")):
            walls = [lv[who][kind]["wall_ms"] for lv in levels]
            med = [w["median"] for w in walls]
            ax.errorbar(xs, med, yerr=[[m - w["p25"] for m, w in zip(med, walls)],
                                       [w["p75"] - m for m, w in zip(med, walls)]],
                        marker=marker, linestyle=line, capsize=4,
                        label=f"{SHORT.get(who, who)} {kind}")
            for x, m in zip(xs, med):
                ax.annotate(f"{m:.0f}", (x, m), textcoords="offset points", xytext=(6, 4),
                            fontsize=8)
    for kind, style in (("setup", "-."), ("teardown", ":")):
        entry = results["contenders"].get(CARD, {}).get(kind)
        if entry:
            ax.axhline(entry["wall_ms"]["median"], color="grey", linestyle=style, linewidth=1,
                       label=f"card floor {kind} (0 pods, for reference)")
    ax.set_xlabel("other pods already attached to the bridge")
    ax.set_ylabel("ms (median, bars p25-p75)")
    ax.set_ylim(bottom=0)
    ax.set_title("latency against pods attached", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
