"""The targets, judged on one run's results, and the tables that show them.

Targets are ratios against peers measured in the same invocation, so they
mean the same on a fast or a slow machine; the absolute milliseconds are
printed beside them for the reader, never judged.
"""

from __future__ import annotations

from typing import Any

from bench import stats

CONTENDERS = ("plugin", "pipework", "ovs-docker", "floor")
# Setup phases that wait on Open vSwitch, and those that are the interpreter's own work.
OVS_BOUND = ("pipework", "ovs-vsctl")
CPU_BOUND = ("startup", "config", "docker", "launch + exit (not logged)")
STATUS_RSS_MB, SETUP_RSS_MB = 50, 80


def _med(results: dict[str, Any], who: str, kind: str) -> float | None:
    entry = results["contenders"].get(who, {}).get(kind)
    return entry["wall_ms"]["median"] if entry else None


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: what was measured, the limit, pass or fail."""
    rows = []
    setup, teardown, status = (_med(results, "plugin", k) for k in ("setup", "teardown", "status"))
    pipework_setup = _med(results, "pipework", "setup")
    rows.append(_ratio_row("setup <= 1.6 x bare pipework setup",
                           stats.ratio(setup, pipework_setup), 1.6))
    rows.append(_ratio_row("teardown <= 1.2 x ovs-docker del-port",
                           stats.ratio(teardown, _med(results, "ovs-docker", "teardown")), 1.2))
    path = results.get("status_path", {})
    clean = path.get("processes") == 0 and "docker" not in path.get("heavy_imports", ["docker"])
    row = _ratio_row("status <= 0.35 x bare pipework setup, no Docker SDK, no subprocess",
                     stats.ratio(status, pipework_setup), 0.35)
    row["ok"] = bool(row["ok"] and clean)
    row["detail"] += (f"; processes started: {path.get('processes')}, "
                      f"heavy imports: {', '.join(path.get('heavy_imports', [])) or 'none'}")
    rows.append(row)
    levels = results.get("scale", {}).get("levels", [])
    if len(levels) >= 2:
        first, last = levels[0], levels[-1]
        rows.append(_ratio_row(
            f"setup with {last['pods_attached']} pods attached "
            f"<= 1.25 x with {first['pods_attached']}",
            stats.ratio(last["setup"]["wall_ms"]["median"], first["setup"]["wall_ms"]["median"]),
            1.25))
    burst = results.get("burst")
    if burst:
        b = burst["setup"]
        row = _ratio_row(f"burst of {burst['pods']}: no failure, wall <= 0.8 x sequential",
                         b["ratio_to_sequential"], 0.8)
        row["ok"] = bool(row["ok"] and b["failures"] == 0 and b["sequential_failures"] == 0)
        row["detail"] += (f"; {b['wall_s']} s vs {b['sequential_wall_s']} s, failures: "
                          f"{b['failures']} concurrent, {b['sequential_failures']} sequential")
        rows.append(row)
    memory = results.get("memory_mb", {}).get("plugin", {})
    for kind, limit in (("status", STATUS_RSS_MB), ("setup", SETUP_RSS_MB)):
        peak = memory.get(kind)
        if peak is not None:
            rows.append({"target": f"peak RSS of {kind} <= {limit} MB", "value": peak,
                         "limit": limit, "ok": peak <= limit, "detail": f"{peak} MB"})
    return rows


def _ratio_row(name: str, value: float | None, limit: float) -> dict[str, Any]:
    return {"target": name, "value": value, "limit": limit,
            "ok": value is not None and value <= limit, "detail": f"ratio {value}"}


# --- tables --------------------------------------------------------------------------


def _cell(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "-"
    w = entry["wall_ms"]
    return f"{w['median']:.1f} [{w['p25']:.0f}-{w['p75']:.0f}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table (also readable as plain text)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render(results: dict[str, Any]) -> str:
    """Every table of the run, Markdown, for the terminal and for the README."""
    out: list[str] = []
    for line in results.get("disturbed_by", []):
        out.append(f"Note: a test run shared the CPU during {line}")
    c = results["contenders"]
    n = c.get("plugin", {}).get("setup", {}).get("wall_ms", {}).get("n", 0)
    out.append(f"Contenders: median ms [p25-p75], {n} interleaved runs each, "
               "same container, bridge, VLAN and address")
    memory = results.get("memory_mb", {})
    programs = results.get("programs_executed", {})
    calls = ("setup", "teardown", "status")
    out += _table(
        ["contender", "setup", "teardown", "status", "CPU ms setup / teardown",
         "programs run setup / teardown / status", "peak RSS MB setup / teardown / status"],
        [[name, _cell(c[name].get("setup")), _cell(c[name].get("teardown")),
          _cell(c[name].get("status")),
          f"{c[name]['setup']['cpu_ms']:.0f} / {c[name]['teardown']['cpu_ms']:.0f}",
          " / ".join(_fmt0(programs.get(name, {}).get(k)) for k in calls),
          " / ".join(_fmt1(memory.get(name, {}).get(k)) for k in calls)]
         for name in CONTENDERS if name in c])
    out.append("(CPU: user+system of the call and its children, not of the daemons they ask; "
               "programs run: successful execve of the whole process tree, from strace; "
               "peak RSS: the largest single process, from /usr/bin/time)")
    out.append("")
    out.append("Ratios: plugin median / peer median")
    ratio_rows = []
    for peer in CONTENDERS[1:]:
        if peer in c:
            ratio_rows.append([f"plugin / {peer}",
                               _fmt(stats.ratio(_med(results, "plugin", "setup"),
                                                _med(results, peer, "setup"))),
                               _fmt(stats.ratio(_med(results, "plugin", "teardown"),
                                                _med(results, peer, "teardown"))),
                               _fmt(stats.ratio(_med(results, "plugin", "status"),
                                                _med(results, peer, "setup")))])
    out += _table(["", "setup", "teardown", "status / peer's setup"], ratio_rows)
    out.append("")
    out += _phase_lines(results)
    scale = results.get("scale")
    if scale and scale.get("levels"):
        out.append("")
        out.append("Scale: the probe pod's setup and teardown with other pods attached (median ms)")
        base = scale["levels"][0]["setup"]["wall_ms"]["median"]
        out += _table(["pods attached", "setup", "teardown", "setup / at 0",
                       "setup's OVS-bound phases", "setup's CPU-bound phases",
                       "ovs-vswitchd CPU"],
                      [[str(lv["pods_attached"]), _cell(lv["setup"]), _cell(lv["teardown"]),
                        _fmt(stats.ratio(lv["setup"]["wall_ms"]["median"], base)),
                        f"{_sum(lv, OVS_BOUND):.0f}", f"{_sum(lv, CPU_BOUND):.0f}",
                        f"{lv.get('vswitchd_cpu_pct', 0):.0f} %"]
                       for lv in scale["levels"]])
        out.append("(OVS-bound: " + ", ".join(OVS_BOUND) + "; CPU-bound: "
                   + ", ".join(CPU_BOUND) + ")")
    burst = results.get("burst")
    if burst:
        b, t = burst["setup"], burst["teardown"]
        out.append("")
        out.append(f"Burst: {burst['pods']} pods at once vs one after another "
                   f"({burst['distinct_addresses']} distinct addresses handed out)")
        out += _table(["", "concurrent wall", "sequential wall", "ratio", "failures"],
                      [["setup", f"{b['wall_s']} s", f"{b['sequential_wall_s']} s",
                        _fmt(b["ratio_to_sequential"]), str(b["failures"])],
                       ["teardown", f"{t['wall_s']} s", f"{t['sequential_wall_s']} s",
                        _fmt(t["ratio_to_sequential"]), str(t["failures"])]])
    out.append("")
    out.append("Targets")
    out += _table(["target", "measured", "result"],
                  [[t["target"], t["detail"], "PASS" if t["ok"] else "FAIL"]
                   for t in results["targets"]])
    return "\n".join(out)


def _phase_lines(results: dict[str, Any]) -> list[str]:
    plugin = results["contenders"].get("plugin", {})
    lines = ["Plugin phases (median ms, from its JSON log; "
             "startup = interpreter + exec_cli import)"]
    for kind in ("setup", "teardown", "status"):
        phases = plugin.get(kind, {}).get("phases_ms", {})
        if phases:
            lines.append(f"- {kind}: " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()))
    profile = results.get("profile")
    if profile:
        lines.append("")
        lines.append("Plugin internals (one call each, audit hook and -X importtime)")
        rows = []
        for kind, call in profile["calls"].items():
            imports = profile["imports"][kind]
            top = ", ".join(f"{k} {v:.0f}" for k, v in list(imports["groups_ms"].items())[:4])
            programs = ", ".join(f"{k} x{v}" for k, v in call["by_program"].items()) or "none"
            rows.append([kind, programs, ", ".join(call["heavy_imports"]) or "none",
                         f"{imports['total_ms']:.0f} ({top})"])
        lines += _table(["call", "processes it starts", "heavy imports", "import ms (largest)"],
                        rows)
    return lines


def _sum(level: dict[str, Any], phases: tuple[str, ...]) -> float:
    return sum(level["setup"]["phases_ms"].get(p, 0.0) for p in phases)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _fmt0(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _fmt1(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
