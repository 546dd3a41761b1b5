"""The CRI order by hand: a named network namespace first, the test's CNI ADD into it,
then a container that joins it (``ctr run -d --with-ns``)."""

from __future__ import annotations

import os
import secrets
import subprocess
import uuid
from dataclasses import dataclass
from typing import Sequence

from tests.support.containerd.ctr import LABEL, NAMESPACE, ctr, image_ref
from tests.support.containerd.tasks import (REGISTRY, exec_in, new_name, remember_pid,
                                            remove_container, tasks)
from tests.support.hostnet import NETNS_DIR, CommandError, run, wait_until


@dataclass(frozen=True)
class NetNS:
    name: str

    @property
    def path(self) -> str:
        return os.path.join(NETNS_DIR, self.name)

    def inode(self) -> tuple[int, int]:
        return ns_inode(self.path)


def ns_inode(path: str) -> tuple[int, int]:
    """(st_dev, st_ino) of a namespace file: equal for the same namespace, whether
    reached as /var/run/netns/NAME or /proc/PID/ns/net."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def add_netns(name: str | None = None) -> NetNS:
    """``ip netns add cni-<uuid>`` (as containerd's CRI names them): an empty network
    namespace pinned at /var/run/netns/NAME, with no process in it. Delete it with
    delete_netns() in a finally block: concurrent leak checks diff /var/run/netns."""
    ns = NetNS(name or f"cni-{uuid.uuid4()}")
    REGISTRY.netns.add(ns.name)
    run(["ip", "netns", "add", ns.name])
    return ns


def delete_netns(ns: NetNS | str) -> None:
    """``ip netns delete`` (no error if gone)."""
    name = ns.name if isinstance(ns, NetNS) else ns
    if os.path.lexists(os.path.join(NETNS_DIR, name)):
        proc = run(["ip", "netns", "delete", name], check=False)
        if proc.returncode != 0 and os.path.lexists(os.path.join(NETNS_DIR, name)):
            raise CommandError(proc)
    REGISTRY.netns.discard(name)


def random_container_id() -> str:
    """A 64-hex id, as CRI gives CNI_CONTAINERID (the sandbox id)."""
    return secrets.token_hex(32)


@dataclass(frozen=True)
class Task:
    """A detached container (``ctr run -d``)."""
    name: str
    namespace: str
    pid: int

    def exec(self, *argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return exec_in(self.name, *argv, namespace=self.namespace, check=check)

    def remove(self) -> None:
        remove_container(self.name, self.namespace)


def run_in_netns(netns: NetNS | str, argv: Sequence[str] = ("sleep", "3600"), *,
                 name: str | None = None, image: str | None = None,
                 namespace: str = NAMESPACE, ctr_args: Sequence[str] = (),
                 timeout: float = 60) -> Task:
    """``ctr run -d --null-io --with-ns network:PATH IMAGE NAME ARGV``: a container that
    joins an existing network namespace (no CNI involved; no DEL ever). Returns once
    the task is RUNNING. Remove with Task.remove() / remove_container()."""
    path = netns.path if isinstance(netns, NetNS) else netns
    image = image or image_ref()
    name = name or new_name("cri")
    REGISTRY.containers.add((namespace, name))
    ctr("run", "-d", "--null-io", "--label", LABEL, "--with-ns", f"network:{path}",
        *ctr_args, image, name, *argv, namespace=namespace, timeout=timeout)
    pid = wait_until(lambda: (tasks(namespace).get(name) or (0, ""))[0], timeout=timeout)
    if not pid:
        raise RuntimeError(f"task {name} has no PID after {timeout} s")
    remember_pid(pid)
    return Task(name, namespace, pid)
