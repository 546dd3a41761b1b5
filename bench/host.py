"""The Docker containers and the bridge one benchmark run owns, and their removal.

Everything is registered the moment it exists, so `cleanup` removes it
whatever stopped the run: the end, an exception or Ctrl-C. Containers carry
the run's label, so even one whose `docker run` was interrupted before it
printed its id is found, and the PID of the run, so that the next run can
remove the containers of a run that was killed outright (`sweep_stale`).
Deleting the bridge drops its OVS ports; removing a container destroys its
netns, which takes every veth pair with an end inside it. The bridge, the
veths and OVS itself live in the run's private namespaces (bench.sandbox).
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from bench.proc import pmap
from tests.support import hostnet, pluginstate

LABEL_KEY = "vlanpipe-bench"
PID_LABEL = "vlanpipe-bench-pid"
TMP_PREFIX = "vlanpipe-bench-"  # + PID of the run + "-": temp folders are swept like containers
IMAGE = hostnet.IMAGE


@dataclass(frozen=True)
class Pod:
    """One infra container of the benchmark: its Docker id, PID and pod name."""

    id: str
    pid: int
    name: str


class BenchHost:
    def __init__(self) -> None:
        self.run_id = secrets.token_hex(3)
        self.label = f"{LABEL_KEY}={self.run_id}"
        self.bridge = f"bnch{self.run_id}"
        self.root = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")
        self.pods: list[Pod] = []
        self.bridge_made = False

    def make_bridge(self) -> str:
        self.bridge_made = True
        return hostnet.make_bridge(self.bridge)

    def start_pod(self, name: str) -> Pod:
        """A labelled busybox sleeper standing in for a pod's infra container.

        `--network none`: Docker's eth0 plays no part here, and its host-side veth
        would appear on the shared host, where the e2e suite counts new links as leaks.
        """
        out = hostnet.run(["docker", "run", "-d", "--network", "none", "--label", self.label,
                           "--label", f"{PID_LABEL}={os.getpid()}",
                           "--name", f"vlanpipe-bench-{self.run_id}-{name}",
                           IMAGE, "sleep", "86400"]).stdout
        cid = out.strip().splitlines()[-1]
        pod = Pod(cid, hostnet.container_pid(cid), name)
        self.pods.append(pod)
        return pod

    def start_pods(self, names: list[str], jobs: int = 4) -> list[Pod]:
        return pmap(self.start_pod, names, jobs)

    def cleanup(self) -> list[str]:
        """Remove everything this run made; return what could not be removed."""
        problems = _remove_all(hostnet.containers(self.label) | {p.id for p in self.pods})
        if self.bridge_made:
            try:
                hostnet.delete_bridge(self.bridge)
            except hostnet.CommandError as exc:
                problems.append(str(exc))
        shutil.rmtree(self.root, ignore_errors=True)
        pluginstate.forget_config_cache(self.root)
        left = hostnet.containers(self.label)
        if left:
            problems.append(f"{len(left)} containers labelled {self.label} remain")
        return problems


def sweep_stale() -> int:
    """Remove the containers and temp folders of benchmark runs whose process is gone
    (killed with -9); return how many things were removed."""
    out = hostnet.run(["docker", "ps", "-a", "--no-trunc", "--filter", f"label={LABEL_KEY}",
                       "--format", f'{{{{.ID}}}} {{{{.Label "{PID_LABEL}"}}}}']).stdout
    stale = {cid for cid, _, pid in (line.partition(" ") for line in out.splitlines())
             if not _alive(pid)}
    _remove_all(stale)
    tmp = tempfile.gettempdir()
    folders = [os.path.join(tmp, name) for name in os.listdir(tmp)
               if name.startswith(TMP_PREFIX) and not _alive(name[len(TMP_PREFIX):].split("-")[0])]
    for folder in folders:  # --one-file-system: never follow into a mount
        hostnet.run(["rm", "-rf", "--one-file-system", folder], check=False)
        pluginstate.forget_config_cache(folder)
    return len(stale) + len(folders)


def _alive(pid: str) -> bool:
    return pid.isdigit() and os.path.exists(f"/proc/{pid}")


def _remove_all(ids: set[str]) -> list[str]:
    return [error for error in pmap(_remove_container, sorted(ids), 4) if error]


class Quiet:
    """Test runs on the same 2 cores shift the timings: wait for them, or say how much
    CPU they took during each measured phase."""

    def __init__(self) -> None:
        self.used: dict[str, list[float]] = {}  # label -> [pytest CPU s, wall s]

    def wait(self, limit_s: float) -> bool:
        """True once no pytest runs (at once if `limit_s` <= 0: run regardless)."""
        if limit_s <= 0:
            return True
        deadline = time.monotonic() + limit_s
        if test_runs():
            print(f"bench: waiting up to {limit_s:.0f} s for running pytest processes "
                  f"{test_runs()} to end", file=sys.stderr, flush=True)
        while test_runs():
            if time.monotonic() >= deadline:
                return False
            time.sleep(5)
        return True

    @contextmanager
    def watch(self, label: str) -> Iterator[None]:
        """Add the CPU that pytest processes (and the children they reaped) use meanwhile."""
        before, started = _cpu_of(test_runs()), time.monotonic()
        yield
        after = _cpu_of(test_runs())
        used = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
        entry = self.used.setdefault(label, [0.0, 0.0])
        entry[0] += max(0.0, used)
        entry[1] += time.monotonic() - started

    @property
    def disturbed(self) -> list[str]:
        return [f"{label}: pytest used {cpu:.0f} CPU-s in {wall:.0f} s "
                f"({100 * cpu / wall / (os.cpu_count() or 1):.0f} % of the machine)"
                for label, (cpu, wall) in self.used.items() if wall and cpu >= 0.5]


def _cpu_of(pids: list[int]) -> dict[int, float]:
    """utime+stime+cutime+cstime of each pid, in seconds."""
    found = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return found


def test_runs() -> list[int]:
    """PIDs of running pytest processes."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if any(arg.endswith(b"pytest") or arg == b"pytest" for arg in argv[:3]):
            found.append(int(entry))
    return found


def _remove_container(cid: str) -> str | None:
    try:
        hostnet.remove_container(cid)
    except hostnet.CommandError as exc:
        return str(exc)
    return None
