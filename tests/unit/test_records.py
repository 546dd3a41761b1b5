"""What the plugin keeps on disk per call and per pod: versioned records, a log logrotate can move."""

from __future__ import annotations

import json
import os

from plugin import names
from plugin.calllog import CallLog
from plugin.core import recordfile
from plugin.core.records import Attachment, RecordStore
from plugin.identity import Identity

ID = "x" * 300  # any length the CNI spec allows: the file is named by a hash


def attachment() -> Attachment:
    return Attachment(who=Identity("default", "22-web", ID, "net1"),
                      bridge="k8s_br", port="vp0123456789ab", vlan=22, network="pods",
                      addresses=("10.22.0.7/24",), gateways=("",))


def test_a_record_names_its_kind_version_and_the_full_id(tmp_path):
    store = RecordStore(str(tmp_path))
    store.save(ID, [attachment()])
    assert os.listdir(store.directory) == [f"{names.state_key(ID)}.json"]
    with open(store.path(ID), encoding="utf-8") as handle:
        body = json.load(handle)
    assert (body["kind"], body["version"], body["infra_id"]) == ("vlanpipe.attachments", 1, ID)
    assert store.load(ID) == [attachment()]


def test_a_record_of_another_version_is_damaged_never_taken_for_none(tmp_path):
    store = RecordStore(str(tmp_path))
    store.save(ID, [attachment()])
    with open(store.path(ID), encoding="utf-8") as handle:
        body = json.load(handle)
    with open(store.path(ID), "w", encoding="utf-8") as handle:
        json.dump({**body, "version": 2}, handle)
    found, damaged = store.all()
    assert found == {} and [d.reason for d in damaged] == [
        "version 2, this plugin reads 1"]
    assert recordfile.primary_ip(str(tmp_path), ID) is None


def test_a_record_from_before_it_said_where_its_lease_came_from_still_loads(tmp_path):
    """Issue 19 item 7: records now name the allocator and a delegated plugin's ipam config;
    one written before (no such keys) loads with both empty, and DEL follows today's config."""
    store = RecordStore(str(tmp_path))
    store.save(ID, [attachment()])
    with open(store.path(ID), encoding="utf-8") as handle:
        body = json.load(handle)
    assert {"allocator", "ipam"} <= set(body["attachments"][0])
    for item in body["attachments"]:
        del item["allocator"], item["ipam"]
    with open(store.path(ID), "w", encoding="utf-8") as handle:
        json.dump(body, handle)
    (loaded,) = store.load(ID)
    assert loaded == attachment() and (loaded.allocator, loaded.ipam) == ("", "")


def test_the_log_is_reopened_by_name_so_logrotate_can_move_it(tmp_path):
    path = str(tmp_path / "vlanpipe.log")
    CallLog(path, "setup").write("ok")
    os.rename(path, path + ".1")
    CallLog(path, "teardown").write("ok")
    moved, current = (open(p, encoding="utf-8").read().splitlines() for p in (path + ".1", path))
    assert [json.loads(line)["command"] for line in moved] == ["setup"]
    assert [json.loads(line)["command"] for line in current] == ["teardown"]
