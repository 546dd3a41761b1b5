"""Containers and tasks in containerd, and the registry of what the helpers made (so that
nothing is left: see ``leaks``)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.support.containerd.ctr import NAMESPACE, ctr, not_found
from tests.support.hostnet import CommandError, run, wait_until

if TYPE_CHECKING:
    from tests.support.containerd.cni_run import ForegroundRun


@dataclass
class Registry:
    """What this process made; cleanup() and leftovers() work from it."""
    containers: set[tuple[str, str]] = field(default_factory=set)  # (namespace, name)
    netns: set[str] = field(default_factory=set)                   # names in /var/run/netns
    runs: list[ForegroundRun] = field(default_factory=list)
    pids: dict[int, str] = field(default_factory=dict)             # pid -> /proc/PID/stat start time


REGISTRY = Registry()


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def remember_pid(pid: int) -> None:
    started = _start_time(pid)
    if pid > 0 and started is not None:
        REGISTRY.pids[pid] = started


def pid_alive(pid: int, started: str | None = None) -> bool:
    """True while ``pid`` exists (and, if ``started`` given, is still that same process)."""
    now = _start_time(pid)
    return now is not None and (started is None or now == started)


def new_name(hint: str = "c") -> str:
    """A unique container name (the CNI_CONTAINERID becomes ``<namespace>-<name>``)."""
    hint = re.sub(r"[^a-zA-Z0-9_.-]", "-", hint)[:30] or "c"
    return f"vp-{hint}-{secrets.token_hex(3)}"


# --- containers and tasks -------------------------------------------------------------


def tasks(namespace: str = NAMESPACE) -> dict[str, tuple[int, str]]:
    """``ctr tasks ls``: name -> (pid, status) (status RUNNING, CREATED, STOPPED, ...)."""
    found = {}
    for line in ctr("tasks", "ls", namespace=namespace).stdout.splitlines()[1:]:
        words = line.split()
        if len(words) >= 3:
            found[words[0]] = (int(words[1]), words[2])
    return found


def containers(namespace: str = NAMESPACE, label: str | None = None) -> set[str]:
    """Names of the containers in ``namespace`` (only those with ``label`` if given)."""
    args = ["containers", "ls", "-q"]
    if label:
        key, _, value = label.partition("=")
        args.append(f'labels."{key}"=={value}' if value else f'labels."{key}"')
    return set(ctr(*args, namespace=namespace).stdout.split())


def active_snapshots(namespace: str = NAMESPACE) -> set[str]:
    """Keys of Active snapshots (a container's rootfs; the image's own are Committed)."""
    found = set()
    for line in ctr("snapshots", "ls", namespace=namespace).stdout.splitlines()[1:]:
        words = line.split()
        if words and words[-1] == "Active":
            found.add(words[0])
    return found


def shim_pids(namespace: str = NAMESPACE) -> dict[int, str]:
    """containerd-shim processes serving ``namespace``: pid -> container id."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]).startswith("containerd-shim") \
                and "-namespace" in argv and "-id" in argv:
            i, j = argv.index("-namespace"), argv.index("-id")
            if i + 1 < len(argv) and argv[i + 1] == namespace and j + 1 < len(argv):
                found[int(entry)] = argv[j + 1]
    return found


def task_pid(name: str, namespace: str = NAMESPACE) -> int | None:
    entry = tasks(namespace).get(name)
    return entry[0] if entry else None


def exec_in(name: str, *argv: str, namespace: str = NAMESPACE, check: bool = False,
            timeout: float = 60, fifo_dir: str | None = None) -> subprocess.CompletedProcess[str]:
    """``ctr task exec --exec-id <unique> NAME ARGV`` (output captured, stdin /dev/null).
    Busybox applets; the container's capabilities are containerd's defaults (ctr
    grants no CAP_NET_ADMIN) — use nsenter_net() to configure interfaces."""
    extra = ["--fifo-dir", fifo_dir] if fifo_dir else []
    return ctr("tasks", "exec", *extra, "--exec-id", "x" + secrets.token_hex(6), name, *argv,
               namespace=namespace, check=check, timeout=timeout)


def nsenter_net(pid: int, *argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a host binary in the network namespace of ``pid`` (the task's PID)."""
    return run(["nsenter", "-t", str(pid), "-n", *argv], check=check)


def remove_container(name: str, namespace: str = NAMESPACE, timeout: float = 30) -> None:
    """Kill the task (SIGKILL), delete it, delete the container and its snapshot.
    Whatever is already gone is fine; raises if something remains."""
    if name in tasks(namespace):
        ctr("tasks", "kill", "-s", "SIGKILL", name, namespace=namespace, check=False)
        wait_until(lambda: tasks(namespace).get(name, (0, "STOPPED"))[1] == "STOPPED",
                   timeout=timeout, interval=0.1)
        proc = ctr("tasks", "rm", "-f", name, namespace=namespace, check=False)
        if proc.returncode != 0 and not not_found(proc):
            raise CommandError(proc)
    proc = ctr("containers", "rm", name, namespace=namespace, check=False)
    if proc.returncode != 0 and not not_found(proc):
        raise CommandError(proc)
    REGISTRY.containers.discard((namespace, name))
