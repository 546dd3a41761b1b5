"""A real runtime calling CNI: the foreground ``ctr run --rm --cni``, in a private mount
namespace where the test's own folders are /etc/cni/net.d, /opt/cni/bin and /var/lib/cni."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from tests.support.containerd.ctr import LABEL, NAMESPACE, ctr, ctr_argv, image_ref
from tests.support.containerd.tasks import (REGISTRY, exec_in, new_name, remember_pid,
                                            remove_container, tasks)

DEBIAN_CNI_DIR = "/usr/lib/cni"  # containernetworking-plugins: loopback, bridge, host-local...

# What go-cni (inside ctr) reads and runs, and where libcni caches results.
CNI_CONF_DIR = "/etc/cni/net.d"
CNI_BIN_DIR = "/opt/cni/bin"
CNI_CACHE_DIR = "/var/lib/cni"

# Runs in the private mount namespace made by `unshare --mount`, then execs ctr.
# $1 scratch folder (a tmpfs is mounted on it, in this namespace only), then pairs
# SRC TARGET, then "--", then the command. A TARGET that does not exist on the
# host gets an overlay on its nearest existing ancestor whose upper layer (on the
# private tmpfs) holds the missing folders: the host itself is not written, and the
# overlay disappears with the namespace. Writes into that ancestor made by processes
# in the namespace land in the tmpfs, so no overlay is used for /var/lib (see
# CniDirs.mount_pairs).
_PRIVATE_MOUNTS_SH = r'''
set -e
scratch=$1; shift
mount -t tmpfs vlanpipe-ctr-scratch "$scratch"
n=0
while [ "$1" != "--" ]; do
  src=$1 tgt=$2; shift 2
  if [ ! -d "$tgt" ]; then
    base=$tgt
    while [ ! -d "$base" ]; do base=$(dirname "$base"); done
    rel=${tgt#"$base"}; rel=${rel#/}
    n=$((n+1))
    mkdir -p "$scratch/upper$n/$rel" "$scratch/work$n"
    mount -t overlay overlay -o "lowerdir=$base,upperdir=$scratch/upper$n,workdir=$scratch/work$n" "$base"
  fi
  mount --bind "$src" "$tgt"
done
shift
exec "$@"
'''


@dataclass
class CniDirs:
    """The test's own ``/etc/cni/net.d``, ``/opt/cni/bin`` and ``/var/lib/cni``, under ``root``."""
    root: str

    @property
    def conf_dir(self) -> str:
        return os.path.join(self.root, "net.d")

    @property
    def bin_dir(self) -> str:
        return os.path.join(self.root, "bin")

    @property
    def cache_dir(self) -> str:
        """Replaces /var/lib/cni: libcni's result cache (``results/<net>-<id>-<if>``) and
        host-local's default data dir land here, not on the host."""
        return os.path.join(self.root, "cache")

    @property
    def scratch_dir(self) -> str:
        return os.path.join(self.root, "scratch")

    @property
    def fifo_dir(self) -> str:
        """ctr's stdio FIFOs (default /run/containerd/fifo)."""
        return os.path.join(self.root, "fifo")

    def write_conflist(self, conf: Mapping[str, Any], filename: str = "10-test.conflist") -> str:
        """Write a network config list. go-cni uses the FIRST file (sorted by name) with
        suffix .conf/.conflist/.json; this removes all others so that it is this one."""
        for old in os.listdir(self.conf_dir):
            os.unlink(os.path.join(self.conf_dir, old))
        path = os.path.join(self.conf_dir, filename)
        with open(path, "w") as f:
            json.dump(conf, f, indent=1)
        return path

    def install(self, name: str, text: str | None = None, source: str | None = None) -> str:
        """Put an executable plugin ``name`` in the bin dir, from ``text`` or a copy of ``source``."""
        path = os.path.join(self.bin_dir, name)
        if source is not None:
            shutil.copy2(source, path)
        else:
            with open(path, "w") as f:
                f.write(text or "")
        os.chmod(path, 0o755)
        return path

    def mount_pairs(self) -> list[tuple[str, str]]:
        return [(self.conf_dir, CNI_CONF_DIR), (self.bin_dir, CNI_BIN_DIR),
                (self.cache_dir, CNI_CACHE_DIR)]

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """argv run in a private mount namespace with the test's folders in place."""
        # No overlay on /var/lib (it would swallow writes of plugins there): create the
        # mount point, as libcni itself does on the first `ctr run --cni`.
        os.makedirs(CNI_CACHE_DIR, exist_ok=True)
        pairs = [word for pair in self.mount_pairs() for word in pair]
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                _PRIVATE_MOUNTS_SH, "sh", self.scratch_dir, *pairs, "--", *argv]


