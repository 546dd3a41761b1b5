"""The README's CNI examples run as written: the plain conflist through a real runtime
(containerd 1.6's `ctr run --cni`, the one on this machine), the Multus
NetworkAttachmentDefinition's config with the node config.yaml shown beside it, called as
Multus calls a delegate. Only the bridge is the test's own (`k8s_br` is the host's)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys

import yaml

from plugin import names
from tests.support import containerd as C
from tests.support import pluginstate
from tests.support import hostnet
from tests.support.cni_runtime import CNI_PATH, Runtime, pod_args, with_capabilities
from tests.support.pluginstate import our_ports

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def blocks(language: str) -> list[str]:
    """The README's fenced blocks of `language`, in order."""
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def example(language: str, marker: str) -> str:
    (found,) = [b for b in blocks(language) if marker in b]
    return found


def test_the_plain_conflist_runs_on_containerd_as_written(tmp_path, scope, bridge, image):
    conflist = json.loads(example("json", '"name": "vlan22"'))
    (plugin,) = conflist["plugins"]
    assert plugin["bridge"] == "k8s_br"
    plugin["bridge"] = bridge
    runtime = Runtime(str(tmp_path / "node"))
    runtime.netconf(conflist["cniVersion"], bridge)  # the node allows the test's bridge
    dirs = C.make_cni_dirs(str(tmp_path / "cni"))
    dirs.install("vlanpipe", source=shutil.which("vlanpipe-cni", path=os.path.dirname(
        sys.executable)))
    dirs.install("host-local", source=os.path.join(CNI_PATH, "host-local"))
    dirs.write_conflist(conflist)
    run = C.start_cni_run(dirs, env={"VLANPIPE_CONFIG": runtime.config_path}, wait=False)
    try:
        run.wait_running()  # raises if the runtime refused the ADD (a result it cannot read)
        scope.containers[run.container_id] = run.pid
        found = our_ports(bridge)[names.host_veth(run.container_id, "eth0")]
        assert found["tag"] == plugin["vlan"]
    finally:
        run.stop()
    if our_ports(bridge):  # containerd 1.6 sends no DEL for a 1.0.0 result: as a kubelet
        runtime.ok("DEL", {**plugin, "cniVersion": conflist["cniVersion"],  # would, at last
                           "name": conflist["name"]},
                   env={"CNI_CONTAINERID": run.container_id, "CNI_NETNS": ""}, ifname="eth0")
    assert our_ports(bridge) == {}


def test_the_multus_example_runs_with_the_node_config_beside_it(tmp_path, bridge, container):
    nad, pod = yaml.safe_load_all(example("yaml", "kind: NetworkAttachmentDefinition"))
    node = yaml.safe_load(example("yaml", "# /etc/vlanpipe/config.yaml"))
    conf = json.loads(nad["spec"]["config"])
    assert conf["bridge"] == "k8s_br"
    conf["bridge"] = bridge
    runtime = Runtime(str(tmp_path), node=node)
    runtime.netconf(conf["cniVersion"], bridge)  # the node allows the test's bridge
    (selection,) = json.loads(pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"])
    # Multus hands a delegate the selection's cni-args as args.cni, and its interface
    conf["args"] = {"cni": selection["cni-args"]}
    body = runtime.ok("ADD", conf, container, ifname=selection["interface"],
                      args=pod_args("default", pod["metadata"]["name"], container.id)).body
    (ip,) = body["ips"]
    network = next(n for n in node["networks"] if n["name"] == conf["vlanpipe"]["network"])
    assert ip["address"].rsplit(".", 1)[0] == network["subnet"].rsplit(".", 1)[0], ip
    port = body["interfaces"][0]["name"]
    assert our_ports(bridge)[port]["tag"] == selection["cni-args"]["vlan"]
    runtime.ok("DEL", conf, container, ifname=selection["interface"])
    assert our_ports(bridge) == {} and pluginstate.leases(runtime.state_dir) == []


def test_the_capabilities_conflist_gives_the_pod_the_mac_and_address_it_asks_for(
        tmp_path, bridge, container):
    """The README's capabilities conflist, its one plugin handed over as libcni does with
    the capability arguments Multus passes (containerd 1.6's `ctr` passes none): the pod's
    interface has the MAC and the address asked for, the address is a lease of the node's
    network, and DEL frees it."""
    conflist = json.loads(example("json", '"capabilities": {"mac": true, "ips": true}'))
    (plugin,) = conflist["plugins"]
    assert plugin["capabilities"] == {"mac": True, "ips": True}
    runtime = Runtime(str(tmp_path))  # its node config's network is `pods`, 10.97.0.0/24
    runtime.netconf(conflist["cniVersion"], bridge)  # the node allows the test's bridge
    conf = with_capabilities({**plugin, "bridge": bridge, "name": conflist["name"],
                              "cniVersion": conflist["cniVersion"]},
                             mac="0a:58:0a:61:00:63", ips=["10.97.0.99/24"])
    assert conf["runtimeConfig"] == {"mac": "0a:58:0a:61:00:63", "ips": ["10.97.0.99/24"]}
    args = pod_args("default", "web", container.id)
    body = runtime.ok("ADD", conf, container, args=args).body
    assert body["interfaces"][1]["mac"] == "0a:58:0a:61:00:63"
    assert hostnet.container_addresses(container.id, "net1") == ["10.97.0.99/24"]
    link = hostnet.in_container(container.id, "cat", "/sys/class/net/net1/address")
    assert link.stdout.strip() == "0a:58:0a:61:00:63"
    assert pluginstate.leases(runtime.state_dir) == ["10.97.0.99"]
    runtime.ok("DEL", conf, container, args=args)
    assert our_ports(bridge) == {} and pluginstate.leases(runtime.state_dir) == []
