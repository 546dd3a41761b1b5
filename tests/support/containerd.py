"""A real container runtime calling CNI, for tests: containerd (Docker's own, 1.6) via ``ctr``.

Plain functions and classes, no pytest. Two ways in:

* ``ctr run --rm --cni``, in the foreground (:func:`start_cni_run`): containerd's
  go-cni loads the first conflist of ``/etc/cni/net.d`` and runs plugins from
  ``/opt/cni/bin``. No flag changes those folders, so ctr runs inside a private
  mount namespace where the test's own folders are bind-mounted over them
  (:class:`CniDirs`); the host's ``/etc`` and ``/opt`` are never written. Order
  inside ctr: task created (process exists, not started) -> CNI ADD with
  ``CNI_NETNS=/proc/<pid>/ns/net`` -> task started (RUNNING) -> ... task exits ->
  CNI DEL with an *empty* ``CNI_NETNS`` -> task and container (and its snapshot)
  deleted. A detached ``ctr run -d --cni`` never gets a DEL, hence foreground.
  End it with :meth:`ForegroundRun.stop` (``ctr task kill -s SIGKILL``): signals
  sent to the ctr process itself are forwarded to the task, and ``sleep`` as PID 1
  ignores SIGTERM/SIGINT; SIGKILL to ctr kills ctr without any DEL.
  Config versions: 0.3.1, 0.4.0, 1.0.0 work (prevResult on DEL from 0.4.0). A 1.1.0
  conflist does not: a 1.1.0 ADD result fails the run (ctr then sends DEL and leaves
  the task CREATED and the container behind: stop() removes them); a 1.0.0 result
  runs, but the DEL is never sent (libcni cannot convert the cached result).
* The CRI order by hand (:func:`add_netns`, :func:`run_in_netns`): a named
  namespace ``/var/run/netns/cni-<uuid>`` first, the test's CNI ADD into it while
  no process is in it, then ``ctr run -d --with-ns network:PATH`` joins it.

Everything made here is recorded in a registry (:data:`REGISTRY`) so that
:func:`cleanup` removes it and :func:`leftovers` / :func:`state` + :func:`diff`
find leaks. Containers carry the label ``vlanpipe-test=1``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from tests.support.hostnet import NETNS_DIR, CommandError, run, wait_until

ADDRESS = "/var/run/docker/containerd/containerd.sock"
NAMESPACE = "vlanpipe-test"
DOCKER_IMAGE = "vlanpipe/busybox:latest"
LABEL_KEY, LABEL_VALUE = "vlanpipe-test", "1"
LABEL = f"{LABEL_KEY}={LABEL_VALUE}"
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


# --- ctr ------------------------------------------------------------------------------


def ctr_argv(*args: str, namespace: str = NAMESPACE) -> list[str]:
    return ["ctr", "--address", ADDRESS, "-n", namespace, *args]


def ctr(*args: str, namespace: str = NAMESPACE, check: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``ctr --address ADDRESS -n NAMESPACE ARGS`` (stdin /dev/null, output captured)."""
    return run(ctr_argv(*args, namespace=namespace), check=check, timeout=timeout)


def _not_found(proc: subprocess.CompletedProcess[str]) -> bool:
    text = (proc.stderr + proc.stdout).lower()
    return "not found" in text or "no such" in text


# --- image ----------------------------------------------------------------------------


def image_ref(docker_image: str = DOCKER_IMAGE) -> str:
    """The reference containerd gives a ``docker save``d image on import (Docker's
    normalisation): ``vlanpipe/busybox:latest`` -> ``docker.io/vlanpipe/busybox:latest``,
    ``busybox`` -> ``docker.io/library/busybox:latest``."""
    name, tag = docker_image, ""
    if "@" not in name and ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    return f"{name}:{tag or 'latest'}" if "@" not in name else name


def _docker_image_id(docker_image: str) -> str:
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", docker_image]).stdout.strip()


def _containerd_config_digest(ref: str, namespace: str) -> str | None:
    """Config digest of ``ref`` in containerd (== Docker's image id), None if absent."""
    for line in ctr("images", "ls", namespace=namespace).stdout.splitlines()[1:]:
        words = line.split()
        if len(words) >= 3 and words[0] == ref:
            manifest = json.loads(ctr("content", "get", words[2], namespace=namespace).stdout)
            return manifest.get("config", {}).get("digest")
    return None


def import_image(docker_image: str = DOCKER_IMAGE, namespace: str = NAMESPACE) -> str:
    """Make ``docker_image`` available in ``namespace`` (``docker save | ctr image import -``,
    which also unpacks it into the overlayfs snapshotter); return containerd's reference.

    Idempotent: nothing is done if containerd already holds the same image (same
    config digest as Docker's image id); a rebuilt Docker image is imported again.
    """
    ref = image_ref(docker_image)
    if _containerd_config_digest(ref, namespace) == _docker_image_id(docker_image):
        return ref
    save = subprocess.Popen(["docker", "save", docker_image], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        imp = subprocess.run(ctr_argv("images", "import", "-", namespace=namespace),
                             stdin=save.stdout, capture_output=True, text=True, timeout=300)
    finally:
        assert save.stdout is not None
        save.stdout.close()
        save_err = save.stderr.read().decode() if save.stderr else ""
        save.wait(timeout=60)
    if save.returncode != 0 or imp.returncode != 0:
        raise RuntimeError(f"docker save {docker_image} | ctr image import failed: "
                           f"{save_err.strip()} {imp.stderr.strip()} {imp.stdout.strip()}")
    if _containerd_config_digest(ref, namespace) is None:
        raise RuntimeError(f"after import, containerd does not list {ref}: {imp.stdout.strip()}")
    return ref


def remove_image(ref: str, namespace: str = NAMESPACE) -> None:
    """``ctr images rm`` (content and the committed snapshot are garbage-collected)."""
    proc = ctr("images", "rm", "--sync", ref, namespace=namespace, check=False)
    if proc.returncode != 0 and not _not_found(proc):
        raise CommandError(proc)


# --- registry of what the helpers made ------------------------------------------------


@dataclass
class Registry:
    """What this process made; cleanup() and leftovers() work from it."""
    containers: set[tuple[str, str]] = field(default_factory=set)  # (namespace, name)
    netns: set[str] = field(default_factory=set)                   # names in /var/run/netns
    runs: list["ForegroundRun"] = field(default_factory=list)
    pids: dict[int, str] = field(default_factory=dict)             # pid -> /proc/PID/stat start time


REGISTRY = Registry()


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _remember_pid(pid: int) -> None:
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
        if proc.returncode != 0 and not _not_found(proc):
            raise CommandError(proc)
    proc = ctr("containers", "rm", name, namespace=namespace, check=False)
    if proc.returncode != 0 and not _not_found(proc):
        raise CommandError(proc)
    REGISTRY.containers.discard((namespace, name))


# --- CNI folders and the foreground `ctr run --rm --cni` --------------------------------


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
                _remember_pid(self.pid)
                return self.pid
            if entry and entry[0] > 0:
                _remember_pid(entry[0])
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
    _remember_pid(proc.pid)
    if wait:
        handle.wait_running(timeout)
    return handle


# --- the CRI order by hand ---------------------------------------------------------------


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
    _remember_pid(pid)
    return Task(name, namespace, pid)


# --- leaks and cleanup -------------------------------------------------------------------


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


def images(namespace: str = NAMESPACE) -> set[str]:
    return set(ctr("images", "ls", "-q", namespace=namespace).stdout.split())


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
        return proc.returncode == 0 or _not_found(proc)

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
