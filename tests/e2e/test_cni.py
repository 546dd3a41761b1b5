"""The CNI front-end end to end: called as a runtime calls it (env, stdin, stdout, exit
status), against real Open vSwitch, Docker, pipework and Debian's host-local, for every
supported spec version."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plugin.frontends.cni.versions import SUPPORTED
from plugin.core.marks import KEYS
from tests.support import hostnet, pluginstate
from tests.support.pluginstate import our_ports
from tests.support.cni_runtime import Reply, Runtime, pod_args

NS = "default"
VERSIONS = pytest.mark.parametrize("version", SUPPORTED)


@pytest.fixture
def runtime(tmp_path) -> Runtime:
    return Runtime(str(tmp_path))


def leases(runtime: Runtime) -> list[str]:
    return pluginstate.leases(runtime.state_dir)


def host_local_leases(data_dir) -> list[str]:
    """Addresses host-local holds for the network (one file each, named by the address)."""
    network = data_dir / "vlan-net"
    if not network.exists():
        return []
    return sorted(f.name for f in network.iterdir() if f.name[0].isdigit())


def add(runtime: Runtime, conf: dict, container, pod: str = "web", **kwargs) -> dict:
    body = runtime.ok("ADD", conf, container, args=pod_args(NS, pod, container.id), **kwargs).body
    assert body is not None
    return body


def assert_gone(runtime: Runtime, bridge: str, container) -> None:
    """No port, no lease, and no net1 left in the (still running) container."""
    assert our_ports(bridge) == {}
    assert leases(runtime) == []
    assert hostnet.container_addresses(container.id, "net1") == []


def as_used(version: str, ip: dict) -> None:
    """The IP entry has the family field exactly in the versions that have it."""
    assert ("version" in ip) == version.startswith("0."), ip
    if "version" in ip:
        assert ip["version"] == str(ipaddress.ip_interface(ip["address"]).version)


@VERSIONS
def test_add_check_del(runtime, bridge, container, version):
    conf = runtime.netconf(version, bridge, vlan=22)
    result = add(runtime, conf, container)
    assert result["cniVersion"] == version
    host_if, pod_if = result["interfaces"]
    assert pod_if["name"] == "net1" and pod_if["sandbox"] == f"/proc/{container.pid}/ns/net"
    assert "sandbox" not in host_if and pod_if["mac"].startswith("0a:58:")
    assert ("mtu" in pod_if) == (version == "1.1.0")
    (ip,) = result["ips"]
    as_used(version, ip)
    assert ip["interface"] == 1 and ip["address"].startswith("10.97.0.")
    assert hostnet.container_addresses(container.id, "net1") == [ip["address"]]
    port = our_ports(bridge)[host_if["name"]]
    assert port["tag"] == 22
    assert port["external_ids"]["owner"] == "vlanpipe"
    assert port["external_ids"][KEYS["cni_network"]] == "vlan-net"
    assert port["external_ids"]["vlanpipe-pod"] == "web"
    assert port["external_ids"][KEYS["plumber"]] == "pipework"  # Docker knows the container
    assert "pipework" in [r for r in runtime.log_records() if r["command"] == "cni-add"][-1][
        "plumber"]
    with_prev = {**conf, "prevResult": result}
    if version == "0.3.1":
        runtime.fails(1, "CHECK", with_prev, container)
    else:
        assert runtime.ok("CHECK", with_prev, container).stdout == ""
    assert runtime.ok("DEL", with_prev, container).stdout == ""
    assert_gone(runtime, bridge, container)
    records = runtime.log_records()
    assert [r["command"] for r in records][-1] == "cni-del"
    assert all(r["outcome"] == "ok" for r in records)


@VERSIONS
def test_del_twice(runtime, bridge, container, version):
    conf = runtime.netconf(version, bridge, vlan=22)
    add(runtime, conf, container)
    runtime.ok("DEL", conf, container)
    runtime.ok("DEL", conf, container)
    assert_gone(runtime, bridge, container)


@VERSIONS
def test_del_after_container_removed(runtime, bridge, make_container, version):
    c = make_container()
    conf = runtime.netconf(version, bridge, vlan=22)
    add(runtime, conf, c)
    hostnet.remove_container(c.id)
    runtime.ok("DEL", conf, c, drop=("CNI_NETNS",))
    runtime.ok("DEL", conf, c)
    assert our_ports(bridge) == {} and leases(runtime) == []


@pytest.mark.parametrize("refused", ["nested", "huge"])
def test_del_of_a_config_past_the_limits_removes_what_the_record_names(runtime, bridge,
                                                                      container, refused):
    """ADD and CHECK refuse such a config (code 7, tests/unit/test_bad_input.py); DEL never
    fails for it: the runtime would retry it forever and the pod's port and address would
    stay. It goes by the attachment record and says so in one short line of its log."""
    conf = runtime.netconf("1.0.0", bridge, vlan=22)
    add(runtime, conf, container)
    nested = {**conf, "ipam": {"type": "host-local", "x": json.loads("[" * 600 + "]" * 600)}}
    stdin = json.dumps(nested).encode() if refused == "nested" else \
        json.dumps({**conf, "x": "x" * (1 << 20)}).encode()
    reply = runtime("DEL", stdin, container)
    assert (reply.status, reply.stdout) == (0, ""), reply.stdout[:500]
    assert_gone(runtime, bridge, container)
    logged = runtime.log_records()[-1]
    assert logged["command"] == "cni-del" and logged["outcome"] == "ok"
    (warning,) = logged["warnings"]
    assert "DEL removes what the attachment record names" in warning and len(warning) < 200
    assert ("nests deeper than 32" if refused == "nested" else "larger than") in warning


def test_del_of_never_added_and_non_docker_ids_succeeds(runtime, bridge):
    conf = runtime.netconf("1.0.0", bridge, vlan=22)
    for container_id in ("a" * 64, "not-docker"):
        runtime.ok("DEL", conf, env={"CNI_CONTAINERID": container_id})


@VERSIONS
def test_per_pod_vlan_from_args_cni(runtime, bridge, container, version):
    """One network config, the VLAN chosen per pod (Multus `cni-args`)."""
    conf = runtime.netconf(version, bridge, vlan=22, args={"cni": {"vlan": 23}})
    result = add(runtime, conf, container)
    assert our_ports(bridge)[result["interfaces"][0]["name"]]["tag"] == 23
    if version != "0.3.1":
        runtime.ok("CHECK", {**conf, "prevResult": result}, container)
    runtime.ok("DEL", conf, container)
    assert_gone(runtime, bridge, container)


def test_vlans_from_args_isolate_pods(runtime, bridge, make_container):
    """Two pods on VLAN 22 reach each other, a third on 23 (same subnet) reaches neither."""
    pods = {"a": (make_container("a"), 22), "b": (make_container("b"), 22),
            "c": (make_container("c"), 23)}
    ips = {}
    for name, (c, vlan) in pods.items():
        conf = runtime.netconf("1.0.0", bridge, args={"cni": {"vlan": vlan}})
        ips[name] = add(runtime, conf, c, pod=name)["ips"][0]["address"]
    (a, _), (b, _), (c, _) = pods.values()
    assert hostnet.ping(a.id, ips["b"]) and hostnet.ping(b.id, ips["a"])
    assert not hostnet.ping(a.id, ips["c"]) and not hostnet.ping(c.id, ips["a"])
    for name, (c, _) in pods.items():
        runtime.ok("DEL", runtime.netconf("1.0.0", bridge), c)
    assert our_ports(bridge) == {} and leases(runtime) == []


def test_pod_name_rule_and_runtime_config_address_and_mtu(runtime, bridge, container):
    """No vlan key: the reference rule (VLAN from the pod name); the address from
    runtimeConfig.ips, reserved in the node's network, the MTU from the config."""
    conf = runtime.netconf("1.1.0", bridge, mtu=1400,
                           runtimeConfig={"ips": ["10.97.0.200/24"]})
    result = add(runtime, conf, container, pod="24-web")
    assert result["ips"][0]["address"] == "10.97.0.200/24"
    assert result["interfaces"][1]["mtu"] == 1400
    assert our_ports(bridge)[result["interfaces"][0]["name"]]["tag"] == 24
    assert hostnet.container_addresses(container.id, "net1") == ["10.97.0.200/24"]
    assert leases(runtime) == ["10.97.0.200"]  # reserved: no other pod gets it
    runtime.ok("DEL", conf, container)
    assert_gone(runtime, bridge, container)