def make_cni_dirs(root: str, loopback: bool = True) -> CniDirs:
    """Create the folders under ``root``; copy Debian's ``loopback`` into the bin dir.

    Measured with Debian's ctr 1.6.20: go-cni never runs ``loopback`` (runc itself
    brings ``lo`` up in the netns it creates), and CNI_PATH is
    ``/opt/cni/bin:/usr/lib/cni``, so Debian's plugins would be found anyway; the
    copy keeps a conflist that chains ``loopback`` (or another ctr build) working."""
    dirs = CniDirs(root)
    for d in (dirs.conf_dir, dirs.bin_dir, dirs.cache_dir, dirs.scratch_dir, dirs.fifo_dir):
        os.makedirs(d, exist_ok=True)
    if loopback:
        dirs.install("loopback", source=os.path.join(DEBIAN_CNI_DIR, "loopback"))
    return dirs


class RunFailed(RuntimeError):
    """The foreground ctr exited before its task was running (e.g. CNI ADD failed)."""


@dataclass
class ForegroundRun:
    """A ``ctr run --rm --cni`` in the foreground; made by :func:`start_cni_run`."""
    name: str
    namespace: str
    dirs: CniDirs
    proc: subprocess.Popen[bytes]
    output_path: str
    pid: int | None = None  # the task's PID once running
    returncode: int | None = None

    @property
    def container_id(self) -> str:
        """What go-cni passes as CNI_CONTAINERID."""
        return f"{self.namespace}-{self.name}"

    def output(self) -> str:
        """ctr's combined stdout/stderr so far (the container's output and ctr's errors)."""
        with open(self.output_path, errors="replace") as f:
            return f.read()

    def wait_running(self, timeout: float = 60) -> int:
        """Wait until the task is RUNNING, which ctr does only after CNI ADD succeeded;
        return its PID. Raises RunFailed (with ctr's output) if ctr exits first."""
        deadline = time.monotonic() + timeout
        while True:
            entry = tasks(self.namespace).get(self.name)
            if entry and entry[1] == "RUNNING" and self.proc.poll() is None:
                self.pid = entry[0]
                remember_pid(self.pid)
                return self.pid
            if entry and entry[0] > 0:
                remember_pid(entry[0])
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise RunFailed(f"ctr run {self.name} exited {self.proc.returncode} before "
                                f"its task ran: {self.output().strip()}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"task {self.name} not running after {timeout} s: "
                                   f"{self.output().strip()}")
            time.sleep(0.05)

    def exec(self, *argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return exec_in(self.name, *argv, namespace=self.namespace, check=check,
                       fifo_dir=self.dirs.fifo_dir)

    def stop(self, timeout: float = 30) -> int:
        """End the task so that ctr itself sends CNI DEL and removes task, container and
        snapshot: ``ctr task kill -s SIGKILL NAME``, then wait for ctr to exit.
        Returns ctr's exit status (137 after SIGKILL; 1 if ADD had failed).
        If ctr does not exit in time it is killed (no DEL then). Always finishes with
        remove_container(), a no-op when ctr cleaned up (it also reaps a task that a
        failed ADD left CREATED and the container ctr then failed to delete)."""
        try:
            if self.proc.poll() is None:
                ctr("tasks", "kill", "-s", "SIGKILL", self.name, namespace=self.namespace,
                    check=False)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            self.returncode = self.proc.returncode
        finally:
            remove_container(self.name, self.namespace)
        return self.returncode

    def __enter__(self) -> "ForegroundRun":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_cni_run(dirs: CniDirs, argv: Sequence[str] = ("sleep", "3600"), *,
                  name: str | None = None, image: str | None = None,
                  namespace: str = NAMESPACE, env: Mapping[str, str] | None = None,
                  ctr_args: Sequence[str] = (), wait: bool = True,
                  timeout: float = 60) -> ForegroundRun:
    """Start ``ctr run --rm --cni IMAGE NAME ARGV`` in the foreground, in a private mount
    namespace where ``dirs`` are /etc/cni/net.d, /opt/cni/bin and /var/lib/cni.

    ctr's environment is this process's minus CNI_*, plus ``env``; its working
    directory is ``dirs.root``. Plugins inherit both (PWD is set to that folder).
    With ``wait`` (default) returns once the task runs, i.e. after ADD (raises RunFailed
    if ADD failed — call ``stop()`` anyway, see there); for an ARGV that ends by itself,
    pass ``wait=False`` and wait on ``.proc`` (ctr then sends DEL and cleans up alone).
    Use as a context manager, or call ``stop()``.
    """
    image = image or image_ref()
    name = name or new_name("cni")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    environment.update(env or {})
    output_path = os.path.join(dirs.root, f"ctr-run-{name}.log")
    cmd = dirs.wrap(ctr_argv("run", "--rm", "--cni", "--label", LABEL,
                             "--fifo-dir", dirs.fifo_dir, *ctr_args, image, name, *argv,
                             namespace=namespace))
    with open(output_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=environment, cwd=dirs.root)
    handle = ForegroundRun(name, namespace, dirs, proc, output_path)
    REGISTRY.containers.add((namespace, name))
    REGISTRY.runs.append(handle)
    remember_pid(proc.pid)
    if wait:
        handle.wait_running(timeout)
    return handle
