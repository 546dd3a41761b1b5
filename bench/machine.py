"""What the numbers were measured on: ratios travel between machines, milliseconds do not."""

from __future__ import annotations

import os
import platform
import shutil
from typing import Any

from tests.support import hostnet


def describe() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(_meminfo("MemTotal") / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "docker": _first_line(["docker", "version", "--format", "{{.Server.Version}}"]),
        "cgroup": _first_line(["docker", "info", "--format", "v{{.CgroupVersion}}"]),
        "openvswitch": _first_line(["ovs-vsctl", "--version"]),
        "pipework": _pipework_variant(),
    }


def code_state(repo: str) -> dict[str, Any]:
    """Which code was measured: others edit the tree while a benchmark runs."""
    head = hostnet.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], check=False).stdout
    dirty = hostnet.run(["git", "-C", repo, "status", "--porcelain", "--", "plugin",
                         "pipework_wrapper"], check=False).stdout.splitlines()
    return {"commit": head.strip() or "unknown", "uncommitted_files": len(dirty)}


def mem_available_mb() -> int:
    return _meminfo("MemAvailable") // 1024


def _meminfo(key: str) -> int:
    """A /proc/meminfo value in KB."""
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _os_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _first_line(argv: list[str]) -> str:
    proc = hostnet.run(argv, check=False, timeout=20)
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def _pipework_variant() -> str:
    """The 2014 copy (docker-executor sdist) or a newer upstream: they differ in OVS marks."""
    path = shutil.which("pipework")
    if not path:
        return "missing"
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    kind = "2024-style, writes external-ids" if "external-ids" in text else "2014 copy"
    return f"{path} ({kind})"