def link_mtu(name: str) -> int:
    return int(Path(f"/sys/class/net/{name}/mtu").read_text())


def mtu_moves(bridge: str) -> bool:
    """Whether the bridge's own (internal) interface leaves 1500 within a few seconds:
    Open vSwitch lowers it to its smallest port's unless mtu_request is set."""
    return bool(hostnet.wait_until(lambda: link_mtu(bridge) != 1500, timeout=3))


def test_a_network_mtu_outside_the_nodes_range_is_refused_and_the_bridge_keeps_its_own(
        runtime, bridge, container):
    """The issue's repro: "mtu": 576 attached a port of MTU 576, and OVS lowered the
    bridge's internal interface with it, changing the node's own networking. By default a
    network may ask 1280-9000 (cni.mtu): 576 is code 7 and nothing is plugged."""
    assert link_mtu(bridge) == 1500
    conf = runtime.netconf("1.1.0", bridge, vlan=22, mtu=576)
    error = runtime.fails(7, "ADD", conf, container, args=pod_args(NS, "web", container.id))
    assert "'mtu' = 576 is not an MTU this node lets networks use (cni.mtu: 1280-9000)" \
        in error["msg"]
    assert not mtu_moves(bridge)
    assert_gone(runtime, bridge, container)


def test_init_fixes_the_bridge_mtu_so_no_port_can_lower_it(runtime, bridge, container):
    """With the range opened to 576, the port gets 576 and the bridge keeps bridge_mtu,
    which init set as the bridge interface's mtu_request."""
    runtime.configure(bridge=bridge, bridge_mtu=1500, cni={"mtu": {"min": 576, "max": 1500}})
    init = subprocess.run([sys.executable, "-c", "from plugin.frontends.exec_cli import run; "
                           "run()", "--config", runtime.config_path, "init"],
                          capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stdout + init.stderr
    assert hostnet.ovs("get", "Interface", bridge, "mtu_request").strip() == "1500"
    conf = runtime.netconf("1.1.0", bridge, vlan=22, mtu=576)
    result = add(runtime, conf, container)
    assert result["interfaces"][1]["mtu"] == 576
    assert link_mtu(result["interfaces"][0]["name"]) == 576  # the small port is there
    assert not mtu_moves(bridge)
    runtime.ok("DEL", conf, container)
    assert_gone(runtime, bridge, container)


def test_requested_mac_and_network_routes_are_applied(runtime, bridge, container):
    network = {"name": "pods", "vlans": "all", "subnet": "10.97.0.0/24",
               "routes": [{"dst": "10.200.0.0/16", "gw": "10.97.0.1"}]}
    runtime.configure(networks=[network])
    conf = runtime.netconf("1.1.0", bridge, vlan=22, runtimeConfig={"mac": "0a:58:11:22:33:44"})
    result = add(runtime, conf, container)
    assert result["interfaces"][1]["mac"] == "0a:58:11:22:33:44"
    link = hostnet.in_container(container.id, "ip", "-o", "link", "show", "dev", "net1").stdout
    assert "link/ether 0a:58:11:22:33:44" in link
    routes = hostnet.in_container(container.id, "ip", "route").stdout
    assert "10.200.0.0/16 via 10.97.0.1 dev net1" in routes
    runtime.ok("DEL", conf, container)
    assert_gone(runtime, bridge, container)


@VERSIONS
def test_ipam_delegated_to_host_local(runtime, bridge, container, tmp_path, version):
    data = Path(runtime.ipam_data_dir)  # the node config's choice, not the network's
    conf = runtime.netconf(version, bridge, vlan=22, ipam={
        "type": "host-local", "subnet": "10.96.0.0/24"})
    result = add(runtime, conf, container)
    (ip,) = result["ips"]
    as_used(version, ip)
    assert ip["address"] == "10.96.0.2/24" and ip["gateway"] == "10.96.0.1"
    assert result["routes"] == [], "no default route unless isDefaultGateway"
    assert host_local_leases(data) == ["10.96.0.2"]
    assert hostnet.container_addresses(container.id, "net1") == ["10.96.0.2/24"]
    if version != "0.3.1":
        runtime.ok("CHECK", {**conf, "prevResult": result}, container)
    runtime.ok("DEL", conf, container)
    runtime.ok("DEL", conf, container)
    assert host_local_leases(data) == []
    assert_gone(runtime, bridge, container)


def test_failed_add_releases_the_delegated_address(runtime, bridge, container, tmp_path):
    """pipework fails after host-local gave an address: the port, the veth and the
    host-local lease are all undone."""
    fake = pluginstate.failing_ip(tmp_path / "bin")
    data = Path(runtime.ipam_data_dir)  # the node config's choice, not the network's
    conf = runtime.netconf("1.0.0", bridge, vlan=22, ipam={
        "type": "host-local", "subnet": "10.96.0.0/24"})
    error = runtime.fails(1001, "ADD", conf, container, args=pod_args(NS, "web", container.id),
                          env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert "pipework" in error["msg"]
    assert host_local_leases(data) == []
    assert_gone(runtime, bridge, container)


TWO_NETWORKS = [{"name": "a", "vlans": "all", "subnet": "10.97.0.0/24"},
                {"name": "b", "vlans": [300], "subnet": "10.98.0.0/24"}]
HOST_LOCAL = {"type": "host-local", "subnet": "10.96.0.0/24"}


@pytest.mark.parametrize("before,after", [
    ({"vlanpipe": {"network": "a"}}, {"vlanpipe": {"network": "b"}}),
    ({"vlanpipe": {"network": "a"}}, {"ipam": HOST_LOCAL}),
    ({"ipam": HOST_LOCAL}, {"vlanpipe": {"network": "b"}}),
    ({"ipam": HOST_LOCAL}, {"ipam": HOST_LOCAL, "name": "renamed"}),
], ids=["network-a-to-b", "allocator-to-host-local", "host-local-to-allocator",
        "host-local-network-renamed"])
def test_del_after_the_network_config_changed_releases_what_add_claimed(
        runtime, bridge, container, before, after):
    """Issue 19 item 7: the network config is edited between ADD and DEL (another network of
    the node, vlanpipe's allocators swapped with a delegated IPAM plugin, or the network
    renamed, which moves host-local's state). DEL releases what the record says ADD claimed,
    not what the config would claim now."""
    runtime.configure(networks=TWO_NETWORKS)
    data = Path(runtime.ipam_data_dir)
    added = add(runtime, runtime.netconf("1.0.0", bridge, vlan=22, **before), container)
    assert len(leases(runtime) + host_local_leases(data)) == 1, added
    runtime.ok("DEL", runtime.netconf("1.0.0", bridge, vlan=22, **after), container)
    assert leases(runtime) == [] and host_local_leases(data) == []
    assert_gone(runtime, bridge, container)


def test_reference_variant_keys_are_accepted_and_logged(runtime, bridge, container):
    conf = runtime.netconf("1.0.0", bridge, vlan=22, isGateway=True, isDefaultGateway=False,
                           forceAddress=False, ipMasq=True, hairpinMode=True, promiscMode=True)
    add(runtime, conf, container)
    runtime.ok("DEL", conf, container)
    warnings = runtime.log_records()[0]["warnings"]
    for key in ("isGateway", "forceAddress", "ipMasq", "hairpinMode", "promiscMode"):
        assert any(w.startswith(key) or f"key '{key}'" in w for w in warnings), (key, warnings)
    assert_gone(runtime, bridge, container)


def test_check_reports_a_changed_tag(runtime, bridge, container):
    conf = runtime.netconf("1.0.0", bridge, vlan=22)
    result = add(runtime, conf, container)
    port = result["interfaces"][0]["name"]
    hostnet.ovs("set", "Port", port, "tag=99")
    error = runtime.fails(1003, "CHECK", {**conf, "prevResult": result}, container)
    assert "VLAN 99" in error["msg"]
    runtime.ok("DEL", conf, container)
    assert_gone(runtime, bridge, container)


def test_gc_removes_only_this_networks_stale_attachments(runtime, bridge, make_container):
    kept, stale, other = make_container("kept"), make_container("stale"), make_container("other")
    conf = runtime.netconf("1.1.0", bridge, vlan=22)
    add(runtime, conf, kept)
    add(runtime, conf, stale)
    add(runtime, {**conf, "name": "other-net"}, other)
    valid = [{"containerID": kept.id, "ifname": "net1"}]
    assert runtime.ok("GC", {**conf, "cni.dev/valid-attachments": valid}).stdout == ""
    owners = {p["external_ids"]["vlanpipe-infra-id"] for p in our_ports(bridge).values()}
    assert owners == {kept.id, other.id}
    assert hostnet.container_addresses(stale.id, "net1") == []
    runtime.ok("DEL", conf, kept)
    runtime.ok("DEL", {**conf, "name": "other-net"}, other)
    assert our_ports(bridge) == {} and leases(runtime) == []


def test_gc_releases_the_host_local_addresses_of_stale_attachments(runtime, bridge,
                                                                   make_container, tmp_path):
    """host-local 1.1 has no GC: each stale attachment gets an IPAM DEL instead."""
    kept, stale = make_container("kept"), make_container("stale")
    data = Path(runtime.ipam_data_dir)  # the node config's choice, not the network's
    conf = runtime.netconf("1.1.0", bridge, vlan=22, ipam={
        "type": "host-local", "subnet": "10.96.0.0/24"})
    kept_ip = add(runtime, conf, kept)["ips"][0]["address"].split("/")[0]
    add(runtime, conf, stale)
    valid = [{"containerID": kept.id, "ifname": "net1"}]
    runtime.ok("GC", {**conf, "cni.dev/valid-attachments": valid})
    assert host_local_leases(data) == [kept_ip]
    assert [p["external_ids"]["vlanpipe-infra-id"] for p in our_ports(bridge).values()] == [kept.id]
    runtime.ok("DEL", conf, kept)
    assert host_local_leases(data) == [] and our_ports(bridge) == {}


def test_status_answers_for_open_vswitch_and_the_bridge(runtime, bridge):
    assert runtime.ok("STATUS", runtime.netconf("1.1.0", bridge)).stdout == ""
    error = runtime.fails(50, "STATUS", runtime.netconf("1.1.0", "nosuchbr0"))
    assert "nosuchbr0" in error["msg"]
    runtime.configure(timeouts={"ovs": 1})
    error = runtime.fails(50, "STATUS", runtime.netconf("1.1.0", bridge),
                          env={"OVS_RUNDIR": str(runtime.root)})
    assert "Open vSwitch" in error["msg"]


def test_add_to_a_missing_bridge_asks_to_try_again(runtime, bridge, container):
    error = runtime.fails(11, "ADD", runtime.netconf("1.0.0", "nosuchbr0", vlan=22), container)
    assert "nosuchbr0" in error["msg"]


@VERSIONS
def test_version_command(runtime, version):
    reply = runtime.ok("VERSION", {"cniVersion": version})
    assert reply.body == {"cniVersion": version, "supportedVersions": list(SUPPORTED)}


def test_netns_of_another_process_is_refused(runtime, bridge, container):
    """CNI_NETNS must be the container's: here it is the host's (PID 1)."""
    error = runtime.fails(4, "ADD", runtime.netconf("1.0.0", bridge, vlan=22), container,
                          env={"CNI_NETNS": "/proc/1/ns/net"})
    assert "CNI_NETNS" in error["msg"] and f"/proc/{container.pid}/ns/net" in error["details"]
    assert our_ports(bridge) == {}


@pytest.mark.parametrize("container_id", ["f" * 64, "containerd-sandbox-1"])
def test_a_container_docker_does_not_know_goes_by_its_namespace_never_the_hosts(
        runtime, bridge, container_id):
    """Not Docker's: the netns plumber takes CNI_NETNS, and refuses the host's own."""
    error = runtime.fails(4, "ADD", runtime.netconf("1.0.0", bridge, vlan=22),
                          env={"CNI_CONTAINERID": container_id,
                               "CNI_NETNS": f"/proc/{os.getpid()}/ns/net"})
    assert "is the host's own network namespace" in error["msg"]
    assert our_ports(bridge) == {}


def test_a_stopped_docker_container_is_unknown(runtime, bridge, container):
    hostnet.stop_container(container.id)
    error = runtime.fails(3, "ADD", runtime.netconf("1.0.0", bridge, vlan=22), container)
    assert "CNI_CONTAINERID" in error["msg"] and "not running" in error["msg"]


def test_a_bad_network_config_fails_cleanly(scope, runtime, bridge, container):
    """The one bad-input case here, proving the wiring with real OVS, Docker and pipework:
    code 7, one error document, nothing made. Every other bad input is in the unit tier
    (tests/unit/test_bad_input.py, the same entry point with no daemon, and the parsers'
    own tables)."""
    before = scope.leaks()
    conf = runtime.netconf("1.0.0", bridge, vlan=5000)
    error = runtime.fails(7, "ADD", conf, container, args=pod_args(NS, "web", container.id))
    assert "'vlan'" in error["msg"] and "\n" not in error["msg"], error
    assert scope.leaks() == before
    assert our_ports(bridge) == {} and leases(runtime) == []


def test_two_addresses_for_one_interface_are_an_unsupported_field(runtime, bridge, container):
    conf = runtime.netconf("1.0.0", bridge, vlan=22,
                           runtimeConfig={"ips": ["10.97.0.5/24", "10.97.0.6/24"]})
    error = runtime.fails(2, "ADD", conf, container)
    assert "runtimeConfig.ips" in error["msg"] and "10.97.0.6/24" in error["msg"]


def test_ipam_plugin_missing_from_cni_path(runtime, bridge, container):
    conf = runtime.netconf("1.0.0", bridge, vlan=22, ipam={"type": "no-such-ipam"})
    error = runtime.fails(7, "ADD", conf, container)
    assert "no-such-ipam" in error["msg"]


def test_stdout_holds_only_the_result(runtime, bridge, container):
    """Debug logging on: everything still goes to the log file, stdout stays one document."""
    runtime.configure(log={"file": runtime.log_file, "debug": True})
    conf = runtime.netconf("1.0.0", bridge, vlan=22)
    reply: Reply = runtime.ok("ADD", conf, container)
    assert reply.stdout.count("\n") == 1 and reply.body is not None
    with open(runtime.log_file, encoding="utf-8") as handle:
        assert "pipework" in handle.read()
    runtime.ok("DEL", conf, container)
    assert_gone(runtime, bridge, container)


def test_a_network_config_cannot_make_root_write_a_file(runtime, bridge, container, tmp_path):
    """The issue's repro: a CHECK whose network config names a log file. Nothing is written,
    and the error names the key."""
    victim = tmp_path / "victim"
    conf = runtime.netconf("1.0.0", bridge, vlan=22, vlanpipe={"log": {"file": str(victim)}})
    error = runtime.fails(7, "CHECK", conf, env={"CNI_CONTAINERID": "abc", "CNI_NETNS": "/x"})
    assert "'vlanpipe.log'" in error["msg"] and "node-level setting" in error["msg"]
    assert not victim.exists()
    hostile = runtime.netconf("1.0.0", bridge, vlan=22, **{"$(id>/tmp/x)": 1})
    runtime.ok("ADD", hostile, container)
    logged = [r for r in runtime.log_records() if r["command"] == "cni-add"][-1]
    assert any("unknown key '$(id>/tmp/x)' ignored" == w for w in logged["warnings"])
    runtime.ok("DEL", hostile, container)
    assert_gone(runtime, bridge, container)


def test_a_pod_cannot_take_an_address_outside_the_pool_or_one_already_held(runtime, bridge,
                                                                          make_container):
    first, second = make_container("a"), make_container("b")
    conf = runtime.netconf("1.0.0", bridge, vlan=22, runtimeConfig={"ips": ["10.97.0.9/24"]})
    add(runtime, conf, first, pod="a")
    error = runtime.fails(1002, "ADD", conf, second, args=pod_args(NS, "b", second.id))
    assert "requested address 10.97.0.9 of network pods is held by pod default/a" in error["msg"]
    outside = runtime.netconf("1.0.0", bridge, vlan=22,
                              runtimeConfig={"ips": ["192.168.1.1/24"]})
    error = runtime.fails(7, "ADD", outside, second, args=pod_args(NS, "b", second.id))
    assert "is outside subnet 10.97.0.0/24" in error["msg"]
    assert leases(runtime) == ["10.97.0.9"]
    runtime.ok("DEL", conf, first)
    assert_gone(runtime, bridge, first)


def test_vlans_and_bridges_outside_the_nodes_allow_lists_are_refused(runtime, bridge, container):
    runtime.configure(cni={"bridges": [bridge], "vlans": ["20-29"], "ipam": []})
    for conf, code, needle in [
            (runtime.netconf("1.0.0", bridge, vlan=30), 7, "'vlan' = 30"),
            (runtime.netconf("1.0.0", bridge, args={"cni": {"vlan": 31}}), 7, "VLAN 31"),
            (runtime.netconf("1.0.0", bridge, vlan={"rule": "pod-name-prefix"}), 7,
             "VLAN 30 (from the network config)"),  # the pod 30-web's, by the network's rule
            (runtime.netconf("1.0.0", bridge, vlan={"rule": "namespace-map",
                                                    "namespaces": {NS: 40}}), 7, "VLAN 40"),
            ({**runtime.netconf("1.0.0", bridge, vlan=22), "bridge": "br-int"}, 7, "br-int"),
            (runtime.netconf("1.0.0", bridge, vlan=22,
                             ipam={"type": "host-local", "subnet": "10.96.0.0/24"}), 7,
             "'ipam.type' = 'host-local' is not an IPAM plugin this node lets")]:
        error = runtime.fails(code, "ADD", conf, container, args=pod_args(NS, "30-web",
                                                                          container.id))
        assert needle in error["msg"], error
    assert our_ports(bridge) == {} and leases(runtime) == []
