"""Look inside one plugin call: what it imported, how long the imports took, what it ran.

Two fresh interpreters per call: `_probe_helper.py` (audit hook: processes
started, modules loaded) and `python -X importtime` (import cost, grouped by
the package that caused it). These are diagnostics, not timings to compare:
both add their own overhead, so they run apart from the measured calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_probe_helper.py")

# Which package an import is charged to: the nearest importer (itself included) listed here.
GROUPS = {
    "yaml": "yaml", "_yaml": "yaml",
    "plumbum": "plumbum",
    "docker": "docker SDK", "requests": "docker SDK", "urllib3": "docker SDK",
    "idna": "docker SDK", "charset_normalizer": "docker SDK", "certifi": "docker SDK",
    "websocket": "docker SDK", "packaging": "docker SDK",
    "etcd3gw": "etcd3gw", "futurist": "etcd3gw",
    "plugin": "plugin code", "pipework_wrapper": "plugin code",
    "site": "site (.pth files, editable finder)",
}
HEAVY = ("docker", "requests", "urllib3", "plumbum", "yaml", "subprocess", "etcd3gw")


def profile_plugin(launcher: str, pod_name: str, infra_id: str, root: str) -> dict[str, Any]:
    """setup, status, teardown of an attached-then-detached pod, twice: audited, then
    under -X importtime. The status audit checks that status runs no subprocess and imports no Docker SDK."""
    argv = ["default", pod_name, infra_id]
    report_path = os.path.join(root, "audit.json")
    audits = {command: audit(launcher, [command, *argv], report_path)
              for command in ("setup", "status", "teardown")}
    imports = {command: import_profile(launcher, [command, *argv])
               for command in ("setup", "status", "teardown")}
    bad = {c: a["code"] for c, a in audits.items() if a["code"]}
    if bad:
        raise RuntimeError(f"profiled plugin calls failed: {bad}")
    return {"status_path": audits["status"], "profile": {"calls": audits, "imports": imports}}


def audit(launcher: str, args: list[str], report_path: str) -> dict[str, Any]:
    """Run the launcher under the audit-hook helper; return processes started and modules."""
    proc = subprocess.run([sys.executable, HELPER, report_path, launcher, *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    with open(report_path, encoding="utf-8") as handle:
        report = json.load(handle)
    os.unlink(report_path)
    spawned = report["spawned"]
    return {
        "code": proc.returncode,
        "processes": len(spawned),
        "by_program": _count(os.path.basename(argv[0]) for argv in spawned),
        "heavy_imports": [m for m in HEAVY if m in report["module_roots"]],
        "modules": report["module_count"],
    }


def import_profile(launcher: str, args: list[str], top: int = 10) -> dict[str, Any]:
    """Self import time (ms) of one call per group, and its costliest modules,
    from `python -X importtime`."""
    proc = subprocess.run([sys.executable, "-X", "importtime", launcher, *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    totals: dict[str, float] = {}
    roots = _tree(proc.stderr)
    for root in roots:
        _charge(root, None, totals)
    modules = sorted(_walk(roots), key=lambda n: -n.self_us)[:top]
    return {
        "total_ms": round(sum(totals.values()) / 1000, 1),
        "groups_ms": {k: round(v / 1000, 1)
                      for k, v in sorted(totals.items(), key=lambda kv: -kv[1])},
        "top_modules_ms": {n.name: round(n.self_us / 1000, 1) for n in modules},
    }


def _walk(nodes: list["_Node"]) -> list["_Node"]:
    found = []
    for node in nodes:
        found.append(node)
        found.extend(_walk(node.children))
    return found


@dataclass
class _Node:
    name: str
    self_us: int
    children: list["_Node"] = field(default_factory=list)


def _tree(stderr: str) -> list[_Node]:
    """importtime prints a module after its imports, indented by depth: rebuild the tree."""
    stack: list[tuple[int, _Node]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name_field = line.split(":", 1)[1].split("|", 2)
        # format: "import time: {self:>9} | {cumulative:>10} | {'  ' * level}{name}"
        level = (len(name_field) - len(name_field.lstrip()) - 1) // 2
        node = _Node(name_field.strip(), int(self_us))
        while stack and stack[-1][0] > level:
            node.children.insert(0, stack.pop()[1])
        stack.append((level, node))
    return [node for _, node in stack]


def _charge(node: _Node, group: str | None, totals: dict[str, float]) -> None:
    root = node.name.split(".")[0]
    if root.startswith("__editable__"):
        root = "site"
    own = GROUPS.get(root)
    group = own or group
    key = own or (f"stdlib via {group}" if group else "stdlib")
    totals[key] = totals.get(key, 0) + node.self_us
    for child in node.children:
        _charge(child, group, totals)


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))
