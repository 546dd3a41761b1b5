"""The attachment identity in each of its stored shapes: record files, OVSDB marks, lease
records and `list --json` keep the keys they have always had, so records, ports and leases
made by earlier releases still read, and tools reading the JSON see no change."""

from __future__ import annotations

import ipaddress
import json

import pytest

from plugin import identity
from plugin.core import marks
from plugin.core.records import Attachment, RecordStore
from plugin.errors import InputError
from plugin.identity import Identity
from plugin.ipam import leaserecord
from plugin.ops.listing import Row, State

ID = "c" * 64
WHO = Identity("team-a", "22-web", ID, "net1")

# An attachment as the record file has held it since version 1 (before `Identity`).
STORED = {"namespace": "team-a", "pod": "22-web", "infra_id": ID, "interface": "net1",
          "bridge": "k8s_br", "port": "vp0123456789ab", "vlan": 22, "network": "pods",
          "addresses": ["10.22.0.7/24"], "mac": "0a:58:0a:16:00:07", "gateways": [""],
          "primary": True, "cni_network": "", "plumber": "pipework", "netns": "",
          "netns_id": "", "allocator": "vlanpipe", "ipam": ""}


def test_a_record_file_holds_the_identity_flat_as_it_always_has(tmp_path):
    store = RecordStore(str(tmp_path))
    record = Attachment(who=WHO, bridge="k8s_br", port="vp0123456789ab", vlan=22,
                        network="pods", addresses=("10.22.0.7/24",), mac="0a:58:0a:16:00:07",
                        gateways=("",), allocator="vlanpipe")
    store.save(ID, [record])
    with open(store.path(ID), encoding="utf-8") as handle:
        (item,) = json.load(handle)["attachments"]
    # Flat, as version 1 wrote them; fields added since sit beside them.
    assert {key: item[key] for key in STORED} == STORED and "who" not in item
    assert store.load(ID) == [record] and record.interface == "net1" and record.node == ""


def test_a_record_written_before_the_identity_type_loads_into_it(tmp_path):
    store = RecordStore(str(tmp_path))
    store.save(ID, [])
    with open(store.path(ID), "w", encoding="utf-8") as handle:
        json.dump({"kind": "vlanpipe.attachments", "version": 1, "infra_id": ID,
                   "attachments": [STORED]}, handle)
    (loaded,) = store.load(ID)
    assert loaded.who == WHO and loaded.addresses == ("10.22.0.7/24",)


@pytest.mark.parametrize("missing", identity.STORED)
def test_a_record_without_a_part_of_its_identity_is_damaged_not_empty(tmp_path, missing):
    store = RecordStore(str(tmp_path))
    store.save(ID, [])
    item = {k: v for k, v in STORED.items() if k != missing}
    with open(store.path(ID), "w", encoding="utf-8") as handle:
        json.dump({"kind": "vlanpipe.attachments", "version": 1, "infra_id": ID,
                   "attachments": [item]}, handle)
    found, damaged = store.all()
    assert found == {} and [d.reason for d in damaged] == [
        f"malformed attachment (no '{missing}')"]


def test_marks_keep_their_keys_and_read_back_the_identity_with_its_node():
    mark = marks.Marks(WHO.with_interface("net1", "node-a"), address="10.22.0.7/24",
                       network="pods", plumber="pipework")
    ids = mark.external_ids()
    assert ids == {"owner": "vlanpipe", "vlanpipe-namespace": "team-a",
                   "vlanpipe-pod": "22-web", "vlanpipe-infra-id": ID,
                   "vlanpipe-interface": "net1", "vlanpipe-node": "node-a",
                   "vlanpipe-address": "10.22.0.7/24", "vlanpipe-network": "pods",
                   "vlanpipe-plumber": "pipework"}
    read = marks.Marks.read(ids)
    assert read == mark and read.who == Identity("team-a", "22-web", ID, "net1", "node-a")
    assert (read.node, read.infra_id) == ("node-a", ID)


def test_a_lease_record_keeps_its_owner_fields_and_reads_back_the_identity():
    owner = WHO.with_interface("net1", "node-a")
    record = leaserecord.new_record("pods", ipaddress.ip_interface("10.22.0.7/24"), owner)
    body = json.loads(leaserecord.encode(record))
    assert {k: body[k] for k in ("infra_id", "interface", "namespace", "pod", "node")} == {
        "infra_id": ID, "interface": "net1", "namespace": "team-a", "pod": "22-web",
        "node": "node-a"}
    assert leaserecord.decode(leaserecord.encode(record), "pods").owner == owner
    assert owner.key == f"{ID}/net1"


def test_a_list_row_as_json_keeps_its_keys_and_their_order():
    row = Row(WHO, "vp0123456789ab", "k8s_br", 22, "10.22.0.7/24", "0a:58:0a:16:00:07",
              "ok", "pipework")
    assert list(identity.flat(row)) == [
        "namespace", "pod", "infra_id", "interface", "port", "bridge", "vlan", "address", "mac",
        "state", "plumber", "netns", "netns_id", "kind", "marked_for"]
    assert json.loads(json.dumps(identity.flat(row)))["kind"] == State.OK.value


def test_a_pod_checked_from_kubelet_names_fails_on_a_bad_one():
    assert Identity.checked("default", "22-web", ID) == Identity("default", "22-web", ID)
    with pytest.raises(InputError, match="not a valid Kubernetes pod name"):
        Identity.checked("default", "22_web", ID)
    assert WHO.with_interface("net2", "n1").pod_part() == WHO.pod_part() == Identity(
        "team-a", "22-web", ID)
