"""A multi-node test bed on one machine: nodes, a switch and one etcd, each in its own namespaces.

Plain Python, no pytest: the node tests and the benchmark both use it.

Why: the plugin's interesting behaviour is between nodes (cluster-wide IPAM in
etcd, the same VLAN on two nodes, a pod that moves), and this project has one
machine. A "node" here is what the plugin can see of a node: a network
namespace and a mount namespace (plus a UTS namespace for its host name) with
its own Open vSwitch daemons, bridge, /var/run/netns, sysfs and state dir.
The nodes are cabled to a "switch", a namespace with a userspace OVS bridge
that learns MACs like a physical switch, and reach one etcd over a management
network, as racks do::

      node a                        switch                       node b
    +-----------------+           +-----------+           +-----------------+
    | OVS k8s_br      |  uplink0  | OVS sw0   |  uplink0  | OVS k8s_br      |
    |  (netdev)       |-----------| trunks    |-----------|  (netdev)       |
    | mgmt0 .100.11   |       a-up+-----------+b-up       | mgmt0 .100.12   |
    +--------|--------+                                   +--------|--------+
             |           mgmt: Linux bridge mgmtbr                 |
             +--- m-a ---  169.254.100.1, etcd :2379  --- m-b -----+

Rules this module keeps, because another test suite runs on the same host
at the same time and counts every new host link, host OVS port and
/var/run/netns entry as a leak of its own:

- Nothing is ever created in the host's network namespace, host OVS or host
  /var/run/netns, not even for a moment. Every veth pair is created from
  inside one of the bed's namespaces with its peer placed directly in
  another (``ip link add X type veth peer name Y netns PID``).
- Mounts are made in private mount namespaces (propagation private), so the
  tmpfs over /var/run/openvswitch hides the node's OVS from the host and the
  host's OVS from the node.
- Containers made through the bed use ``--network none`` (Docker's default
  bridge would add a host veth) and their own label, not the e2e suite's.

Processes: every long-lived process (namespace holders, ovsdb-server,
ovs-vswitchd, etcd) is forked by one thread that lives as long as the
Python process, with PR_SET_PDEATHSIG=SIGKILL, so they die with the test
process however it ends (PDEATHSIG follows the *thread* that forked, so a
worker thread must not be the parent). ``NodeBed.close()`` stops them
gracefully, kills anything else still running in the bed's namespaces, and
removes the temp folder; when the last process of a namespace is gone, the
kernel destroys it and every veth, tap and mount in it.

Use::

    with NodeBed(nodes=("a", "b"), bridge="k8s_br", plug_uplinks=True) as bed:
        a = bed.node("a")                       # .pid .name .state_dir .bridge .uplink
        a.run(["ovs-vsctl", "show"])            # nsenter -t PID -n -m -u -- ...
        a.ovs("list-ports", a.bridge)           # this node's own ovsdb-server
        c = bed.start_container("x")            # removed by close()
        a.pipework(c.id, "10.66.0.5/24", vlan=22, hostif="vpx")
        ping(c.pid, "10.66.0.6")                # from the pod's netns, test subnets only
        bed.etcd_url(a)                         # http://169.254.100.1:2379, for the node
        bed.etcd_client().put("/k", "v")        # this process, via bed.etcd_host_url

On the host the bed leaves only its temp folder, its labelled containers and,
while it lives, a TCP listener on 127.0.0.1 (the etcd forwarder).
"""

from __future__ import annotations

import ctypes
import http.client
import ipaddress
import json
import os
import queue
import re
import secrets
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from tests.support import hostnet

TMP_PREFIX = "vlanpipe-nodebed-"  # + PID of the owner + "-": swept by sweep_stale()
LABEL_KEY = "vlanpipe-nodebed"  # value: the bed's token
PID_LABEL = "vlanpipe-nodebed-pid"  # value: PID of the process that owns the container
IMAGE = hostnet.IMAGE

OVS_RUN = "/var/run/openvswitch"
NETNS_RUN = "/var/run/netns"
OVS_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
# Daemons and tools live in sbin folders that a bare PATH may lack.
_SBIN = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

SWITCH_BRIDGE = "sw0"
MGMT_BRIDGE = "mgmtbr"
MGMT_NET = ipaddress.ip_network("169.254.100.0/24")
MGMT_GATEWAY = ipaddress.ip_address("169.254.100.1")  # the mgmt namespace; etcd listens here
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380  # on the mgmt namespace's own loopback: no clash between beds

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_libc = ctypes.CDLL(None, use_errno=True)

