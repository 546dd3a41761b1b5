"""Fixtures for tests across nodes: a two-node bed (tests.support.nodebed), pods
attached to it with bare pipework (test_bed.py), and the plugin installed once and
called inside each node as that node's kubelet calls it (test_nodes.py).

One bed serves a module (it starts in about a second, but tests in one module
share it the way pods share a cluster); each test gets its own pods, with
addresses in 10.66.0.0/24 chosen by the test, removed when the test ends.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import pytest
import yaml

from tests.support import hostnet, kubelet, nodebed, pluginstate
from tests.support.nodebed import Node, NodeBed

SUBNET_PREFIX = "10.66.0."  # test traffic stays in here, inside the bed's namespaces


@dataclass(frozen=True)
class Pod:
    """A container with a pipework interface ``eth1`` on a node's bridge."""

    container: hostnet.Container
    node: Node
    address: str  # without the prefix length
    mac: str
    vlan: int
    hostif: str  # the host-side veth (and OVS port) in the node

    @property
    def pid(self) -> int:
        return self.container.pid


def pod_mac(octet: int) -> str:
    """The MAC follows from the address: a pod that moves keeps both."""
    return f"02:66:00:00:00:{octet:02x}"


@pytest.fixture(scope="session", autouse=True)
def bed_tools_ready() -> None:
    """Fail every node test at once, naming what is missing (skips nothing);
    remove what beds of killed runs left (containers, temp folders)."""
    missing = nodebed.preflight()
    if missing:
        pytest.fail("host not ready for node tests (run scripts/host-setup as root):\n  - "
                    + "\n  - ".join(missing), pytrace=False)
    nodebed.sweep_stale()


@pytest.fixture(scope="module")
def bed(bed_tools_ready: None) -> Iterator[NodeBed]:
    """Nodes ``a`` and ``b`` with bridge ``k8s_br``, uplinks plugged as trunks, and etcd."""
    yield from _two_nodes(plug_uplinks=True)


def _two_nodes(plug_uplinks: bool) -> Iterator[NodeBed]:
    with NodeBed(nodes=("a", "b"), bridge="k8s_br", plug_uplinks=plug_uplinks) as made:
        print(f"\nnodebed: two nodes + switch + etcd up in {made.started_s:.2f} s")
        yield made
        problems = made.close()
    assert not problems, f"bed close left: {problems}"


@pytest.fixture
def attach(bed: NodeBed) -> Iterator[Callable[..., Pod]]:
    """Factory ``attach(node, octet, vlan, announce=False) -> Pod``: a new container with
    ``10.66.0.OCTET/24`` and MAC ``pod_mac(OCTET)`` on ``vlan``, by bare pipework run in
    the node. ``announce=False`` skips pipework's gratuitous ARP. Every pod still
    attached at the end is detached (see ``detach``)."""
    made: list[Pod] = []

    def factory(node: Node, octet: int, vlan: int, *, announce: bool = False) -> Pod:
        container = bed.start_container(f"{node.name}-{octet}")
        hostif = f"vp{octet}x{container.pid}"[:15]
        pod = Pod(container, node, f"{SUBNET_PREFIX}{octet}", pod_mac(octet), vlan, hostif)
        made.append(pod)
        node.pipework(container.id, f"{pod.address}/24", vlan=vlan, mac=pod.mac, hostif=hostif,
                      announce=announce)
        return pod

    yield factory
    for pod in reversed(made):
        detach(bed, pod)


def detach(bed: NodeBed, pod: Pod) -> None:
    """What a plugin's teardown does (pipework has none): remove the container, whose
    netns takes the veth pair with it, and the OVS port row, which would outlive it."""
    bed.remove_container(pod.container)
    pod.node.ovs("--if-exists", "del-port", pod.node.bridge, pod.hostif)


# --- the plugin on the nodes, called as each node's kubelet calls it -----------------------

