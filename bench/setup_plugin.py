"""Install the plugin for the benchmark the way an operator would.

`vlanpipe install --dir DIR --name myplugin` writes DIR/myplugin/myplugin; its
config.yaml beside it gives VLAN 22 one static address (the address every
contender uses, as in the reference plugin) and VLAN 23 a node-local pool
for the scale and burst pods, which need one address each. The card floor
runs with the interpreter that launcher names.

The conflict probe is off in the plugin measured against the card floors (the
card has no probe: equal work) and on, with its default wait, in a second
install, `plugin+probe`: the difference between the two is the probe's cost.
"""

from __future__ import annotations

import os
from typing import Any

from bench.contenders import Target
from tests.support.kubelet import Plugin, make_plugin

POOL_VLAN = 23
POOL_SUBNET = "10.78.0.0/20"  # 4094 addresses: 250 fill pods, 32 burst pods and then some


def config(target: Target, probe: bool = False) -> dict[str, Any]:
    return {
        "bridge": target.bridge,
        "conflict_probe": {"enabled": probe},
        "status": {"report": "vlan"},
        "networks": [
            {"name": "bench-fixed", "vlans": [target.vlan], "allocator": "static",
             "address": target.address},
            {"name": "bench-pool", "vlans": [POOL_VLAN], "subnet": POOL_SUBNET},
        ],
    }


def install(root: str, target: Target, probe: bool = False) -> Plugin:
    plugin = make_plugin(os.path.join(root, "plugin+probe" if probe else "plugin"),
                         config(target, probe))
    plugin.ok("init")
    return plugin