# Runs inside a new net+mount+UTS namespace (unshare(1) made it, propagation private):
# keeps the cgroup mounts (pipework finds containers through them) across a fresh sysfs
# (so /sys/class/net shows this namespace's links), gives OVS and pipework private run
# folders, then holds the namespaces open until it is killed.
_HOLDER_SCRIPT = r"""
keep=$1
echo "$2" >/proc/sys/kernel/hostname
mkdir -p "$keep"
mount --rbind /sys/fs/cgroup "$keep"
mount -t sysfs sysfs /sys
mount --move "$keep" /sys/fs/cgroup
rmdir "$keep"
for dir in /var/run/openvswitch /var/run/netns; do
  mkdir -p "$dir"
  mount -t tmpfs -o mode=0755 tmpfs "$dir"
done
ip link set lo up
echo ready
exec sleep infinity
"""


class BedError(RuntimeError):
    """The bed could not be built or a command inside it failed."""


# --- processes that die with this process ---------------------------------------


def _die_with(parent: int) -> Callable[[], None]:
    """preexec_fn: SIGKILL this child when its parent thread dies; if the parent is
    already gone (the race between fork and prctl), die at once."""

    def preexec() -> None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


class _Spawner:
    """Forks every long-lived child from one daemon thread.

    PR_SET_PDEATHSIG fires when the thread that forked the child exits, not the
    process: a bed built from a short-lived worker thread (the benchmark uses
    thread pools) would otherwise lose its daemons the moment that thread ends.
    This thread ends only with the process.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        threading.Thread(target=self._loop, name="nodebed-spawner", daemon=True).start()

    def _loop(self) -> None:
        while True:
            job, result = self._jobs.get()
            try:
                result.set_result(job())
            except BaseException as exc:  # handed to the caller
                result.set_exception(exc)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        result: Future[subprocess.Popen[Any]] = Future()
        self._jobs.put((lambda: subprocess.Popen(
            list(argv), preexec_fn=_die_with(os.getpid()), **kwargs), result))
        return result.result()


_spawner_lock = threading.Lock()
_spawner: _Spawner | None = None


def _spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner.popen(argv, **kwargs)


def _stop(proc: subprocess.Popen[Any], grace: float = 5.0) -> int:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def _daemon_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{env.get('PATH', '')}:{_SBIN}".strip(":")
    return env


# --- sockets in other network namespaces --------------------------------------------


def netns_socket(pid: int, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
                 proto: int = 0) -> socket.socket:
    """A socket created in the network namespace of ``pid``, usable from any thread.

    A socket belongs to the namespace it was created in, for good: routing, bind
    and interface names (AF_PACKET) are resolved there. setns(CLONE_NEWNET) only
    changes the calling thread, so a throwaway thread does it and nothing else in
    this process moves (a process cannot setns its mount namespace once it has
    threads, but the network namespace is per thread).
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into the netns of {pid}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["sock"] = socket.socket(family, type, proto)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=work, name=f"netns-{pid}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["sock"]


class NetnsForwarder:
    """A TCP listener on this namespace's 127.0.0.1 that forwards every connection to
    ``target`` inside the network namespace of ``pid``.

    Why: the test process lives in the host namespace and cannot route to the
    bed's etcd, and a veth to the host is exactly what must not exist. A
    listening socket is not a link, port or netns entry, so the host's leak
    checks do not see it. Threads only; stops with close().
    """

    def __init__(self, pid: int, target: tuple[str, int]) -> None:
        self.pid, self.target = pid, target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, name=f"fwd-{self.port}", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._pump, args=(client,), daemon=True).start()

    def _pump(self, client: socket.socket) -> None:
        try:
            upstream = netns_socket(self.pid)
            upstream.settimeout(5)
            upstream.connect(self.target)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        with self._lock:
            if self._closed:
                client.close()
                upstream.close()
                return
            self._open.update((client, upstream))
        peer = {client: upstream, upstream: client}
        sel = selectors.DefaultSelector()
        for sock in peer:
            sel.register(sock, selectors.EVENT_READ)
        try:
            while True:
                for key, _ in sel.select():
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    peer[key.fileobj].sendall(data)  # type: ignore[index]
        except OSError:
            return
        finally:
            sel.close()
            with self._lock:
                self._open.difference_update((client, upstream))
            client.close()
            upstream.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            socks = list(self._open)
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self._listener.close()
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# --- namespaces ------------------------------------------------------------------------


