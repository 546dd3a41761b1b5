"""IPv6 and dual-stack pods, end to end: real Open vSwitch, Docker, pipework (the registry's
copy) and Debian's host-local. Docker turns IPv6 off inside its containers; the plugin
turns it on for the pod's VLAN interface only, without duplicate address detection."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.support import hostnet, pluginstate
from tests.support.cni_runtime import Runtime, pod_args
from tests.support.kubelet import make_plugin, status_ip
from tests.support.pluginstate import our_ports

NS = "default"
V6 = {"name": "pods6", "vlans": "all", "subnet": "fd00:22::/64"}
DUAL = {"name": "dual", "vlans": "all", "subnets": ["10.95.0.0/24", "fd00:95::/64"]}


def config(bridge: str, network: dict, **extra) -> dict:
    return {"bridge": bridge, "status": {"report": "vlan"}, "networks": [network], **extra}


def addresses(container, ifname: str = "eth1") -> list[str]:
    return hostnet.container_addresses(container.id, ifname)


def tentative(container, ifname: str = "eth1") -> bool:
    out = hostnet.in_netns(container.pid, "ip", "-6", "addr", "show", "dev", ifname).stdout
    return "tentative" in out


def ipv6_off(container, ifname: str) -> str:
    return hostnet.in_netns(container.pid, "sysctl", "-n",
                            f"net.ipv6.conf.{ifname}.disable_ipv6").stdout.strip()


def test_an_ipv6_only_vlan(tmp_path, bridge, make_container):
    plugin = make_plugin(str(tmp_path), config(bridge, V6))
    a, b, c = make_container("a"), make_container("b"), make_container("c")
    before = {k: hostnet.in_netns(a.pid, "sysctl", "-n", f"net.ipv6.conf.default.{k}").stdout
              for k in ("disable_ipv6", "accept_dad")}
    for pod, container in (("22-a", a), ("22-b", b), ("23-c", c)):
        plugin.ok("setup", NS, pod, container.id)
        assert not tentative(container), pod  # usable as setup returns: no DAD to wait for
    ips = {pod: status_ip(plugin.ok("status", NS, pod, cont.id).output)
           for pod, cont in (("22-a", a), ("22-b", b), ("23-c", c))}
    assert all(ip.startswith("fd00:22::") for ip in ips.values()) and len(set(ips.values())) == 3
    assert addresses(a) == [f"{ips['22-a']}/64"]
    assert ipv6_off(a, "eth0") == "1"  # Docker's interface keeps IPv6 as Docker set it
    after = {k: hostnet.in_netns(a.pid, "sysctl", "-n", f"net.ipv6.conf.default.{k}").stdout
             for k in ("disable_ipv6", "accept_dad")}
    assert after == before  # the pod's defaults are back
    assert hostnet.ping(a.id, ips["22-b"]) and hostnet.ping(b.id, ips["22-a"])
    assert not hostnet.ping(a.id, ips["23-c"]) and not hostnet.ping(c.id, ips["22-a"])
    mac = json.loads(plugin.ok("list", "--json").output)
    assert len({r["mac"] for r in mac}) == 3
    for pod, container in (("22-a", a), ("22-b", b), ("23-c", c)):
        plugin.ok("teardown", NS, pod, container.id)
        assert addresses(container) == []
    assert our_ports(bridge) == {} and pluginstate.leases(plugin.state_dir) == []


def test_a_dual_stack_vlan(tmp_path, bridge, make_container):
    plugin = make_plugin(str(tmp_path), config(bridge, DUAL))
    a, b = make_container("a"), make_container("b")
    for pod, container in (("22-a", a), ("22-b", b)):
        plugin.ok("setup", NS, pod, container.id)
        assert not tentative(container), pod
    found = {name: addresses(c) for name, c in (("a", a), ("b", b))}
    for name, (v4, v6) in found.items():
        assert v4.startswith("10.95.0.") and v6.startswith("fd00:95::"), found
    assert status_ip(plugin.ok("status", NS, "22-a", a.id).output) == found["a"][0].split("/")[0]
    for target in found["b"]:
        assert hostnet.ping(a.id, target.split("/")[0])
    rows = json.loads(plugin.ok("list", "--json").output)
    assert sorted(r["address"] for r in rows) == sorted(",".join(v) for v in found.values())
    assert len(pluginstate.leases(plugin.state_dir)) == 4  # one per family per pod
    for pod, container in (("22-a", a), ("22-b", b)):
        plugin.ok("teardown", NS, pod, container.id)
        assert addresses(container) == []
    assert our_ports(bridge) == {} and pluginstate.leases(plugin.state_dir) == []


@pytest.mark.parametrize("network", [
    {"name": "dual", "vlans": "all", "subnets": [
        {"subnet": "10.95.0.0/24", "gateway": "10.95.0.1"},
        {"subnet": "fd00:95::/64", "gateway": "fd00:95::1", "default_route": True}],
     "routes": [{"dst": "fd00:200::/48", "gw": "fd00:95::fe"}]},
    {"name": "pods6", "vlans": "all", "subnet": "fd00:22::/64", "gateway": "fd00:22::1",
     "default_route": True, "routes": [{"dst": "fd00:200::/48", "gw": "fd00:22::fe"}]},
])
def test_ipv6_gateway_and_routes_inside_the_pod(tmp_path, bridge, container, network):
    plugin = make_plugin(str(tmp_path), config(bridge, network))
    plugin.ok("setup", NS, "22-a", container.id)
    routes = hostnet.in_netns(container.pid, "ip", "-6", "route", "show", "dev", "eth1").stdout
    gateway = (network.get("gateway") or network["subnets"][1]["gateway"])
    assert f"::/1 via {gateway}" in routes and f"8000::/1 via {gateway}" in routes, routes
    assert f"fd00:200::/48 via {network['routes'][0]['gw']}" in routes, routes
    plugin.ok("teardown", NS, "22-a", container.id)
    assert our_ports(bridge) == {} and pluginstate.leases(plugin.state_dir) == []


def test_the_pipework_generation_decides_the_argument_shape(tmp_path, bridge, container):
    """Upstream's pipework needs -a 6 for an IPv6 address; the registry's copy takes -a for a
    container name. A stand-in that prints upstream's usage records the arguments it gets,
    then runs the installed copy without -a 6."""
    calls = tmp_path / "calls"
    stand_in = tmp_path / "pipework"
    stand_in.write_text(f"""#!{sys.executable} -I
