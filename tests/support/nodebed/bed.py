"""The bed itself: nodes, a switch and (optionally) etcd, built at once and removed
together; what the machine must have for it, and the sweep of beds whose process died."""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any, Iterable, Sequence

from tests.support import hostnet
from tests.support.nodebed.namespaces import (OVS_SCHEMA, SWITCH_BRIDGE, Mgmt, Namespace,
                                              Node, Switch)
from tests.support.nodebed.processes import (SBIN, BedError, daemon_env, pids_in,
                                             spawn_process, wait_for)
from tests.support.nodebed.sockets import NetnsForwarder

TMP_PREFIX = "vlanpipe-nodebed-"  # + PID of the owner + "-": swept by sweep_stale()
LABEL_KEY = "vlanpipe-nodebed"  # value: the bed's token
PID_LABEL = "vlanpipe-nodebed-pid"  # value: PID of the process that owns the container
IMAGE = hostnet.IMAGE
ETCD = shutil.which("etcd") or "/usr/bin/etcd"

MGMT_BRIDGE = "mgmtbr"
MGMT_NET = ipaddress.ip_network("169.254.100.0/24")
MGMT_GATEWAY = ipaddress.ip_address("169.254.100.1")  # the mgmt namespace; etcd listens here
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380  # on the mgmt namespace's own loopback: no clash between beds
_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")

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
            holder = spawn_process(
                ["unshare", "--net", "--mount", "--uts", "--propagation", "private", "--",
                 "sh", "-euc", _HOLDER_SCRIPT, "holder", os.path.join(folder, ".cgroup"),
                 hostname],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=daemon_env())
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

        wait_for(healthy, timeout, "etcd health", self.mgmt.daemons["etcd"])

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
        return pids_in(self._ns_ids)

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
        for pid in pids_in(self._ns_ids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not hostnet.wait_until(lambda: not pids_in(self._ns_ids), timeout=5):
            problems.append(f"processes still in the bed's namespaces: {pids_in(self._ns_ids)}")
        hostnet.run(["rm", "-rf", "--one-file-system", self.root], check=False)
        if os.path.exists(self.root):
            problems.append(f"could not remove {self.root}")
        return problems

    def __enter__(self) -> NodeBed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def preflight() -> list[str]:
    """What the bed needs and this machine lacks (empty: all there). It needs the
    binaries, not the host's OVS daemons: every OVS of the bed is its own."""
    missing = [f"`{tool}` is not installed" for tool in (
        "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "ovsdb-tool", "nsenter",
        "unshare", "ip", "ping", "pipework", "docker")
        if shutil.which(tool, path=f"{os.environ.get('PATH', '')}:{SBIN}") is None]
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
