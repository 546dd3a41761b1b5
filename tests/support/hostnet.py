"""Host-state helpers over the real daemons (Open vSwitch, iproute2, Docker).

Plain functions, no pytest: the e2e fixtures and the benchmark both use them.
Every command is an argv list (never a shell string). The machine has no
Open vSwitch kernel module, so bridges made here use the userspace
(``netdev``) datapath; ``scripts/host-setup`` starts the daemons.

Why snapshots: the plugin's defects are leaks (veth pairs, OVS ports whose
device vanished, ``/var/run/netns`` links left by a half-finished pipework),
so a test proves itself clean by comparing the host before and after.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

IMAGE = "vlanpipe/busybox:latest"
TEST_LABEL = "vlanpipe-test=1"
NETNS_DIR = "/var/run/netns"
# Host-side veth names that the plugin (``vp...``) or pipework
# (``v<IF>pl<PID>``, e.g. ``veth1pl4538``) create. Docker's own are
# ``veth`` + 7 hex digits and match neither.
PLUGIN_VETH_RE = re.compile(r"^(vp.*|v\w*pl\d+)$")

T = TypeVar("T")


class CommandError(RuntimeError):
    """A host command failed; the message carries argv, exit code and stderr."""

    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.proc = proc
        super().__init__(
            f"{' '.join(proc.args)} exited {proc.returncode}: "
            f"{(proc.stderr or proc.stdout or '').strip()}"
        )


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run argv, capture text output; raise CommandError (with stderr) on failure if check."""
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and proc.returncode != 0:
        raise CommandError(proc)
    return proc


# --- Open vSwitch ---------------------------------------------------------------


def ovs(*args: str) -> str:
    """``ovs-vsctl --timeout=5 ARGS``: bounded, so a dead ovsdb-server fails instead of hanging."""
    return run(["ovs-vsctl", "--timeout=5", *args]).stdout


def ovsdb_value(value: Any) -> Any:
    """Decode OVSDB's JSON encoding: ["set",[..]] -> list, ["map",[[k,v],..]] -> dict,
    ["uuid",u] -> u; atoms stay as they are."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        kind, payload = value
        if kind == "set":
            return [ovsdb_value(v) for v in payload]
        if kind == "map":
            return {ovsdb_value(k): ovsdb_value(v) for k, v in payload}
        if kind in ("uuid", "named-uuid"):
            return payload
    return value


def ovs_list(table: str, columns: Sequence[str]) -> list[dict[str, Any]]:
    """All rows of an OVSDB table as dicts of decoded columns."""
    out = ovs("--format=json", "--columns=" + ",".join(columns), "list", table)
    doc = json.loads(out)
    return [
        {h: ovsdb_value(v) for h, v in zip(doc["headings"], row)} for row in doc["data"]
    ]


def _optional(value: Any) -> Any:
    """An optional column (min 0, max 1) is an empty set when unset, else the atom."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def ovs_ports() -> dict[str, dict[str, Any]]:
    """Every OVS Port row: name -> {bridge, tag, external_ids}, the bridge's own local port included.

    Port rows outlive their kernel device, so this (not ``ip link``) is where a
    leaked port of a dead container shows.
    """
    owner: dict[str, str] = {}
    for br in ovs_list("Bridge", ["name", "ports"]):
        ports = br["ports"]
        for uuid in ports if isinstance(ports, list) else [ports]:
            owner[uuid] = br["name"]
    result: dict[str, dict[str, Any]] = {}
    for port in ovs_list("Port", ["_uuid", "name", "tag", "external_ids"]):
        result[port["name"]] = {
            "bridge": owner.get(port["_uuid"]),
            "tag": _optional(port["tag"]),
            "external_ids": port["external_ids"],
        }
    return result


def make_bridge(name: str, datapath_type: str = "netdev") -> str:
    """Create an OVS bridge and wait for its local device to exist.

    ``netdev``: without the kernel module a ``system`` bridge exists only in the
    database. pipework needs ``/sys/class/net/<bridge>`` to see it as a bridge.
    """
    ovs("--may-exist", "add-br", name, "--", "set", "Bridge", name, f"datapath_type={datapath_type}")
    if not wait_until(lambda: os.path.isdir(f"/sys/class/net/{name}"), timeout=10):
        raise RuntimeError(f"bridge {name} has no kernel device after 10 s")
    return name


def delete_bridge(name: str) -> None:
    """Delete a bridge and, with it, all its Port rows (no error if it is gone)."""
    ovs("--if-exists", "del-br", name)


def bridge_leaks(bridge: str) -> list[str]:
    """What a test left behind on ``bridge``: its ports (the local port excluded), the
    plugin's OpenFlow rules of any port (the bridge's own default rules may stay) and its
    OpenFlow meters (the bandwidth limits' egress half; they go with the bridge, so they
    are checked here, before it is deleted)."""
    problems = []
    if run(["ovs-vsctl", "--timeout=5", "br-exists", bridge], check=False).returncode == 0:
        for port in ovs("list-ports", bridge).split():
            problems.append(f"OVS port {port} still on bridge {bridge}")
        from plugin.core import flows

        problems += [f"OpenFlow rule {rule} still on bridge {bridge}"
                     for rule in plugin_rules(bridge) if rule.cookie != flows.BRIDGE]
        problems += [f"meter {m} still on bridge {bridge}" for m in meters(bridge)]
    return problems