@dataclass
class Namespace:
    """One network + mount + UTS namespace held open by a ``sleep`` process.

    ``run`` enters it with ``nsenter -t PID -n -m -u``: the same binaries as the
    host, but this namespace's links, /sys, /var/run/openvswitch (so ovs-vsctl
    and ovs-appctl talk to its own daemons) and /var/run/netns.
    """

    role: str  # "node", "switch" or "mgmt"
    name: str
    dir: str  # this namespace's temp folder (OVS db, logs)
    holder: subprocess.Popen[Any]
    daemons: dict[str, subprocess.Popen[Any]] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """PID of the holder: ``nsenter -t PID -n -m -u`` enters this namespace."""
        return self.holder.pid

    def nsenter(self, argv: Sequence[str]) -> list[str]:
        """argv prefixed to run inside this namespace."""
        return ["nsenter", "-t", str(self.pid), "-n", "-m", "-u", "--", *argv]

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
            input: str | None = None, timeout: float = 60, check: bool = False,
            cwd: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run argv inside the namespace; capture text output.

        ``env`` replaces the environment (as subprocess does; PATH in it finds
        argv[0]); None means this process's, with the sbin folders appended to
        PATH. ``check`` raises hostnet.CommandError on a non-zero exit.
        """
        proc = subprocess.run(
            self.nsenter(argv), capture_output=True, text=True, timeout=timeout, cwd=cwd,
            env=dict(env) if env is not None else _daemon_env(), input=input,
            stdin=subprocess.DEVNULL if input is None else None)
        if check and proc.returncode != 0:
            raise hostnet.CommandError(proc)
        return proc

    def spawn(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              cwd: str | None = None) -> subprocess.Popen[Any]:
        """Start a long-lived process inside the namespace, stopped by close().

        stdout and stderr go to ``<dir>/<name>.out``. It dies with this Python
        process (PDEATHSIG), as the bed's own daemons do.
        """
        if name in self.daemons and self.daemons[name].poll() is None:
            raise BedError(f"{self.role} {self.name}: a process {name!r} is already running")
        with open(os.path.join(self.dir, f"{name}.out"), "ab") as log:
            proc = _spawn(self.nsenter(argv), stdin=subprocess.DEVNULL, stdout=log,
                          stderr=subprocess.STDOUT, cwd=cwd,
                          env=dict(env) if env is not None else _daemon_env())
        self.daemons[name] = proc
        return proc

    def stop(self, name: str, grace: float = 5.0) -> int:
        """Stop one process started with spawn() (SIGTERM, then SIGKILL); its exit status."""
        return _stop(self.daemons.pop(name), grace)

    def path(self, inside: str) -> str:
        """The host path of ``inside`` as this namespace's mounts see it.

        ``/proc/PID/root`` walks the holder's mount namespace, but an absolute
        symlink on the way (``/var/run`` -> ``/run``) jumps back to *this*
        process's root, i.e. the host's /run/openvswitch. So symlinks are
        resolved first (the namespaces share the host's root file system; only
        mounts differ).
        """
        return f"/proc/{self.pid}/root/{os.path.realpath(inside).lstrip('/')}"

    def links(self) -> set[str]:
        """Names of the links in this namespace."""
        out = self.run(["ip", "-o", "link", "show"], check=True).stdout
        return {line.split(":", 2)[1].strip().split("@", 1)[0]
                for line in out.splitlines() if line.count(":") >= 2}

    def ns_ids(self) -> tuple[int, int]:
        """(net, mnt) namespace inode numbers, to recognise processes inside."""
        return (os.stat(f"/proc/{self.pid}/ns/net").st_ino,
                os.stat(f"/proc/{self.pid}/ns/mnt").st_ino)

    # OVS: only for namespaces started with their own daemons (nodes and the switch).

    def ovs(self, *args: str, timeout: int = 10) -> str:
        """``ovs-vsctl --timeout=N ARGS`` against this namespace's own ovsdb-server."""
        return self.run(["ovs-vsctl", f"--timeout={timeout}", *args], check=True,
                        timeout=timeout + 5).stdout

    def appctl(self, *args: str) -> str:
        """``ovs-appctl ARGS`` against this namespace's ovs-vswitchd (e.g. ``fdb/show BR``)."""
        return self.run(["ovs-appctl", "--timeout=10", *args], check=True, timeout=15).stdout

    def fdb(self, bridge: str) -> list[dict[str, Any]]:
        """The MAC learning table of ``bridge``: [{port, vlan, mac, age}], port as an OVS
        port name ("LOCAL" for the bridge's own)."""
        numbers, current = {}, None
        for line in self.appctl("dpif/show").splitlines():
            head = re.match(r"^  (\S+):$", line)  # "  BRIDGE:" then "    PORT OFPORT/DPPORT: ..."
            if head:
                current = head.group(1)
            port = re.match(r"^    (\S+) (\d+)/", line)
            if port and current == bridge:
                numbers[port.group(2)] = port.group(1)
        table = []
        for line in self.appctl("fdb/show", bridge).splitlines()[1:]:
            port, vlan, mac, age = line.split()
            table.append({"port": numbers.get(port, port), "vlan": int(vlan),
                          "mac": mac, "age": int(age) if age.isdigit() else age})
        return table

    def _start_ovs(self, setup: Sequence[str]) -> None:
        """Start ovsdb-server (default paths, inside this namespace), run ``ovs-vsctl
        --no-wait init -- SETUP`` as one transaction, then ovs-vswitchd.

        The configuration is written before ovs-vswitchd starts, so it builds the
        bridges at once and no call waits on a reconfiguration.
        """
        db = os.path.join(self.dir, "conf.db")
        hostnet.run(["ovsdb-tool", "create", db, OVS_SCHEMA])
        self.spawn("ovsdb-server", [
            "ovsdb-server", db, f"--remote=punix:{OVS_RUN}/db.sock", "--pidfile",
            "-vconsole:off", f"--log-file={self.dir}/ovsdb-server.log"])
        _wait_for(lambda: os.path.exists(self.path(f"{OVS_RUN}/db.sock")), 10,
                  f"{self.role} {self.name}: ovsdb-server socket", self.daemons["ovsdb-server"])
        self.ovs("--no-wait", "init", *(["--", *setup] if setup else []))
        self.spawn("ovs-vswitchd", [
            "ovs-vswitchd", "--pidfile", "--disable-system", "-vconsole:off",
            f"--log-file={self.dir}/ovs-vswitchd.log"])

    def _wait_for_device(self, name: str, timeout: float = 15) -> None:
        """Wait until ``name`` shows in this namespace's /sys/class/net (an OVS bridge's
        local port appears once ovs-vswitchd has built the bridge; pipework looks there)."""
        _wait_for(lambda: os.path.isdir(self.path(f"/sys/class/net/{name}")), timeout,
                  f"{self.role} {self.name}: device {name}", self.daemons.get("ovs-vswitchd"))

    def _close(self, grace: float = 5.0) -> None:
        for proc in list(self.daemons.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.daemons.values():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.daemons.clear()
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()


@dataclass
class Node(Namespace):
    """A Kubernetes node as the plugin sees it.

    ``state_dir`` is the node's own empty folder (the plugin's state, config);
    ``uplink`` is the node's end of the cable to the switch, left unplugged:
    plug_uplink() puts it on the node bridge as a trunk port.
    """

    bridge: str = "k8s_br"
    uplink: str = "uplink0"
    state_dir: str = ""
    mgmt_if: str = "mgmt0"
    mgmt_address: str = ""  # this node's address on the management network
    etcd_url: str | None = None  # etcd as this node reaches it (None: bed without etcd)
    _noarp_dir: str = ""

    def plug_uplink(self, trunks: Iterable[int] | None = None) -> None:
        """Attach the uplink to the node bridge as a trunk port (all VLANs, or only
        ``trunks``), the way an operator cables a node; idempotent."""
        args = ["--may-exist", "add-port", self.bridge, self.uplink]
        vlans = sorted(set(trunks)) if trunks is not None else []
        if vlans:
            args += ["--", "set", "Port", self.uplink, "trunks=" + ",".join(map(str, vlans))]
        self.ovs(*args)

    def unplug_uplink(self) -> None:
        self.ovs("--if-exists", "del-port", self.bridge, self.uplink)

    def pipework(self, container: str, address: str, *, vlan: int | None = None,
                 mac: str | None = None, hostif: str | None = None, ifname: str = "eth1",
                 announce: bool = True, bridge: str | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Bare pipework inside this node: ``pipework BR -i IF [-l HOSTIF] CID ADDR [MAC][@VLAN]``.

        The host-side veth and the OVS port land in this node, the guest end in the
        container (found by cgroup, by PID). ``announce=False`` puts a folder whose
        ``arping`` does nothing first on PATH: no gratuitous ARP (and no 1 s wait).
        Raises hostnet.CommandError if pipework fails.
        """
        argv = ["pipework", bridge or self.bridge, "-i", ifname]
        if hostif:
            argv += ["-l", hostif]
        slot = (mac or "") + (f"@{vlan}" if vlan is not None else "")
        argv += [container, address] + ([slot] if slot else [])
        env = _daemon_env()
        if not announce:
            env["PATH"] = f"{self._noarp_dir}:{env['PATH']}"
        return self.run(argv, env=env, timeout=timeout, check=True)


@dataclass
class Switch(Namespace):
    """The top-of-rack switch: one netdev OVS bridge that learns MACs (NORMAL action,
    300 s aging), one trunk port per node."""

    bridge: str = SWITCH_BRIDGE
    ports: dict[str, str] = field(default_factory=dict)  # node name -> switch port


@dataclass
class Mgmt(Namespace):
    """The management network: a Linux bridge at MGMT_GATEWAY and the bed's etcd."""

    etcd_data: str = ""


# --- the bed ---------------------------------------------------------------------------


class NodeBed:
    """Nodes, a switch and (optionally) etcd, built on __init__ and removed by close().

    ``with NodeBed(nodes=("a", "b")) as bed:`` then ``bed.node("a").run([...])``,
    ``bed.node("a").ovs("show")``, ``bed.switch.ovs(...)``,
    ``bed.etcd_url(node)`` (for code running in a node), ``bed.etcd_host_url``
    (for this process).

    - ``bridge``: the node bridge every node gets (netdev datapath).
    - ``etcd``: False leaves out the mgmt namespace and etcd (saves ~0.3 s).
    - ``uplink``: the name of each node's cable end to the switch.
    - ``switch_trunks``: VLANs the switch ports carry (None: all).
    - ``plug_uplinks``: put each uplink on its node bridge at once, as a trunk
      (of ``node_trunks``, None: all); otherwise the caller does
      (``node.plug_uplink()``), e.g. a test of the plugin's own uplink handling.

    Every Open vSwitch of the bed runs with its defaults (no userspace TSO): the
    bed must not do for the pods what the plugin has to (see
    tests/nodes/test_traffic.py).
    """

    def __init__(self, nodes: Sequence[str] = ("a", "b"), bridge: str = "k8s_br", *,
                 etcd: bool = True, uplink: str = "uplink0",
                 switch_trunks: Iterable[int] | None = None, plug_uplinks: bool = False,
                 node_trunks: Iterable[int] | None = None) -> None:
        for name in nodes:
            if not _NAME_RE.match(name):
                raise ValueError(f"node name {name!r}: 1-8 of [a-z0-9], a letter first")
        if len(set(nodes)) != len(nodes) or not nodes:
            raise ValueError(f"node names must be distinct and at least one: {nodes!r}")
        if len(nodes) > 200:
            raise ValueError("at most 200 nodes (one /24 of management addresses)")
        self.token = secrets.token_hex(3)
        self.bridge = bridge
        self.root = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-{self.token}-")
        self.nodes: dict[str, Node] = {}
        self._switch: Switch | None = None
        self.mgmt: Mgmt | None = None
        self.forwarder: NetnsForwarder | None = None
        self.containers: list[hostnet.Container] = []
        self._ns_ids: set[tuple[int, int]] = set()
        self._closed = False
        self.started_s = 0.0
        t0 = time.monotonic()
        try:
            self._build(list(nodes), uplink, etcd, switch_trunks)
            if plug_uplinks:
                for node in self.nodes.values():
                    node.plug_uplink(node_trunks)
        except BaseException:
            self.close()
            raise
        self.started_s = time.monotonic() - t0

    # building

    def _holder(self, role: str, name: str, cls: type[Namespace], **extra: Any) -> Any:
        folder = os.path.join(self.root, f"{role}-{name}")
        os.makedirs(folder)
        hostname = name if role == "node" else f"{role}-{self.token}"
        with open(os.path.join(folder, "holder.err"), "wb") as err:
            holder = _spawn(
                ["unshare", "--net", "--mount", "--uts", "--propagation", "private", "--",
                 "sh", "-euc", _HOLDER_SCRIPT, "holder", os.path.join(folder, ".cgroup"),
                 hostname],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=_daemon_env())
        return cls(role=role, name=name, dir=folder, holder=holder, **extra)

    @staticmethod
    def _await_holder(ns: Namespace) -> None:
        assert ns.holder.stdout is not None
        line = ns.holder.stdout.readline()  # "ready", or EOF if the script failed
        ns.holder.stdout.close()
        if line.strip() != b"ready":
            ns.holder.kill()
            ns.holder.wait()
            with open(os.path.join(ns.dir, "holder.err"), errors="replace") as handle:
                raise BedError(f"{ns.role} {ns.name}: namespace setup failed: {handle.read().strip()}")

    def _build(self, names: list[str], uplink: str, etcd: bool,
               switch_trunks: Iterable[int] | None) -> None:
        noarp = os.path.join(self.root, "noarp")
        os.makedirs(noarp)
        with open(os.path.join(noarp, "arping"), "w") as handle:
            handle.write("#!/bin/sh\n# nodebed: pipework without its gratuitous ARP\nexit 0\n")
        os.chmod(os.path.join(noarp, "arping"), 0o755)

        # 1. All holders at once (each is unshare + a few mounts), then wait for them.
        self._switch = self._holder("switch", "switch", Switch, bridge=SWITCH_BRIDGE)
        if etcd:
            self.mgmt = self._holder("mgmt", "mgmt", Mgmt)
        for i, name in enumerate(names):
            folder_state = os.path.join(self.root, f"node-{name}-state")
            os.makedirs(folder_state)
            self.nodes[name] = self._holder(
                "node", name, Node, bridge=self.bridge, uplink=uplink, state_dir=folder_state,
                mgmt_address=str(MGMT_NET.network_address + 11 + i), _noarp_dir=noarp,
                etcd_url=f"http://{MGMT_GATEWAY}:{ETCD_CLIENT_PORT}" if etcd else None)
        for ns in self.namespaces():
            self._await_holder(ns)
            self._ns_ids.add(ns.ns_ids())

        # 2. Cables. Each veth is created inside one of our namespaces with its peer
        #    placed directly in another: no link ever exists in the host namespace.
        for name, node in self.nodes.items():
            port = f"{name}-up"
            node.run(["ip", "link", "add", uplink, "type", "veth", "peer", "name", port,
                      "netns", str(self.switch.pid)], check=True)
            node.run(["ip", "link", "set", uplink, "up"], check=True)
            self.switch.run(["ip", "link", "set", port, "up"], check=True)
            self.switch.ports[name] = port
        if self.mgmt is not None:
            gw = f"{MGMT_GATEWAY}/{MGMT_NET.prefixlen}"
            script = [f"link add {MGMT_BRIDGE} type bridge",
                      f"addr add {gw} dev {MGMT_BRIDGE}", f"link set {MGMT_BRIDGE} up"]
            for name, node in self.nodes.items():
                node.run(["ip", "link", "add", node.mgmt_if, "type", "veth", "peer", "name",
                          f"m-{name}", "netns", str(self.mgmt.pid)], check=True)
                node.run(["ip", "-b", "-"], check=True, input=(
                    f"addr add {node.mgmt_address}/{MGMT_NET.prefixlen} dev {node.mgmt_if}\n"
                    f"link set {node.mgmt_if} up\n"))
                script.append(f"link set m-{name} master {MGMT_BRIDGE} up")
            self.mgmt.run(["ip", "-b", "-"], check=True, input="\n".join(script) + "\n")
            self._start_etcd()

        # 3. OVS everywhere, configuration written before ovs-vswitchd starts.
        trunks = sorted(set(switch_trunks)) if switch_trunks is not None else []
        sw_setup = ["add-br", SWITCH_BRIDGE, "--", "set", "Bridge", SWITCH_BRIDGE,
                    "datapath_type=netdev"]
        for port in self.switch.ports.values():
            sw_setup += ["--", "add-port", SWITCH_BRIDGE, port]
            if trunks:
                sw_setup += ["--", "set", "Port", port, "trunks=" + ",".join(map(str, trunks))]
        self.switch._start_ovs(sw_setup)
        for node in self.nodes.values():
            node._start_ovs(["add-br", node.bridge, "--", "set", "Bridge", node.bridge,
                             "datapath_type=netdev"])

        # 4. Wait for everything to be usable.
        self.switch._wait_for_device(SWITCH_BRIDGE)
        for node in self.nodes.values():
            node._wait_for_device(node.bridge)
        if self.mgmt is not None:
            self._wait_etcd()

    def _start_etcd(self) -> None:
        assert self.mgmt is not None
        data = os.path.join(self.mgmt.dir, "etcd-data")
        self.mgmt.etcd_data = data
        client = f"http://{MGMT_GATEWAY}:{ETCD_CLIENT_PORT}"
        local = f"http://127.0.0.1:{ETCD_CLIENT_PORT}"
        peer = f"http://127.0.0.1:{ETCD_PEER_PORT}"
        self.mgmt.spawn("etcd", [
            ETCD, "--name", "nodebed", "--data-dir", data,
            "--listen-client-urls", f"{client},{local}", "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"nodebed={peer}", "--initial-cluster-token", self.token])
        self.forwarder = NetnsForwarder(self.mgmt.pid, ("127.0.0.1", ETCD_CLIENT_PORT))

    def _wait_etcd(self, timeout: float = 20) -> None:
        assert self.mgmt is not None and self.forwarder is not None
        port = self.forwarder.port

        def healthy() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            try:
                conn.request("GET", "/health")
                return json.loads(conn.getresponse().read()).get("health") == "true"
            except (OSError, ValueError, http.client.HTTPException):
                return False
            finally:
                conn.close()

        _wait_for(healthy, timeout, "etcd health", self.mgmt.daemons["etcd"])

    # access

    def namespaces(self) -> list[Namespace]:
        """Switch, mgmt (if any) and the nodes."""
        found: list[Namespace] = [ns for ns in (self._switch, self.mgmt) if ns is not None]
        return found + list(self.nodes.values())

    @property
    def switch(self) -> Switch:
        if self._switch is None:
            raise BedError("the bed has no switch (construction failed)")
        return self._switch

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def etcd_url(self, node: str | Node) -> str:
        """The etcd client URL as code running inside ``node`` reaches it."""
        target = self.nodes[node] if isinstance(node, str) else node
        if target.etcd_url is None:
            raise BedError("this bed has no etcd (etcd=False)")
        return target.etcd_url

    @property
    def etcd_host_url(self) -> str:
        """The same etcd as this (host-namespace) process reaches it: a forwarder on
        127.0.0.1 (the v3 JSON gateway and gRPC both pass)."""
        if self.forwarder is None:
            raise BedError("this bed has no etcd (etcd=False)")
        return self.forwarder.url

    def etcd_client(self) -> Any:
        """An etcd3gw client for this process, talking to the bed's etcd."""
        import etcd3gw  # the project's dependency; imported late, as only some users need it

        assert self.forwarder is not None
        return etcd3gw.client(host="127.0.0.1", port=self.forwarder.port)

    def processes(self) -> dict[str, int]:
        """PIDs of the bed's own processes: ``ROLE/NAME/what`` -> PID (holders included)."""
        found = {}
        for ns in self.namespaces():
            found[f"{ns.role}/{ns.name}/holder"] = ns.pid
            for what, proc in ns.daemons.items():
                found[f"{ns.role}/{ns.name}/{what}"] = proc.pid
        return found

    def namespace_ids(self) -> set[tuple[int, int]]:
        """(net, mnt) inode pairs of every namespace of the bed."""
        return set(self._ns_ids)

    def inside_pids(self) -> list[int]:
        """PIDs of all processes (other than this one) in any of the bed's namespaces."""
        return _pids_in(self._ns_ids)

    # containers

    def start_container(self, name_hint: str = "c", *, docker_args: Sequence[str] = (),
                        image: str = IMAGE) -> hostnet.Container:
        """``docker run -d --network none`` a labelled busybox sleeper, removed by close().

        ``--network none``: Docker's default bridge would put a veth in the host
        namespace. The label is the bed's own (``vlanpipe-nodebed=TOKEN``), not the
        e2e suite's ``vlanpipe-test=1``, whose concurrent leak check would count
        (and delete) it.
        """
        hint = re.sub(r"[^a-zA-Z0-9_.-]", "-", name_hint)[:30] or "c"
        name = f"vlanpipe-nodebed-{self.token}-{hint}-{secrets.token_hex(2)}"
        proc = hostnet.run(["docker", "run", "-d", "--network", "none",
                            "--label", f"{LABEL_KEY}={self.token}",
                            "--label", f"{PID_LABEL}={os.getpid()}", "--name", name,
                            *docker_args, image, "sleep", "86400"], check=False)
        if proc.returncode != 0:
            hostnet.run(["docker", "rm", "-f", name], check=False)
            raise hostnet.CommandError(proc)
        cid = proc.stdout.strip().splitlines()[-1]
        container = hostnet.Container(id=cid, pid=hostnet.container_pid(cid), name=name)
        self.containers.append(container)
        return container

    def remove_container(self, container: hostnet.Container | str) -> None:
        """``docker rm -f`` now (a pod that ends or moves); gone ones are fine."""
        cid = container if isinstance(container, str) else container.id
        hostnet.remove_container(cid)
        self.containers = [c for c in self.containers if c.id != cid]

    # teardown

    def close(self) -> list[str]:
        """Remove everything the bed made; idempotent. Returns what could not be
        removed (empty when all is gone)."""
        if self._closed:
            return []
        self._closed = True
        problems: list[str] = []
        for container in list(self.containers):
            try:
                self.remove_container(container)
            except hostnet.CommandError as exc:
                problems.append(str(exc))
        left = hostnet.containers(f"{LABEL_KEY}={self.token}")
        for cid in left:
            hostnet.run(["docker", "rm", "-f", "-v", cid], check=False)
        if self.forwarder is not None:
            self.forwarder.close()
        for ns in self.namespaces():
            try:
                ns._close()
            except OSError as exc:
                problems.append(f"{ns.role} {ns.name}: {exc}")
        # Anything else still in a namespace (a pipework or plugin a test left
        # running, a process a test nsentered) would keep it alive.
        for pid in _pids_in(self._ns_ids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not hostnet.wait_until(lambda: not _pids_in(self._ns_ids), timeout=5):
            problems.append(f"processes still in the bed's namespaces: {_pids_in(self._ns_ids)}")
        hostnet.run(["rm", "-rf", "--one-file-system", self.root], check=False)
        if os.path.exists(self.root):
            problems.append(f"could not remove {self.root}")
        return problems

    def __enter__(self) -> NodeBed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- pods: traffic helpers ----------------------------------------------------------------


@dataclass(frozen=True)
class PingResult:
    ok: bool  # at least one reply
    rtt_ms: list[float]  # one per reply
    output: str


def pod_subnets(pid: int) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Subnets on the interfaces of ``pid``'s network namespace other than lo and
    Docker's eth0: the only places test traffic may go."""
    out = hostnet.run(["nsenter", "-t", str(pid), "-n", "ip", "-j", "addr", "show"]).stdout
    nets = []
    for link in json.loads(out or "[]"):
        if link.get("ifname") in ("lo", "eth0"):
            continue
        for info in link.get("addr_info", []):
            if info.get("family") in ("inet", "inet6") and info.get("scope") != "link":
                nets.append(ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}").network)
    return nets


def ping(pid: int, address: str, *, count: int = 1, timeout: float = 2,
         interval: float | None = None) -> PingResult:
    """iputils ``ping`` from the network namespace of ``pid`` (a container's PID).

    Refuses (ValueError) an address outside the subnets of that namespace's test
    interfaces: traffic stays inside namespaces the tests made.
    """
    target = ipaddress.ip_address(address.split("/", 1)[0])
    if not any(target in net for net in pod_subnets(pid)):
        raise ValueError(f"{target} is not on a test interface of the netns of PID {pid}")
    argv = ["nsenter", "-t", str(pid), "-n", "ping", "-n", "-c", str(count), "-W", str(timeout)]
    if interval is not None:
        argv += ["-i", str(interval)]
    proc = hostnet.run([*argv, str(target)], check=False,
                       timeout=count * ((interval or 1) + timeout) + 10)
    rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", proc.stdout)]
    return PingResult(ok=proc.returncode == 0 and bool(rtts), rtt_ms=rtts, output=proc.stdout)


def announce(pid: int, ifname: str, address: str) -> None:
    """Send one gratuitous ARP (an unsolicited request, like ``arping -U``) for
    ``address`` from ``ifname`` in the network namespace of ``pid``.

    Switches learn the sender's MAC on the port it arrives from, and neighbours
    that know the address update it. Built here rather than with arping, which
    then waits a second for a reply that never comes.
    """
    ip = ipaddress.IPv4Address(address.split("/", 1)[0]).packed
    with netns_socket(pid, socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((ifname, 0))  # the name is resolved in the socket's namespace
        mac = sock.getsockname()[4]
        frame = (b"\xff" * 6 + mac + struct.pack("!H", 0x0806)
                 + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\x00" * 6 + ip)
        sock.send(frame.ljust(60, b"\x00"))


# --- housekeeping --------------------------------------------------------------------------


def preflight() -> list[str]:
    """What the bed needs and this machine lacks (empty: all there). It needs the
    binaries, not the host's OVS daemons: every OVS of the bed is its own."""
    missing = [f"`{tool}` is not installed" for tool in (
        "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "ovsdb-tool", "nsenter",
        "unshare", "ip", "ping", "pipework", "docker")
        if shutil.which(tool, path=f"{os.environ.get('PATH', '')}:{_SBIN}") is None]
    if not os.access(ETCD, os.X_OK):
        missing.append(f"etcd is not installed ({ETCD})")
    if not os.path.exists(OVS_SCHEMA):
        missing.append(f"{OVS_SCHEMA} is missing")
    if not missing:
        if hostnet.run(["docker", "info"], check=False, timeout=30).returncode != 0:
            missing.append("dockerd does not answer `docker info`")
        elif hostnet.run(["docker", "image", "inspect", IMAGE], check=False,
                         timeout=30).returncode != 0:
            missing.append(f"docker image {IMAGE} is missing")
    return missing


def _pids_in(ns_ids: set[tuple[int, int]]) -> list[int]:
    """Processes (not this one) whose net or mount namespace is one of ``ns_ids``."""
    nets = {n for n, _ in ns_ids}
    mnts = {m for _, m in ns_ids}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            net = os.stat(f"/proc/{entry}/ns/net").st_ino
            mnt = os.stat(f"/proc/{entry}/ns/mnt").st_ino
        except OSError:
            continue
        if net in nets or mnt in mnts:
            found.append(int(entry))
    return found


def _wait_for(predicate: Callable[[], Any], timeout: float, what: str,
              proc: subprocess.Popen[Any] | None = None) -> None:
    """Poll until ``predicate`` holds; BedError on timeout or if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise BedError(f"{what}: process exited with {proc.returncode} "
                           f"({' '.join(map(str, proc.args[:8]))})")
        if time.monotonic() > deadline:
            raise BedError(f"{what}: not ready after {timeout:g} s")
        time.sleep(0.02)


def sweep_stale() -> int:
    """Remove the containers and temp folders of beds whose process is gone (killed
    with -9: PDEATHSIG took the daemons and namespaces, not these). Returns the count."""
    out = hostnet.run(["docker", "ps", "-a", "--no-trunc", "--filter", f"label={LABEL_KEY}",
                       "--format", f'{{{{.ID}}}} {{{{.Label "{PID_LABEL}"}}}}']).stdout
    stale = [cid for cid, _, pid in (line.partition(" ") for line in out.splitlines())
             if not _alive(pid)]
    for cid in stale:
        hostnet.run(["docker", "rm", "-f", "-v", cid], check=False)
    tmp = tempfile.gettempdir()
    folders = [os.path.join(tmp, n) for n in os.listdir(tmp)
               if n.startswith(TMP_PREFIX) and not _alive(n[len(TMP_PREFIX):].split("-")[0])]
    for folder in folders:
        hostnet.run(["rm", "-rf", "--one-file-system", folder], check=False)
    return len(stale) + len(folders)


def _alive(pid: str) -> bool:
    return pid.isdigit() and os.path.exists(f"/proc/{pid}")
