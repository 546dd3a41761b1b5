"""The CNI front-end for containerd and CRI-O: a namespace path, no Docker, the netns plumber.

Called by a real runtime (a foreground `ctr run --rm --cni`: containerd's own go-cni runs
the first conflist of /etc/cni/net.d with the binaries of /opt/cni/bin, both the test's
own in a private mount namespace), and in the CRI order by hand (a named namespace, ADD,
then a container joining it). Real containerd, Open vSwitch and Docker.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from plugin import names
from plugin.core import recordfile
from plugin.core.marks import KEYS
from plugin.frontends.cni.versions import SUPPORTED
from tests.support import containerd as C
from tests.support import hostnet, pluginstate
from tests.support.cni_runtime import Runtime, pod_args
from tests.support.pluginstate import our_ports

CTR_VERSIONS = ("0.3.1", "0.4.0", "1.0.0")  # containerd 1.6's go-cni knows no 1.1.0 result


@pytest.fixture
def runtime(tmp_path) -> Runtime:
    return Runtime(str(tmp_path))


@pytest.fixture
def cri(scope, image):
    """Named namespaces and containerd tasks this test makes; all removed after it."""
    made: list = []

    class Cri:
        def netns(self) -> C.NetNS:
            ns = C.add_netns()
            scope.netns.add(ns.path)
            made.append(ns)
            return ns

        def join(self, ns: C.NetNS) -> C.Task:
            task = C.run_in_netns(ns)
            made.append(task)
            return task

    yield Cri()
    for thing in reversed(made):
        thing.remove() if isinstance(thing, C.Task) else C.delete_netns(thing)


def cri_env(container_id: str, netns: str) -> dict[str, str]:
    return {"CNI_CONTAINERID": container_id, "CNI_NETNS": netns}


def inside(netns: str, *argv: str):
    return hostnet.run(["nsenter", f"--net={netns}", *argv], check=False)


def addresses_in(netns: str, ifname: str) -> list[str]:
    out = inside(netns, "ip", "-o", "-4", "addr", "show", "dev", ifname).stdout.split()
    return [out[i + 1] for i, word in enumerate(out) if word == "inet"]


@pytest.mark.parametrize("version", CTR_VERSIONS)
def test_a_real_runtime_calls_the_plugin(tmp_path, scope, runtime, bridge, image, version):
    """`ctr run --rm --cni`: ADD with CNI_NETNS=/proc/<pid>/ns/net, CNI_IFNAME=eth0, the id
    <namespace>-<name> and no pod name; DEL with an empty CNI_NETNS when the task ends."""
    dirs = C.make_cni_dirs(str(tmp_path / "cni"))
    dirs.install("vlanpipe", source=shutil.which("vlanpipe-cni", path=os.path.dirname(
        sys.executable)))
    conf = runtime.netconf(version, bridge, vlan=22)
    dirs.write_conflist({"cniVersion": version, "name": conf["name"],
                         "plugins": [{k: v for k, v in conf.items()
                                      if k not in ("cniVersion", "name")}]})
    run = C.start_cni_run(dirs, env={"VLANPIPE_CONFIG": runtime.config_path})
    try:
        scope.containers[run.container_id] = run.pid
        port = names.host_veth(run.container_id, "eth0")
        found = our_ports(bridge)[port]
        assert found["tag"] == 22 and found["external_ids"][KEYS["plumber"]] == "netns"
        assert found["external_ids"][KEYS["infra_id"]] == run.container_id
        (address,) = addresses_in(f"/proc/{run.pid}/ns/net", "eth0")
        assert pluginstate.leases(runtime.state_dir) == [address.split("/")[0]]
        add = [r for r in runtime.log_records() if r["command"] == "cni-add"][-1]
        assert add["outcome"] == "ok" and "netns" in add["plumber"]
    finally:
        assert run.stop() == 137, run.output()
    assert our_ports(bridge) == {} and pluginstate.leases(runtime.state_dir) == []
    assert os.listdir(os.path.join(runtime.state_dir, "attachments")) == []
    dels = [r for r in runtime.log_records() if r["command"] == "cni-del"]
    assert dels and dels[-1]["outcome"] == "ok" and not dels[-1].get("netns")


def test_the_cri_order_and_a_ping_to_a_docker_pod(scope, runtime, bridge, cri, container,
                                                  make_container):
    """A namespace first, ADD with its path and a fresh 64-hex id before any process is in
    it, then a container that joins it; it talks to a Docker pod of its VLAN, not of
    another."""
    ns = cri.netns()
    sandbox = C.random_container_id()
    scope.containers[sandbox] = 0
    conf22 = runtime.netconf("1.0.0", bridge, vlan=22)
    result = runtime.ok("ADD", conf22, env=cri_env(sandbox, ns.path), ifname="eth0").body
    assert result["interfaces"][1] == {"name": "eth0", "mac": result["interfaces"][1]["mac"],
                                       "sandbox": ns.path}
    task = cri.join(ns)
    assert C.ns_inode(f"/proc/{task.pid}/ns/net") == ns.inode()
    mine = result["ips"][0]["address"]
    assert addresses_in(ns.path, "eth0") == [mine]
    docker22, docker23 = container, make_container("v23")
    runtime.ok("ADD", conf22, docker22, args=pod_args("default", "d22", docker22.id))
    conf23 = runtime.netconf("1.0.0", bridge, vlan=23)
    runtime.ok("ADD", conf23, docker23, args=pod_args("default", "d23", docker23.id))
    assert hostnet.ping(docker22.id, mine.split("/")[0])
    assert not hostnet.ping(docker23.id, mine.split("/")[0])
    runtime.ok("CHECK", {**conf22, "prevResult": result}, env=cri_env(sandbox, ns.path),
               ifname="eth0")
    for conf, c in ((conf22, docker22), (conf23, docker23)):
        runtime.ok("DEL", conf, c)
    task.remove()
    C.delete_netns(ns)  # the container and the namespace are gone; DEL still works, twice
    for _ in range(2):
        runtime.ok("DEL", conf22, env=cri_env(sandbox, ""), ifname="eth0")
    assert our_ports(bridge) == {} and pluginstate.leases(runtime.state_dir) == []


def test_the_namespace_plumber_sets_mtu_gateways_and_routes_of_both_families(
        scope, runtime, bridge, cri):
    """What pipework does for a Docker pod, the netns plumber does by path: here with a
    dual-stack network that has an MTU, a gateway per family taking the pod's default traffic
    (`default_route: true`) and a route per family."""
    runtime.configure(networks=[{"name": "pods", "vlans": "all", "mtu": 1400, "subnets": [
        {"subnet": "10.97.0.0/24", "gateway": "10.97.0.1", "default_route": True},
        {"subnet": "fd00:97::/64", "gateway": "fd00:97::1", "default_route": True}], "routes": [
        {"dst": "10.200.0.0/16", "gw": "10.97.0.254"}, {"dst": "fd00:200::/48"}]}])
    ns = cri.netns()
    sandbox = C.random_container_id()
    scope.containers[sandbox] = 0
    conf = runtime.netconf("1.0.0", bridge, vlan=22)
    result = runtime.ok("ADD", conf, env=cri_env(sandbox, ns.path), ifname="eth0").body
    assert [ip.get("gateway") for ip in result["ips"]] == ["10.97.0.1", "fd00:97::1"]
    link = inside(ns.path, "ip", "-j", "link", "show", "dev", "eth0").stdout
    assert '"mtu":1400' in link.replace(" ", ""), link
    v4 = inside(ns.path, "ip", "-4", "route", "show", "dev", "eth0").stdout
    v6 = inside(ns.path, "ip", "-6", "route", "show", "dev", "eth0").stdout
    assert "0.0.0.0/1 via 10.97.0.1" in v4 and "128.0.0.0/1 via 10.97.0.1" in v4, v4
    assert "10.200.0.0/16 via 10.97.0.254" in v4, v4
    assert "::/1 via fd00:97::1" in v6 and "8000::/1 via fd00:97::1" in v6, v6
    assert "fd00:200::/48" in v6, v6
    runtime.ok("DEL", conf, env=cri_env(sandbox, ns.path), ifname="eth0")
    assert our_ports(bridge) == {} and pluginstate.leases(runtime.state_dir) == []


def test_a_long_dotted_container_id_names_files_by_its_hash(scope, runtime, bridge, cri):
    """Any id the spec allows (letters, digits, _ . -; no length limit): 300 characters, with
    dots, ends up only inside a hash."""
    ns = cri.netns()
    sandbox = "ctr..-" + "x" * 290 + "..end"
    scope.containers[sandbox] = 0
    conf = runtime.netconf("1.0.0", bridge, vlan=22)
    runtime.ok("ADD", conf, env=cri_env(sandbox, ns.path), ifname="eth0")
    state = runtime.state_dir
    assert os.listdir(os.path.join(state, "attachments")) == [
        f"{names.state_key(sandbox)}.json"]
    with open(recordfile.path(state, sandbox), encoding="utf-8") as handle:
        assert json.load(handle)["infra_id"] == sandbox
    assert all(len(n) == len(names.state_key(sandbox)) + len(".lock")
               for n in os.listdir(os.path.join(state, "locks")))
    port = our_ports(bridge)[names.host_veth(sandbox, "eth0")]
    assert port["external_ids"][KEYS["infra_id"]] == sandbox
    runtime.ok("DEL", conf, env=cri_env(sandbox, ns.path), ifname="eth0")
    assert our_ports(bridge) == {} and pluginstate.leases(runtime.state_dir) == []
    assert os.listdir(os.path.join(state, "attachments")) == []


@pytest.mark.parametrize("version", SUPPORTED)
def test_every_spec_version_by_direct_calls(scope, runtime, bridge, cri, version):
    ns = cri.netns()
    sandbox = C.random_container_id()
    scope.containers[sandbox] = 0
    env = cri_env(sandbox, ns.path)
    conf = runtime.netconf(version, bridge, vlan=22)
    result = runtime.ok("ADD", conf, env=env, ifname="eth0").body
    assert result["cniVersion"] == version and len(result["ips"]) == 1
    if version != "0.3.1":
        runtime.ok("CHECK", {**conf, "prevResult": result}, env=env, ifname="eth0")
    if version == "1.1.0":
        runtime.ok("STATUS", conf)
        runtime.ok("GC", {**conf, "cni.dev/valid-attachments": [
            {"containerID": sandbox, "ifname": "eth0"}]})
        assert len(our_ports(bridge)) == 1  # listed as valid: kept
        runtime.ok("GC", {**conf, "cni.dev/valid-attachments": []})
        assert our_ports(bridge) == {} and pluginstate.leases(runtime.state_dir) == []
    runtime.ok("DEL", conf, env=env, ifname="eth0")
    assert our_ports(bridge) == {} and addresses_in(ns.path, "eth0") == []


def test_check_finds_a_changed_mac_and_a_missing_interface(scope, runtime, bridge, cri):
    ns = cri.netns()
    sandbox = C.random_container_id()
    scope.containers[sandbox] = 0
    env = cri_env(sandbox, ns.path)
    conf = runtime.netconf("1.0.0", bridge, vlan=22)
    result = runtime.ok("ADD", conf, env=env, ifname="eth0").body
    inside(ns.path, "ip", "link", "set", "dev", "eth0", "address", "0a:58:99:99:99:99")
    error = runtime.fails(1003, "CHECK", {**conf, "prevResult": result}, env=env,
                          ifname="eth0")
    assert "MAC 0a:58:99:99:99:99" in error["msg"]
    mac = next(i["mac"] for i in result["interfaces"] if i.get("sandbox"))
    address = result["ips"][0]["address"]
    inside(ns.path, "ip", "link", "set", "dev", "eth0", "address", mac)
    runtime.ok("CHECK", {**conf, "prevResult": result}, env=env, ifname="eth0")
    inside(ns.path, "ip", "addr", "del", address, "dev", "eth0")
    error = runtime.fails(1003, "CHECK", {**conf, "prevResult": result}, env=env,
                          ifname="eth0")
    assert "eth0 in the pod has no address" in error["msg"] and address in error["msg"], error
    inside(ns.path, "ip", "link", "del", "eth0")
    error = runtime.fails(1003, "CHECK", {**conf, "prevResult": result}, env=env,
                          ifname="eth0")
    assert f"{ns.path} has no interface eth0" in error["msg"], error
    # DEL with the port (and the veth) already gone: it still frees the lease and the record.
    hostnet.ovs("del-port", bridge, names.host_veth(sandbox, "eth0"))
    runtime.ok("DEL", conf, env=env, ifname="eth0")
    assert our_ports(bridge) == {} and pluginstate.leases(runtime.state_dir) == []
    assert not os.path.exists(recordfile.path(runtime.state_dir, sandbox))


def test_gc_judges_a_namespace_attachment_without_docker(scope, runtime, bridge, cri, tmp_path):
    """The namespace is deleted under a live attachment (its veth dies with it): gc collects
    it, with Docker unreachable; a live one is kept."""
    live, doomed = cri.netns(), cri.netns()
    ids = {ns.name: C.random_container_id() for ns in (live, doomed)}
    for ns in (live, doomed):
        scope.containers[ids[ns.name]] = 0
        runtime.ok("ADD", runtime.netconf("1.0.0", bridge, vlan=22),
                   env=cri_env(ids[ns.name], ns.path), ifname="eth0")
    C.delete_netns(doomed)
    runtime.configure(docker_url=f"unix://{tmp_path}/no-docker.sock")
    plugin = [sys.executable, "-m", "plugin.frontends.exec_cli", "--config",
              runtime.config_path, "gc"]
    swept = hostnet.run(plugin, check=False)
    assert swept.returncode == 0, swept.stdout + swept.stderr  # no Docker pod to judge
    assert "removed port" in swept.stdout and "its container is gone" in swept.stdout
    assert ids[doomed.name][:12] not in str(our_ports(bridge))
    assert [p for p in our_ports(bridge)] == [names.host_veth(ids[live.name], "eth0")]
    runtime.ok("DEL", runtime.netconf("1.0.0", bridge), env=cri_env(ids[live.name], live.path),
               ifname="eth0")
    assert our_ports(bridge) == {} and pluginstate.leases(runtime.state_dir) == []


def test_gc_tells_a_namespace_path_reused_by_another_namespace(scope, runtime, bridge, cri,
                                                                tmp_path):
    """The pod's namespace still exists (a process holds it, so its veth lives) but its path
    now names a new namespace: the recorded device and inode tell them apart, and gc
    collects the attachment."""
    ns = cri.netns()
    sandbox = C.random_container_id()
    scope.containers[sandbox] = 0
    runtime.ok("ADD", runtime.netconf("1.0.0", bridge, vlan=22), env=cri_env(sandbox, ns.path),
               ifname="eth0")
    old = ns.inode()
    holder = subprocess.Popen(["ip", "netns", "exec", ns.name, "sleep", "120"])
    try:
        hostnet.wait_until(lambda: C.ns_inode(f"/proc/{holder.pid}/ns/net") == old, timeout=10)
        C.delete_netns(ns)
        hostnet.run(["ip", "netns", "add", ns.name])  # the same path, another namespace
        assert ns.inode() != old and names.host_veth(sandbox, "eth0") in hostnet.host_links()
        runtime.configure(docker_url=f"unix://{tmp_path}/no-docker.sock")
        swept = hostnet.run([sys.executable, "-m", "plugin.frontends.exec_cli", "--config",
                             runtime.config_path, "gc"], check=False)
        assert swept.returncode == 0 and "its container is gone" in swept.stdout, swept.stdout
        assert our_ports(bridge) == {} and pluginstate.leases(runtime.state_dir) == []
        assert names.host_veth(sandbox, "eth0") not in hostnet.host_links()
    finally:
        holder.kill()
        holder.wait()


def test_a_namespace_path_that_does_not_exist_is_a_clean_error(runtime, bridge):
    error = runtime.fails(4, "ADD", runtime.netconf("1.0.0", bridge, vlan=22),
                          env=cri_env(C.random_container_id(), "/var/run/netns/cni-none"),
                          ifname="eth0")
    assert "CNI_NETNS /var/run/netns/cni-none does not exist" in error["msg"]
    assert our_ports(bridge) == {}
