"""What an operator reads about the node's attachments (`list`, `doctor`) after what
operators do: rename the node, ask for a pod's MAC. Real Docker pods, pipework, Open vSwitch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.cni_runtime import Runtime, pod_args
from tests.support.pluginstate import our_ports

NS = "default"


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