PLUGIN_NAME = "myplugin"
POD_SUBNET = "10.66.0.0/24"
UPLINK_VLANS = [22, 23]


@dataclass(frozen=True)
class Call:
    """One plugin call as the kubelet sees it: the exit code and stdout+stderr together."""

    argv: tuple[str, ...]
    code: int
    output: str
    seconds: float  # wall time of the call, nsenter included

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()

    def json(self) -> Any:
        """The JSON an operator command printed (`--json`), without the one error line a
        failing command (doctor with a failed check) adds on stderr, after it (under the
        name the plugin was installed as)."""
        return json.JSONDecoder().raw_decode(self.output)[0]


class NodePlugin:
    """The installed plugin on one node of the bed: its own config.yaml, state dir and log
    in a per-node folder, run INSIDE the node (its OVS, links, /var/run/netns), with
    stdin /dev/null, stdout and stderr read together, no extra environment."""

    def __init__(self, path: str, node: Node, folder: str, base: Mapping[str, Any]) -> None:
        self.path, self.node = path, node
        os.makedirs(folder, mode=0o700)
        self.config_path = os.path.join(folder, "config.yaml")
        self.state_dir = os.path.join(folder, "state")
        self.log_file = os.path.join(folder, "log", "vlanpipe.log")
        self.base = {"state_dir": self.state_dir, "log": {"file": self.log_file},
                     "node_name": node.name, **base}
        self.configure()

    @property
    def name(self) -> str:
        return self.node.name

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Write config.yaml: the base settings with `changes` (a value None drops the key)."""
        config = {k: v for k, v in {**self.base, **changes}.items() if v is not None}
        with open(self.config_path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(config, handle)
        return config

    def __call__(self, *argv: str, timeout: float = 120) -> Call:
        env = {k: v for k, v in nodebed.daemon_env().items() if k != "VLANPIPE_CONFIG"}
        full = (self.path, "--config", self.config_path, *argv)
        started = time.monotonic()
        proc = subprocess.run(self.node.nsenter(full), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, env=env)
        return Call(tuple(argv), proc.returncode, proc.stdout, time.monotonic() - started)

    def ok(self, *argv: str, **kwargs: Any) -> Call:
        call = self(*argv, **kwargs)
        pod = argv[2] if len(argv) == 4 else None  # setup / teardown / status NS POD ID
        assert call.code == 0, (f"node {self.name}: {' '.join(argv)} exited {call.code}: "
                                f"{call.output.strip()}\nlog: {self.last_log(argv[0], pod)}")
        return call

    def log_records(self) -> list[dict[str, Any]]:
        return pluginstate.log_records(self.log_file)

    def last_log(self, command: str | None = None, pod: str | None = None) -> dict[str, Any] | None:
        for record in reversed(self.log_records()):
            if (command is None or record.get("command") == command) and \
                    (pod is None or record.get("pod") == pod):
                return record
        return None

    def listed(self) -> list[dict[str, Any]]:
        """`list --json`: the node's attachments (and its uplink row) as the operator sees them."""
        return self.ok("list", "--json").json()

    def ports(self) -> dict[str, dict[str, Any]]:
        """Every port of the node's bridge (its local port left out): name -> row."""
        return node_ports(self.node)


def node_ports(node: Node) -> dict[str, dict[str, Any]]:
    """name -> {_uuid, tag, trunks, vlan_mode, external_ids} of the ports on the node bridge."""
    doc = json.loads(node.ovs("--format=json", "--columns=_uuid,name,tag,trunks,vlan_mode,"
                              "external_ids", "list", "Port"))
    rows = [{h: hostnet.ovsdb_value(v) for h, v in zip(doc["headings"], row)}
            for row in doc["data"]]
    on_bridge = set(node.ovs("list-ports", node.bridge).split())
    return {r["name"]: r for r in rows if r["name"] in on_bridge}


