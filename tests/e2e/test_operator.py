"""What an operator reads about the node's attachments (`list`, `doctor`) after what
operators do: rename the node, ask for a pod's MAC. Real Docker pods, pipework, Open vSwitch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import pluginstate
from tests.support.cni_runtime import Runtime, pod_args
from tests.support.kubelet import make_plugin
from tests.support.pluginstate import our_ports

NS = "default"
NETWORK = {"name": "pods", "vlans": "all", "subnet": "10.93.0.0/24"}


def doctor_row(plugin, name: str) -> dict:
    call = subprocess.run([plugin.path, "doctor", "--json"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    return {row["name"]: row for row in json.loads(call.stdout)}[name]


def test_a_renamed_node_is_told_what_happened_and_how_to_fix_it(tmp_path, bridge, container):
    """node_name names the node in its ports' marks, its leases and etcd: changed while
    pods are attached, list must not call their ports missing, and doctor says which
    name they carry and what to do."""
    plugin = make_plugin(str(tmp_path), {"bridge": bridge, "networks": [NETWORK]})
    old = plugin.node_name
    plugin.ok("setup", NS, "22-a", container.id)
    plugin.node_name = f"{old}-new"
    plugin.configure({"bridge": bridge, "networks": [NETWORK]})
    (listed,) = json.loads(plugin.ok("list", "--json").output)
    assert listed["state"] == f"marked for node {old}", listed  # not "port missing"
    row = doctor_row(plugin, "node name")
    assert not row["ok"], row
    assert f"marked for node '{old}'" in row["detail"] and f"{NS}/22-a" in row["detail"], row
    assert f"set node_name back to '{old}'" in row["fix"], row
    plugin.ok("gc")
    assert list(our_ports(bridge)) == [listed["port"]]  # gc keeps a live pod's port
    assert len(pluginstate.leases(plugin.state_dir)) == 1  # and its lease
    plugin.node_name = old
    plugin.configure({"bridge": bridge, "networks": [NETWORK]})
    assert json.loads(plugin.ok("list", "--json").output)[0]["state"] == "ok"
    row = doctor_row(plugin, "node name")
    assert row["ok"] and old in row["detail"], row
    plugin.ok("teardown", NS, "22-a", container.id)
    assert our_ports(bridge) == {} and pluginstate.leases(plugin.state_dir) == []


def test_list_shows_the_mac_the_pod_asked_for(tmp_path, bridge, container):
    runtime = Runtime(str(tmp_path))
    conf = runtime.netconf("1.0.0", bridge, vlan=22, runtimeConfig={"mac": "02:11:22:33:44:55"})
    body = runtime.ok("ADD", conf, container, args=pod_args(NS, "web", container.id)).body
    assert body["interfaces"][1]["mac"] == "02:11:22:33:44:55"
    listed = subprocess.run([sys.executable, "-m", "plugin.frontends.exec_cli", "list",
                             "--json"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "VLANPIPE_CONFIG": runtime.config_path})
    (row,) = json.loads(listed.stdout)
    assert row["mac"] == "02:11:22:33:44:55", row
    runtime.ok("DEL", conf, container)
    assert our_ports(bridge) == {}
