"""What the helpers left, and its removal: before/after states, the registry's leftovers,
cleanup, the sweep after a crash, and what the machine must have."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from tests.support.containerd.cni_run import DEBIAN_CNI_DIR
from tests.support.containerd.cri import delete_netns
from tests.support.containerd.ctr import (ADDRESS, LABEL, NAMESPACE, images, not_found,
                                          remove_image)
from tests.support.containerd.tasks import (REGISTRY, active_snapshots, containers, pid_alive,
                                            remove_container, shim_pids, tasks)
from tests.support.hostnet import NETNS_DIR, CommandError, run, wait_until


@dataclass(frozen=True)
class State:
    containers: frozenset[str]
    tasks: frozenset[str]
    snapshots: frozenset[str]  # Active only
    shims: frozenset[int]
    netns: frozenset[str]      # cni-* entries of /var/run/netns


def state(namespace: str = NAMESPACE) -> State:
    """What exists now in ``namespace`` (for before/after leak checks)."""
    try:
        netns = {n for n in os.listdir(NETNS_DIR) if n.startswith("cni-")}
    except FileNotFoundError:
        netns = set()
    return State(containers=frozenset(containers(namespace)),
                 tasks=frozenset(tasks(namespace)),
                 snapshots=frozenset(active_snapshots(namespace)),
                 shims=frozenset(shim_pids(namespace)),
                 netns=frozenset(netns))


def diff(before: State, after: State) -> list[str]:
    """Human-readable: what exists after that did not before."""
    out = [f"container {c}" for c in sorted(after.containers - before.containers)]
    out += [f"task {t}" for t in sorted(after.tasks - before.tasks)]
    out += [f"active snapshot {s}" for s in sorted(after.snapshots - before.snapshots)]
    out += [f"containerd-shim pid {p}" for p in sorted(after.shims - before.shims)]
    out += [f"{NETNS_DIR}/{n}" for n in sorted(after.netns - before.netns)]
    return out


def leftovers() -> list[str]:
    """What the helpers of this process made and still exists: containers, tasks and
    active snapshots by name, netns entries, live ctr processes, live task PIDs."""
    out = []
    by_ns: dict[str, set[str]] = {}
    for ns, name in REGISTRY.containers:
        by_ns.setdefault(ns, set()).add(name)
    for ns, names in sorted(by_ns.items()):
        for kind, existing in (("container", containers(ns)), ("task", set(tasks(ns))),
                               ("active snapshot", active_snapshots(ns)),
                               ("shim of", set(shim_pids(ns).values()))):
            out += [f"{kind} {ns}/{n}" for n in sorted(names & existing)]
    out += [f"{NETNS_DIR}/{n}" for n in sorted(REGISTRY.netns)
            if os.path.lexists(os.path.join(NETNS_DIR, n))]
    out += [f"ctr run {r.name} (pid {r.proc.pid}) still running" for r in REGISTRY.runs
            if r.proc.poll() is None]
    out += [f"pid {p} still alive" for p, started in sorted(REGISTRY.pids.items())
            if pid_alive(p, started)]
    return out


def cleanup() -> list[str]:
    """Remove everything the helpers of this process made (errors collected, not raised:
    call it in finally blocks). Returns the errors."""
    errors = []
    for handle in REGISTRY.runs:
        if handle.proc.poll() is None:
            try:
                handle.stop(timeout=15)
            except Exception as e:  # noqa: BLE001 - best effort
                errors.append(f"stop {handle.name}: {e}")
    REGISTRY.runs = [r for r in REGISTRY.runs if r.proc.poll() is None]
    for ns, name in sorted(REGISTRY.containers):
        try:
            remove_container(name, ns)
        except Exception as e:  # noqa: BLE001
            errors.append(f"remove {ns}/{name}: {e}")
    for name in sorted(REGISTRY.netns):
        try:
            delete_netns(name)
        except Exception as e:  # noqa: BLE001
            errors.append(f"netns {name}: {e}")
    for pid, started in list(REGISTRY.pids.items()):
        if not pid_alive(pid, started):
            del REGISTRY.pids[pid]
    return errors


def sweep(namespace: str = NAMESPACE) -> None:
    """After a crash (REGISTRY lost): remove every container labelled vlanpipe-test=1 in
    ``namespace``, with its task and snapshot. Not for use while another test process
    may be using the same namespace."""
    for name in containers(namespace, label=LABEL):
        remove_container(name, namespace)


def purge_namespace(namespace: str = NAMESPACE, timeout: float = 30) -> None:
    """Remove the namespace altogether: sweep(), every image (content and snapshots are
    then garbage-collected), then ``ctr namespaces rm`` (retried until GC has emptied
    it). Only when no other test process uses ``namespace``; import_image() recreates it."""
    sweep(namespace)
    for ref in images(namespace):
        remove_image(ref, namespace)
    last: list[subprocess.CompletedProcess[str]] = []

    def removed() -> bool:
        proc = run(["ctr", "--address", ADDRESS, "namespaces", "rm", namespace], check=False)
        last[:] = [proc]
        return proc.returncode == 0 or not_found(proc)

    if not wait_until(removed, timeout=timeout, interval=0.5):
        raise CommandError(last[0])


def preflight() -> list[str]:
    """What is missing for these helpers (empty list: all there)."""
    missing = []
    for tool in ("ctr", "unshare", "nsenter", "ip", "docker"):
        if shutil.which(tool) is None:
            missing.append(f"`{tool}` is not on PATH")
    if not os.path.exists(ADDRESS):
        missing.append(f"containerd socket {ADDRESS} missing (dockerd not running?)")
    elif run(["ctr", "--address", ADDRESS, "version"], check=False, timeout=20).returncode:
        missing.append(f"containerd at {ADDRESS} does not answer `ctr version`")
    if not os.path.exists(os.path.join(DEBIAN_CNI_DIR, "loopback")):
        missing.append(f"{DEBIAN_CNI_DIR}/loopback missing (containernetworking-plugins)")
    return missing
