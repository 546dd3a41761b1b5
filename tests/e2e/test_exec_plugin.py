"""The exec plugin end to end: called as the kubelet calls it, against real OVS, Docker, pipework."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from plugin import names
from tests.support import hostnet, pluginstate
from tests.support.pluginstate import our_ports
from tests.support.kubelet import interpreter, make_plugin, status_ip

SUBNET = "10.99.0.0/24"
NS = "default"


@pytest.fixture
def plugin(tmp_path, bridge):
    """The plugin installed as DIR/myplugin/myplugin with its config beside it.

    One network for every VLAN: pods on VLANs 22 and 23 share a subnet, so a
    failed ping across them is VLAN isolation, not a missing route.
    """
    return make_plugin(str(tmp_path), base_config(bridge))


def base_config(bridge: str, **extra):
    return {"bridge": bridge, "status": {"report": "vlan"},
            "networks": [{"name": "pods", "vlans": "all", "subnet": SUBNET}], **extra}


def leases(plugin) -> list[str]:
    return pluginstate.leases(plugin.state_dir)


def test_article_scenario(plugin, bridge, make_container):
    """Pods 22-my-nginx x2 and one on VLAN 23: tags, eth1 addresses, pings, clean teardown."""
    pods = {"22-my-nginx-a": make_container("a"), "22-my-nginx-b": make_container("b"),
            "23-my-nginx-c": make_container("c")}
    plugin.ok("init")
    for pod, c in pods.items():
        assert plugin.ok("setup", NS, pod, c.id).output == ""
    ports = our_ports(bridge)
    ips = {}
    for pod, c in pods.items():
        port = ports[names.host_veth(c.id, "eth1")]
        assert port["tag"] == int(pod.split("-")[0])
        assert port["external_ids"]["owner"] == "vlanpipe"
        assert port["external_ids"]["vlanpipe-infra-id"] == c.id
        assert port["external_ids"]["vlanpipe-pod"] == pod
        ips[pod] = status_ip(plugin.ok("status", NS, pod, c.id).output)
        assert hostnet.container_addresses(c.id, "eth1") == [f"{ips[pod]}/24"]
    assert len(set(ips.values())) == 3
    a, b, c = pods.values()
    assert hostnet.ping(a.id, ips["22-my-nginx-b"])
    assert hostnet.ping(b.id, ips["22-my-nginx-a"])
    assert not hostnet.ping(a.id, ips["23-my-nginx-c"])
    assert not hostnet.ping(c.id, ips["22-my-nginx-a"])
    for pod, c in pods.items():
        plugin.ok("teardown", NS, pod, c.id)
        assert hostnet.container_addresses(c.id, "eth1") == []
    assert our_ports(bridge) == {}
    assert leases(plugin) == []
    records = plugin.log_records()
    setups = [r for r in records if r["command"] == "setup"]
    assert {r["vlan"] for r in setups} == {22, 23} and all(r["outcome"] == "ok" for r in setups)
    assert all({"pipework", "ovs-vsctl", "docker"} <= set(r["phases_ms"]) for r in setups)


def test_setup_twice_changes_nothing(scope, plugin, bridge, container):
    plugin.ok("init")
    plugin.ok("setup", NS, "22-web", container.id)
    before = (our_ports(bridge), hostnet.container_addresses(container.id, "eth1"),
              scope.leaks(), leases(plugin))
    plugin.ok("setup", NS, "22-web", container.id)
    after = (our_ports(bridge), hostnet.container_addresses(container.id, "eth1"),
             scope.leaks(), leases(plugin))
    assert after == before
    assert plugin.log_records()[-1]["result"] == "already attached"
    plugin.ok("teardown", NS, "22-web", container.id)


def test_init_is_idempotent_and_sets_datapath(tmp_path, daemons_ready):
    name = "ti" + os.urandom(3).hex()
    plugin = make_plugin(str(tmp_path), {"bridge": name})
    try:
        plugin.ok("init")
        plugin.ok("init")
        bridges = hostnet.ovs_list("Bridge", ["name", "datapath_type"])
        assert {"name": name, "datapath_type": "netdev"} in bridges
    finally:
        hostnet.delete_bridge(name)


def test_init_fixes_the_mtu_of_its_bridges_and_of_those_networks_may_name(tmp_path, bridge):
    """bridge_mtu becomes the mtu_request of the bridge init makes and of an existing one
    that cni.bridges lets network configs name, and the interfaces take it."""
    name = "ti" + os.urandom(3).hex()
    plugin = make_plugin(str(tmp_path), {"bridge": name, "bridge_mtu": 1400,
                                         "cni": {"bridges": [name, bridge]}})
    try:
        plugin.ok("init")
        plugin.ok("init")
        for each in (name, bridge):
            assert hostnet.ovs("get", "Interface", each, "mtu_request").strip() == "1400"
            assert hostnet.wait_until(lambda: hostnet.ovs("get", "Interface", each, "mtu")
                                      .strip() == "1400", timeout=10)
    finally:
        hostnet.delete_bridge(name)


def test_teardown_after_container_removed_and_twice(plugin, bridge, make_container):
    c = make_container()
    plugin.ok("setup", NS, "22-gone", c.id)
    hostnet.remove_container(c.id)
    plugin.ok("teardown", NS, "22-gone", c.id)
    plugin.ok("teardown", NS, "22-gone", c.id)
    assert our_ports(bridge) == {} and leases(plugin) == []
    assert names.host_veth(c.id, "eth1") not in hostnet.host_links()


def test_teardown_of_stopped_container(plugin, bridge, container):
    plugin.ok("setup", NS, "22-stopped", container.id)
    hostnet.stop_container(container.id)
    plugin.ok("teardown", NS, "22-stopped", container.id)
    assert our_ports(bridge) == {} and leases(plugin) == []


def test_status_prints_nothing_when_docker_reports_the_ip(tmp_path, bridge, container):
    plugin = make_plugin(str(tmp_path), {**base_config(bridge), "status": {"report": "docker"}})
    plugin.ok("setup", NS, "22-quiet", container.id)
    assert plugin.ok("status", NS, "22-quiet", container.id).output == ""
    plugin.ok("teardown", NS, "22-quiet", container.id)
    assert plugin.ok("status", NS, "22-quiet", container.id).output == ""


def test_status_reads_no_yaml_while_the_config_is_unchanged_and_sees_an_edit_at_once(
        tmp_path, bridge, container):
    """The kubelet's most frequent call: with config.yaml as a call last validated it,
    status imports neither PyYAML nor the plugin's dataclasses, Docker SDK or plumbum."""
    plugin = make_plugin(str(tmp_path), base_config(bridge))
    plugin.ok("setup", NS, "22-fast", container.id)
    proc = subprocess.run([interpreter(plugin.path), "-I", "-X", "importtime", plugin.path, "status", NS,
                           "22-fast", container.id], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert proc.returncode == 0 and status_ip(proc.stdout), proc.stdout + proc.stderr
    assert "plugin.frontends.status" in imported  # the hook saw the plugin's own imports
    assert not imported & {"yaml", "dataclasses", "docker", "plumbum", "plugin.config.schema"}
    plugin.configure({**base_config(bridge), "status": {"report": "docker"}})
    assert plugin.ok("status", NS, "22-fast", container.id).output == ""
    plugin.ok("teardown", NS, "22-fast", container.id)


def test_stale_ports_named_like_ours_do_not_keep_their_tag(plugin, bridge, container):
    """A leftover port with our exact name, and one whose name contains ours (pipework
    2014 greps `list-ports` for a substring and then skips add-port)."""
    ours = names.host_veth(container.id, "eth1")
    longer = ours + "x"
    hostnet.ovs("add-port", bridge, ours, "tag=99", "--", "set", "Interface", ours, "type=internal")
    hostnet.ovs("add-port", bridge, longer, "tag=98", "--", "set", "Interface", longer,
                "type=internal")
    try:
        plugin.ok("setup", NS, "22-reuse", container.id)
        ports = our_ports(bridge)
        assert ports[ours]["tag"] == 22 and ports[ours]["external_ids"]["owner"] == "vlanpipe"
        assert ports[longer]["tag"] == 98, "a port the plugin does not own was changed"
        assert hostnet.container_addresses(container.id, "eth1")
        plugin.ok("teardown", NS, "22-reuse", container.id)
        assert set(our_ports(bridge)) == {longer}
    finally:
        hostnet.ovs("--if-exists", "del-port", longer)


def test_failed_pipework_rolls_back_everything(tmp_path, plugin, bridge, container):
    """pipework fails after it made the veth, the port and the netns link: all are undone."""
    fake = pluginstate.failing_ip(tmp_path / "bin")
    call = plugin("setup", NS, "22-fails", container.id,
                  env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert call.code != 0 and len(call.lines) == 1, call.output
    assert "pipework" in call.output
    assert our_ports(bridge) == {}
    assert leases(plugin) == []
    assert hostnet.container_addresses(container.id, "eth1") == []
    assert plugin.ok("status", NS, "22-fails", container.id).output == ""


def test_a_bad_pod_name_fails_cleanly(scope, plugin, bridge, container):
    """The one bad-input case here, proving the wiring with real OVS, Docker and pipework:
    the reference plugin's defect (no VLAN prefix leaked a veth on every kubelet retry).
    Every other bad input is in the unit tier (tests/unit/test_bad_input.py, the same entry
    point with no daemon, and the validators' own tables)."""
    assert_fails_cleanly(scope, plugin, bridge, ("setup", NS, "nginx-abc", container.id),
                         "no VLAN prefix")


def test_an_infra_id_unknown_to_docker_fails_cleanly(scope, plugin, bridge):
    assert_fails_cleanly(scope, plugin, bridge, ("setup", NS, "22-x", "f" * 64),
                         "unknown to Docker")


def test_stopped_container_fails_cleanly(scope, plugin, bridge, container):
    hostnet.stop_container(container.id)
    assert_fails_cleanly(scope, plugin, bridge, ("setup", NS, "22-x", container.id), "not running")


def test_dockerd_down_fails_cleanly(scope, tmp_path, bridge, container):
    plugin = make_plugin(str(tmp_path), base_config(bridge, docker_url=f"unix://{tmp_path}/no.sock"))
    assert_fails_cleanly(scope, plugin, bridge, ("setup", NS, "22-x", container.id), "Docker does not answer")


def test_pipework_missing_fails_cleanly(scope, tmp_path, bridge, container):
    plugin = make_plugin(str(tmp_path), base_config(bridge, pipework=str(tmp_path / "pipework")))
    assert_fails_cleanly(scope, plugin, bridge, ("setup", NS, "22-x", container.id), "pipework")


def test_open_vswitch_down_is_an_error_in_bounded_time(tmp_path, bridge, container):
    """OVS_RUNDIR points ovs-vsctl at a folder with no database socket: OVS is 'down'."""
    plugin = make_plugin(str(tmp_path), base_config(bridge, timeouts={"ovs": 2}))
    env = {"OVS_RUNDIR": str(tmp_path)}
    for argv in (("init",), ("setup", NS, "22-x", container.id)):
        call = plugin(*argv, env=env, timeout=30)
        assert call.code == 6 and len(call.lines) == 1, call.output
        assert "Open vSwitch" in call.output
    assert our_ports(bridge) == {} and leases(plugin) == []


def test_install_puts_an_executable_where_the_kubelet_looks(plugin):
    mode = os.stat(plugin.path).st_mode
    assert plugin.path.endswith("/myplugin/myplugin") and mode & stat.S_IXUSR


def assert_fails_cleanly(scope, plugin, bridge, argv, needle):
    before = scope.leaks()
    call = plugin(*argv)
    assert call.code != 0, call.output
    assert len(call.lines) == 1 and needle in call.output, call.output
    assert scope.leaks() == before
    assert our_ports(bridge) == {} and leases(plugin) == []


def test_setup_announces_the_pod_itself_without_arpings_second(plugin, bridge, container):
    """pipework's arping (a second's wait) resolves to `true`; the plugin sends one
    gratuitous ARP from the pod instead, so the bridge knows the pod's MAC at once, with no
    other traffic from the pod (a moved pod is found at once)."""
    plugin.ok("setup", NS, "22-a", container.id)
    shim = os.path.join(plugin.state_dir, "quiet-arping", "arping")
    assert os.path.realpath(shim) in ("/bin/true", "/usr/bin/true")
    assert "announce" in plugin.log_records()[-1]["phases_ms"]
    port = names.host_veth(container.id, "eth1")
    (row,) = [r for r in json.loads(plugin.ok("list", "--json").output) if r["port"] == port]
    learned = hostnet.run(["ovs-appctl", "fdb/show", bridge]).stdout
    ofport = hostnet.ovs("get", "Interface", port, "ofport").strip()
    assert any(line.split()[:3] == [ofport, "22", row["mac"]] for line in learned.splitlines()), \
        learned
    plugin.ok("teardown", NS, "22-a", container.id)