import os, sys
if len(sys.argv) == 1:
    print("Syntax:")
    print("pipework <hostinterface> [-i containerinterface] [-l localinterfacename] "
          "[-a addressfamily] <guest> <ipaddr>/<subnet>[@default_gateway] [macaddr][@vlan]")
    sys.exit(1)
args = sys.argv[1:]
with open({str(calls)!r}, "a") as log:
    log.write(" ".join(args) + "\\n")
if "-a" in args:
    del args[args.index("-a"):args.index("-a") + 2]
os.execv("/usr/local/bin/pipework", ["pipework", *args])
""")
    stand_in.chmod(0o755)
    plugin = make_plugin(str(tmp_path), config(bridge, V6, pipework=str(stand_in)))
    plugin.ok("setup", NS, "22-a", container.id)
    (line,) = calls.read_text().splitlines()
    words = line.split()
    assert words[5:7] == ["-a", "6"] and words[-2].startswith("fd00:22::")
    plugin.ok("teardown", NS, "22-a", container.id)
    # Upstream's real script gives the address through `busybox ipcalc` where busybox is
    # installed (host-setup installs it), which cannot parse IPv6: doctor says so.
    check = pipework_check(plugin)
    assert not check["ok"] and "busybox ipcalc" in check["detail"] and "pods6" in check["detail"]
    plugin.configure(config(bridge, DUAL, pipework=str(stand_in)))  # pipework gets IPv4 only
    assert pipework_check(plugin)["ok"] and doctor_generation(plugin) == "upstream"
    assert doctor_generation(make_plugin(str(tmp_path / "2014"), config(bridge, V6))) == "2014"


def pipework_check(plugin) -> dict:
    """doctor's pipework check (a failed check adds an error line after the JSON)."""
    checks, _ = json.JSONDecoder().raw_decode(plugin("doctor", "--json").output)
    return {c["name"]: c for c in checks}["pipework"]