def netns_entries(node: Node) -> set[str]:
    """The node's own /var/run/netns (pipework's links, named by PID)."""
    return set(node.run(["ls", "-A", nodebed.NETNS_RUN], check=True).stdout.split())


def records(state_dir: str) -> list[str]:
    """The plugin's attachment records on a node (one file per infra container)."""
    try:
        return sorted(os.listdir(os.path.join(state_dir, "attachments")))
    except FileNotFoundError:
        return []


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    container: hostnet.Container

    @property
    def pid(self) -> int:
        return self.container.pid


class Cluster:
    """One test's view of the two nodes: a plugin per node with the test's own etcd prefix
    and namespace, the pods it set up, and the cleanup and leak checks of all of it."""

    def __init__(self, bed: NodeBed, path: str, root: str) -> None:
        self.bed = bed
        token = secrets.token_hex(3)
        self.prefix = f"/vlanpipe-nodes-{token}"
        self.namespace = f"t{token}"  # pod names may repeat across tests, namespaces do not
        self.etcd = bed.etcd_client()
        self.plugins = {
            name: NodePlugin(path, node, os.path.join(root, f"node-{name}"), {
                "bridge": node.bridge,
                "etcd": {"endpoints": [bed.etcd_url(node)], "prefix": self.prefix},
                "networks": [{"name": "pods", "vlans": "all", "subnet": POD_SUBNET,
                              "allocator": "etcd"}],
                "vlan": {"pinned": True},
                "uplink": {"interface": node.uplink, "vlans": list(UPLINK_VLANS)},
                "status": {"report": "vlan"},
            })
            for name, node in bed.nodes.items()}
        self.attached: dict[tuple[str, str, str], str] = {}  # (ns, pod, cid) -> node name
        self._lock = threading.Lock()
        self.containers: list[hostnet.Container] = []
        self.baseline = {name: (node.links(), netns_entries(node))
                         for name, node in bed.nodes.items()}
        # A fresh start for learning: what earlier tests taught the bridges is forgotten.
        for ns in (bed.switch, *bed.nodes.values()):
            ns.appctl("fdb/flush")

    def __getitem__(self, node: str) -> NodePlugin:
        return self.plugins[node]

    def init_all(self) -> None:
        """What each kubelet does when it starts."""
        for plugin in self.plugins.values():
            plugin.ok("init")

    # pods

    def container(self, hint: str) -> hostnet.Container:
        container = self.bed.start_container(hint)
        with self._lock:
            self.containers.append(container)
        return container

    def pod(self, node: str, name: str, *, namespace: str | None = None) -> PodRef:
        """A new infra container for pod `name`, set up on `node` as the kubelet does."""
        pod = PodRef(namespace or self.namespace, name, self.container(f"{node}-{name}"))
        self.setup(node, pod)
        return pod

    def setup(self, node: str, pod: PodRef) -> Call:
        key = (pod.namespace, pod.name, pod.container.id)
        with self._lock:
            self.attached[key] = node  # before the call: a half-made setup is torn down too
        call = self.plugins[node].ok("setup", *key)
        assert call.output == "", f"setup printed {call.output!r}"
        return call

    def teardown(self, node: str, pod: PodRef) -> Call:
        key = (pod.namespace, pod.name, pod.container.id)
        call = self.plugins[node].ok("teardown", *key)
        with self._lock:
            self.attached.pop(key, None)
        return call

    def status_ip(self, node: str, pod: PodRef) -> str | None:
        return kubelet.status_ip(self.plugins[node].ok(
            "status", pod.namespace, pod.name, pod.container.id).output)

    # etcd

    def keys(self, under: str = "") -> dict[str, bytes]:
        """Every key under the test's prefix (+ `under`), relative to the prefix."""
        found = self.etcd.get_prefix(f"{self.prefix}/{under}")
        return {meta["key"].decode()[len(self.prefix) + 1:]: value for value, meta in found}

    def leases(self) -> dict[str, dict[str, Any]]:
        """address (no prefix length) -> the lease record, for network `pods`."""
        return {key.rsplit("/", 1)[1]: json.loads(value)
                for key, value in self.keys("ipam/pods/addr/").items()}

    def pin(self, pod: str, vlan: int, address: str, namespace: str | None = None) -> None:
        self.etcd.put(f"{self.prefix}/pins/{namespace or self.namespace}/{pod}",
                      json.dumps({"vlan": vlan, "address": address}))

    # the end of the test

    def close(self) -> list[str]:
        """Tear down what is still attached, remove the containers and the uplinks, then
        say what is left: ports, veths, netns links, records, leases. Leftovers are removed
        (so the next test starts clean) and returned."""
        problems = []
        for (ns, pod, cid), node in list(self.attached.items()):
            call = self.plugins[node]("teardown", ns, pod, cid)
            if call.code != 0:
                problems.append(f"node {node}: teardown {ns}/{pod} exited {call.code}: "
                                f"{call.output.strip()}")
        self.attached.clear()
        for container in self.containers:
            self.bed.remove_container(container)
        for name, node in self.bed.nodes.items():
            node.ovs("--if-exists", "del-port", node.bridge, node.uplink)
            links, netns = self.baseline[name]
            for port in node_ports(node):
                problems.append(f"node {name}: OVS port {port} left on {node.bridge}")
                node.ovs("--if-exists", "del-port", node.bridge, port)
            for table in ("QoS", "Queue"):  # an ingress limit's rows outlive their port
                for uuid in node.ovs("--columns=_uuid", "--bare", "list", table).split():
                    problems.append(f"node {name}: {table} row {uuid} left")
                    node.ovs("--if-exists", "destroy", table, uuid)
            meters = node.run(["ovs-ofctl", "--timeout=5", "-O", "OpenFlow13", "dump-meters",
                               node.bridge], check=True).stdout
            problems += [f"node {name}: {line.split()[0]} left on {node.bridge}"
                         for line in meters.splitlines() if line.startswith("meter=")]
            for link in node.links() - links:
                problems.append(f"node {name}: link {link} left")
                node.run(["ip", "link", "del", link])
            for entry in netns_entries(node) - netns:
                problems.append(f"node {name}: {nodebed.NETNS_RUN}/{entry} left")
                node.run(["rm", "-f", f"{nodebed.NETNS_RUN}/{entry}"])
            problems += [f"node {name}: attachment record {f} left"
                         for f in records(self.plugins[name].state_dir)]
        problems += [f"etcd: lease {key} left" for key in self.keys("ipam/")
                     if key.split("/")[3:4] in (["addr"], ["owner"])]  # not last_reserved
        self.etcd.delete_prefix(self.prefix + "/")
        return problems


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The plugin installed once, with its own command, as DIR/myplugin/myplugin."""
    return kubelet.install(str(tmp_path_factory.mktemp("nodes-plugin")), PLUGIN_NAME)


@pytest.fixture(scope="module")
def plugin_bed(bed_tools_ready: None) -> Iterator[NodeBed]:
    """Nodes ``a`` and ``b`` with bridge ``k8s_br`` and etcd; the uplinks are NOT plugged:
    the plugin's ``init`` plugs them (each test runs it and removes the uplink at its end)."""
    yield from _two_nodes(plug_uplinks=False)


@pytest.fixture
def cluster(plugin_bed: NodeBed, plugin_path: str, tmp_path: Any) -> Iterator[Cluster]:
    """The plugin on both nodes for one test (own etcd prefix, namespace, state and logs);
    at the end everything the test made is removed and anything left fails the test."""
    made = Cluster(plugin_bed, plugin_path, str(tmp_path))
    yield made
    problems = made.close()
    if problems:
        pytest.fail("left behind:\n  - " + "\n  - ".join(problems), pytrace=False)
