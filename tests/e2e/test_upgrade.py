"""A node upgraded in place from the first release, with pods attached.

The first release marked ports with the keys of today's `Marks` (fewer of them) and kept
leases in today's format; its records were `<state_dir>/attachments/<id>.json`, a bare list
with one `address` and `gateway` per attachment. A pod it set up is made here by setting the
pod up with today's plugin and putting its state back in the first release's form.
"""

from __future__ import annotations

import json
import os

import pytest

from plugin import names
from plugin.core import recordfile
from tests.support import hostnet
from tests.support.kubelet import make_plugin, status_ip

from .test_exec_plugin import NS, base_config, leases, our_ports

FIRST_RELEASE_MARKS = {"owner", "vlanpipe-namespace", "vlanpipe-pod", "vlanpipe-infra-id",
                       "vlanpipe-interface", "vlanpipe-address", "vlanpipe-network",
                       "vlanpipe-node"}


@pytest.fixture
def plugin(tmp_path, bridge):
    return make_plugin(str(tmp_path), base_config(bridge))


def as_first_release(plugin, bridge: str, infra_id: str) -> str:
    """Rewrite the pod's record and port marks as the first release left them; the record's
    path."""
    with open(recordfile.path(plugin.state_dir, infra_id), encoding="utf-8") as handle:
        body = json.load(handle)
    os.unlink(recordfile.path(plugin.state_dir, infra_id))
    legacy = [{**{k: v for k, v in item.items()
                  if k not in ("addresses", "gateways", "cni_network", "plumber", "netns",
                               "netns_id", "port_security", "link_locals", "pairs", "trunk",
                               "bandwidth")},
               "address": item["addresses"][0], "gateway": item["gateways"][0]}
              for item in body["attachments"]]
    path = os.path.join(recordfile.directory(plugin.state_dir), f"{infra_id}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(legacy, handle)
    port = names.host_veth(infra_id, "eth1")
    for key in set(our_ports(bridge)[port]["external_ids"]) - FIRST_RELEASE_MARKS:
        hostnet.ovs("remove", "Port", port, "external_ids", key)
    return path


def test_a_first_release_pod_is_reported_listed_and_torn_down(plugin, bridge, container):
    plugin.ok("setup", NS, "22-old", container.id)
    address = hostnet.container_addresses(container.id, "eth1")
    legacy = as_first_release(plugin, bridge, container.id)
    assert status_ip(plugin.ok("status", NS, "22-old", container.id).output) == \
        address[0].split("/")[0]
    [row] = json.loads(plugin.ok("list", "--json").output)
    assert (row["pod"], row["state"], row["vlan"]) == ("22-old", "ok", 22)
    checks, _ = json.JSONDecoder().raw_decode(plugin("doctor", "--json").output)
    records = {c["name"]: c for c in checks}["records"]
    assert records["ok"] and records["detail"] == "1 attachments of 1 pods recorded", records
    plugin.ok("teardown", NS, "22-old", container.id)
    assert our_ports(bridge) == {} and leases(plugin) == [] and not os.path.exists(legacy)
    assert hostnet.container_addresses(container.id, "eth1") == []
    assert names.host_veth(container.id, "eth1") not in hostnet.host_links()


def test_gc_collects_a_first_release_pod_whose_container_is_gone(plugin, bridge,
                                                                 make_container):
    gone = make_container("gone")
    plugin.ok("setup", NS, "22-gone", gone.id)
    legacy = as_first_release(plugin, bridge, gone.id)
    hostnet.remove_container(gone.id)
    assert "22-gone" in plugin.ok("gc").output
    assert our_ports(bridge) == {} and leases(plugin) == [] and not os.path.exists(legacy)


def test_init_guards_a_first_release_pod_that_doctor_named_unguarded(plugin, bridge,
                                                                     container):
    """Issue 20, upgrade: a pod of a release without port security has no rules and its
    bridge fails open. doctor names it and the bridge; init (its reconcile) installs the
    rules its record asks for with its port's OpenFlow number and makes the bridge fail
    closed; doctor then passes both rows; a second init changes nothing."""
    from pipework_wrapper.ofctl import Ofctl
    from plugin.core import flows, rules
    from plugin.core.records import RecordStore

    plugin.ok("setup", NS, "22-old", container.id)
    as_first_release(plugin, bridge, container.id)
    port = names.host_veth(container.id, "eth1")
    ofctl = Ofctl(5)
    hostnet.run(["ovs-ofctl", "--timeout=5", "del-flows", bridge,
                 f"cookie={flows.PREFIX:#x}/{flows.MASK:#x}"])  # as the old release left it
    before = doctor_rows(plugin)
    assert not before["pods guarded"]["ok"] and f"{NS}/22-old eth1" in \
        before["pods guarded"]["detail"], before["pods guarded"]
    assert not before[f"bridge {bridge}"]["ok"] and "standalone" in \
        before[f"bridge {bridge}"]["detail"]
    plugin.ok("init")
    [record] = RecordStore(plugin.state_dir).load(container.id)
    number = int(hostnet.ovs("get", "Interface", port, "ofport"))
    guard = flows.guard_of(record, number, True)
    assert guard is not None and record.port_security == ""
    assert rules.same(flows.guard_rules(guard), ofctl.dump(bridge, flows.cookie(port)))
    after = doctor_rows(plugin)
    assert after["pods guarded"]["ok"] and after[f"bridge {bridge}"]["ok"], after
    assert last_init(plugin)["reconciled"] == [
        f"bridge {bridge}: fail_mode secure (was standalone), default rules installed",
        f"{NS}/22-old eth1 (port {port}): guard rules installed"]
    plugin.ok("init")
    assert "reconciled" not in last_init(plugin)
    plugin.ok("teardown", NS, "22-old", container.id)
    assert our_ports(bridge) == {} and leases(plugin) == []


def doctor_rows(plugin) -> dict[str, dict]:
    checks, _ = json.JSONDecoder().raw_decode(plugin("doctor", "--json").output)
    return {c["name"]: c for c in checks}


def last_init(plugin) -> dict:
    return [r for r in plugin.log_records() if r["command"] == "init"][-1]