def doctor_generation(plugin) -> str:
    return "upstream" if "upstream" in pipework_check(plugin)["detail"] else "2014"


@pytest.mark.parametrize("network,needle", [
    ({"name": "n", "subnet": "fd00::/127", "gateway": "fd00::1", "exclude": ["fd00::"]},
     "key 'networks[0].subnet' = 'fd00::/127' of network 'n' has no address left"),
    ({"name": "n", "subnet": "fd00::/64", "gateway": "fd01::1"},
     "key 'networks[0].gateway' = 'fd01::1' is outside subnet fd00::/64"),
    ({"name": "n", "subnets": ["10.0.0.0/24", "10.1.0.0/24"]},
     "key 'networks[0].subnets' = ['10.0.0.0/24', '10.1.0.0/24'] has two subnets of one family"),
    ({"name": "n", "subnet": "fd00::/64", "range": {"start": "fd00::1",
                                                     "end": "fd00::1:0:0"}},
     "key 'networks[0].range.end' = 'fd00::1:0:0' is not in the same /96"),
    ({"name": "n", "subnets": ["fd00::/64"], "gateway": "fd00::1"},
     "key 'networks[0].gateway' = 'fd00::1' goes inside each item"),
])
def test_ipv6_config_errors_name_file_key_and_value(tmp_path, bridge, container, network,
                                                    needle):
    plugin = make_plugin(str(tmp_path), config(bridge, network))
    call = plugin("setup", NS, "22-a", container.id)
    assert call.code == 3 and len(call.lines) == 1 and needle in call.output, call.output
    assert plugin.config_path in call.output and our_ports(bridge) == {}


@pytest.fixture
def runtime(tmp_path) -> Runtime:
    return Runtime(str(tmp_path), node={"networks": [DUAL]})


def test_cni_dual_stack_with_vlanpipes_allocators_and_one_address_asked_per_family(
        runtime, bridge, container):
    conf = runtime.netconf("1.0.0", bridge, vlan=22,
                           runtimeConfig={"ips": ["10.95.0.50/24", "fd00:95::50/64"]})
    body = runtime.ok("ADD", conf, container, args=pod_args(NS, "web", container.id)).body
    assert [ip["address"] for ip in body["ips"]] == ["10.95.0.50/24", "fd00:95::50/64"]
    assert {ip["interface"] for ip in body["ips"]} == {1}
    assert sorted(addresses(container, "net1")) == ["10.95.0.50/24", "fd00:95::50/64"]
    runtime.ok("CHECK", {**conf, "prevResult": body}, container)
    runtime.ok("DEL", conf, container)
    assert addresses(container, "net1") == [] and pluginstate.leases(runtime.state_dir) == []


@pytest.mark.parametrize("version", ["0.3.1", "1.1.0"])
def test_cni_dual_stack_with_host_local(runtime, bridge, container, version):
    conf = runtime.netconf(version, bridge, vlan=22, ipam={"type": "host-local", "ranges": [
        [{"subnet": "10.96.0.0/24"}], [{"subnet": "fd00:96::/64"}]]})
    body = runtime.ok("ADD", conf, container, args=pod_args(NS, "web", container.id)).body
    v4, v6 = (ip["address"] for ip in body["ips"])
    assert v4.startswith("10.96.0.") and v6.startswith("fd00:96::")
    assert [(ip["interface"], ip.get("gateway")) for ip in body["ips"]] == [
        (1, "10.96.0.1"), (1, "fd00:96::1")]  # host-local's gateways, on the pod's interface
    if version == "0.3.1":
        assert [ip["version"] for ip in body["ips"]] == ["4", "6"]
    assert sorted(addresses(container, "net1")) == sorted([v4, v6])
    assert not tentative(container, "net1")
    runtime.ok("DEL", conf, container)
    data = os.path.join(runtime.ipam_data_dir, "vlan-net")
    assert not [f for f in os.listdir(data) if f[0].isdigit() or ":" in f]
    assert our_ports(bridge) == {}