def plugin_rules(bridge: str) -> list[Any]:
    """The rules on ``bridge`` whose cookie is the plugin's (`plugin.core.flows.PREFIX`)."""
    from pipework_wrapper.errors import ToolFailed
    from pipework_wrapper.ofctl import Ofctl
    from plugin.core import flows

    try:
        return Ofctl(10).dump(bridge, flows.PREFIX, flows.MASK)
    except ToolFailed:  # deleted since it was listed
        return []


def bridges() -> set[str]:
    return set(ovs("list-br").split())


def meters(bridge: str) -> list[int]:
    """The ids of ``bridge``'s OpenFlow meters."""
    out = run(["ovs-ofctl", "--timeout=5", "-O", "OpenFlow13", "dump-meters", bridge]).stdout
    return [int(m) for m in re.findall(r"^meter=(\d+)", out, re.M)]


def qos_rows(table: str, infra_ids: Iterable[str]) -> list[str]:
    """The QoS or Queue rows marked with one of these container ids: "TABLE UUID (marks)"."""
    wanted = set(infra_ids)
    return [f"{table} {row['_uuid']} ({row['external_ids']})"
            for row in ovs_list(table, ["_uuid", "external_ids"])
            if row["external_ids"].get("vlanpipe-infra-id") in wanted]


def assert_clean(bridge: str) -> None:
    """Raise AssertionError listing bridge_leaks(bridge), if any."""
    problems = bridge_leaks(bridge)
    if problems:
        raise AssertionError("leaks:\n  " + "\n  ".join(problems))


# --- host links and namespaces ----------------------------------------------------


def host_links() -> set[str]:
    """Names of all links in the host netns (``veth1pl42@if9`` -> ``veth1pl42``)."""
    names = set()
    for line in run(["ip", "-o", "link", "show"]).stdout.splitlines():
        fields = line.split(":", 2)
        if len(fields) >= 2:
            names.add(fields[1].strip().split("@", 1)[0])
    return names


