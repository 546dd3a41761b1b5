"""The node's uplink against real interfaces: a veth pair the test makes in a network
namespace of its own (so no address of the host's is touched), the plugin's `init` and
`doctor` run inside it, with the real Open vSwitch."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from typing import Iterator

import pytest

from tests.support import hostnet
from tests.support.kubelet import Call, Plugin, make_plugin


@pytest.fixture
def netns(scope) -> Iterator[str]:
    """A network namespace of the test's own, removed with all it holds."""
    name = f"vpt{secrets.token_hex(4)}"
    scope.netns.add(f"/var/run/netns/{name}")
    hostnet.run(["ip", "netns", "add", name])
    try:
        yield name
    finally:
        hostnet.run(["ip", "netns", "del", name])


def inside(ns: str, *argv: str) -> str:
    return hostnet.run(["ip", "netns", "exec", ns, *argv]).stdout


def run_in(ns: str, plugin: Plugin, *argv: str, stderr: int = subprocess.STDOUT) -> Call:
    """The plugin as the kubelet runs it (stdout and stderr together), in the namespace `ns`."""
    env = {k: v for k, v in os.environ.items() if k != "VLANPIPE_CONFIG"}
    proc = subprocess.run(["ip", "netns", "exec", ns, plugin.path, *argv],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=stderr, text=True, timeout=120, env=env)
    return Call(proc.returncode, proc.stdout)


def test_an_uplink_with_a_host_address_and_a_link_local_one_is_refused(tmp_path, bridge,
                                                                       netns):
    """iproute2 6.1 prints `{}` for each address `scope global` filters out (here the
    link-local one): the refusal must still name the host's address and the fix."""
    inside(netns, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0p")
    inside(netns, "sysctl", "-q", "-w", "net.ipv6.conf.up0.disable_ipv6=0")
    inside(netns, "ip", "addr", "add", "192.0.2.1/24", "dev", "up0")
    inside(netns, "ip", "link", "set", "up0p", "up")
    inside(netns, "ip", "link", "set", "up0", "up")
    hostnet.wait_until(lambda: "fe80::" in inside(netns, "ip", "-6", "addr", "show", "dev",
                                                  "up0"), timeout=10)
    filtered = json.loads(inside(netns, "ip", "-j", "addr", "show", "dev", "up0",
                                 "scope", "global"))
    assert {} in filtered[0]["addr_info"], filtered  # the shape that crashed the plugin
    plugin = make_plugin(str(tmp_path), {"bridge": bridge,
                                         "uplink": {"interface": "up0", "vlans": [22]}})
    refused = run_in(netns, plugin, "init")
    assert refused.code != 0 and len(refused.lines) == 1, refused.output
    assert "uplink up0 carries the host's address 192.0.2.1/24" in refused.output, refused
    assert "move the address off up0" in refused.output and "internal" not in refused.output
    assert hostnet.run(["ovs-vsctl", "list-ports", bridge]).stdout.split() == []
    report = json.loads(run_in(netns, plugin, "doctor", "--json",
                                   stderr=subprocess.DEVNULL).output)
    (row,) = [r for r in report if r["name"] == "uplink up0"]
    assert not row["ok"] and "192.0.2.1/24" in row["detail"], row


def ports(bridge: str) -> list[str]:
    return hostnet.run(["ovs-vsctl", "list-ports", bridge]).stdout.split()


def test_init_unplugs_its_uplink_once_the_config_names_none(tmp_path, bridge, netns):
    """Removing `uplink:` from the config: the next init takes the trunk it plugged (marked
    as this node's) off the bridge and says so in its log; a port it did not mark stays."""
    inside(netns, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0p")
    plugin = make_plugin(str(tmp_path), {"bridge": bridge,
                                         "uplink": {"interface": "up0", "vlans": [22]}})
    assert run_in(netns, plugin, "init").code == 0
    hostnet.run(["ovs-vsctl", "add-port", bridge, "theirs0", "--", "set", "Interface",
                 "theirs0", "type=internal"])
    assert sorted(ports(bridge)) == ["theirs0", "up0"]
    plugin.configure({"bridge": bridge})
    done = run_in(netns, plugin, "init")
    assert done.code == 0 and done.output == "", done.output
    assert ports(bridge) == ["theirs0"]  # another's port is never touched
    assert plugin.log_records()[-1].get("unplugged_uplinks") == ["up0"]
    hostnet.run(["ovs-vsctl", "del-port", bridge, "theirs0"])