def netns_links() -> set[str]:
    """Entries of /var/run/netns (pipework leaves ``<PID>`` there when it fails midway)."""
    try:
        return set(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return set()


def in_netns(pid: int, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a host binary inside the network namespace of ``pid``.

    Needed for configuring interfaces: ``docker exec`` lacks CAP_NET_ADMIN.
    """
    return run(["nsenter", "-t", str(pid), "-n", *argv], check=check)


# --- containers ---------------------------------------------------------------------


@dataclass(frozen=True)
class Container:
    id: str  # full 64-hex Docker id, as the kubelet passes INFRA_ID
    pid: int
    name: str


def containers(label: str = TEST_LABEL) -> set[str]:
    """Full ids of all containers (running or not) carrying ``label`` (``k=v`` or ``k``)."""
    out = run(["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={label}"]).stdout
    return set(out.split())


def container_pid(cid: str) -> int:
    """State.Pid of a container (0 when it is not running)."""
    return int(run(["docker", "inspect", "--format", "{{.State.Pid}}", cid]).stdout.strip())


def start_container(
    name_hint: str = "c", *, image: str = IMAGE, docker_args: Sequence[str] = (),
    labels: Sequence[str] = (),
) -> Container:
    """``docker run -d`` a labelled sleeper with a unique name; return id, pid, name.

    The label lets snapshots (and a cleanup after a crash) find every test container.
    """
    hint = re.sub(r"[^a-zA-Z0-9_.-]", "-", name_hint)[:40] or "c"
    name = f"vlanpipe-test-{hint}-{secrets.token_hex(3)}"
    out = run(
        ["docker", "run", "-d", "--label", TEST_LABEL,
         *[arg for label in labels for arg in ("--label", label)], "--name", name,
         *docker_args, image, "sleep", "3600"]
    ).stdout
    cid = out.strip().splitlines()[-1]
    return Container(id=cid, pid=container_pid(cid), name=name)


def remove_container(cid: str) -> None:
    """``docker rm -f``; a container that is already gone is fine."""
    proc = run(["docker", "rm", "-f", "-v", cid], check=False)
    if proc.returncode != 0 and "No such container" not in proc.stderr:
        raise CommandError(proc)


def stop_container(cid: str) -> None:
    """Kill the container at once (``sleep`` as PID 1 ignores SIGTERM), keeping it listed:
    the "infra container died on its own" case."""
    run(["docker", "stop", "--time", "0", cid])


def in_container(cid: str, *argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """``docker exec CID ARGV`` (busybox applets; no CAP_NET_ADMIN: use in_netns to configure)."""
    return run(["docker", "exec", cid, *argv], check=check)


def container_addresses(cid: str, ifname: str) -> list[str]:
    """Addresses on ``ifname`` inside the container as ``addr/prefix``; IPv6 link-local
    left out. [] when the interface does not exist."""
    proc = in_container(cid, "ip", "-o", "addr", "show", "dev", ifname)
    if proc.returncode != 0:
        return []
    found = []
    for line in proc.stdout.splitlines():
        words = line.split()
        for family in ("inet", "inet6"):
            if family in words:
                addr = words[words.index(family) + 1]
                if not addr.lower().startswith("fe80:"):
                    found.append(addr)
    return found


def _connected_networks(cid: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Subnets on the container's interfaces other than Docker's eth0 (and lo)."""
    proc = in_container(cid, "ip", "-o", "addr", "show", check=True)
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for line in proc.stdout.splitlines():
        words = line.split()
        if len(words) < 4 or words[1] in ("eth0", "lo") or words[2] not in ("inet", "inet6"):
            continue
        nets.append(ipaddress.ip_interface(words[3]).network)
    return nets


def ping(cid: str, address: str, count: int = 1, timeout: int = 2) -> bool:
    """Ping ``address`` from inside the container; True if a reply came.

    Refuses (ValueError) an address outside the subnets of the container's own
    test interfaces: anything else would leave through Docker's eth0 and NAT,
    and this project never sends traffic off the machine.
    """
    target = ipaddress.ip_address(address.split("/", 1)[0])
    if not any(target in net for net in _connected_networks(cid)):
        raise ValueError(f"{target} is not on a test interface of container {cid[:12]}")
    proc = in_container(cid, "ping", "-c", str(count), "-W", str(timeout), str(target))
    return proc.returncode == 0


# --- snapshots ------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    links: frozenset[str]
    ports: Mapping[str, Mapping[str, Any]]
    netns: frozenset[str]
    containers: frozenset[str]


def snapshot() -> Snapshot:
    """The host state a test must leave as it found it."""
    return Snapshot(
        links=frozenset(host_links()),
        ports=ovs_ports(),
        netns=frozenset(netns_links()),
        containers=frozenset(containers(TEST_LABEL)),
    )


def diff(before: Snapshot, after: Snapshot) -> list[str]:
    """Human-readable leaks: things present after that were not there before."""
    leaks = [f"host link {n}" for n in sorted(after.links - before.links)]
    for name in sorted(set(after.ports) - set(before.ports)):
        p = after.ports[name]
        leaks.append(f"OVS port {name} (bridge {p['bridge']}, tag {p['tag']}, external_ids {p['external_ids']})")
    leaks += [f"{NETNS_DIR}/{n}" for n in sorted(after.netns - before.netns)]
    leaks += [f"container {c[:12]} labelled {TEST_LABEL}" for c in sorted(after.containers - before.containers)]
    return leaks


def clean_leaks(before: Snapshot, after: Snapshot) -> None:
    """Best-effort removal of what diff() reports, so one leaky test does not
    leave the machine dirty for the next (errors ignored)."""
    for cid in after.containers - before.containers:
        run(["docker", "rm", "-f", "-v", cid], check=False)
    for name in set(after.ports) - set(before.ports):
        run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-port", name], check=False)
    for name in after.links - before.links:
        run(["ip", "link", "del", name], check=False)
    for name in after.netns - before.netns:
        if run(["ip", "netns", "delete", name], check=False).returncode != 0:
            try:
                os.unlink(os.path.join(NETNS_DIR, name))
            except OSError:
                pass


# --- readiness -------------------------------------------------------------------------


def _succeeds(argv: Sequence[str], timeout: float) -> bool:
    try:
        return run(argv, check=False, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def preflight() -> list[str]:
    """What is missing for the real-daemon tests (empty list: all there).
    ``scripts/host-setup`` provides all of it."""
    missing = []
    if not _succeeds(["ovs-vsctl", "--timeout=3", "show"], 10):
        missing.append("ovsdb-server does not answer `ovs-vsctl --timeout=3 show`")
    if not _succeeds(["ovs-appctl", "-t", "ovs-vswitchd", "version"], 10):
        missing.append("ovs-vswitchd is not running (`ovs-appctl -t ovs-vswitchd version` fails)")
    if not _succeeds(["docker", "info"], 20):
        missing.append("dockerd does not answer `docker info`")
    elif not _succeeds(["docker", "image", "inspect", IMAGE], 20):
        missing.append(f"docker image {IMAGE} is missing")
    if shutil.which("pipework") is None:
        missing.append("`pipework` is not on PATH")
    if not _succeeds(["nsenter", "--version"], 10):
        missing.append("`nsenter` (util-linux) is missing")
    return missing


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy or ``timeout`` seconds pass;
    return its last result (falsy on timeout). Kernel and OVS changes land
    asynchronously (a netns dies after ``docker rm`` returns)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)
