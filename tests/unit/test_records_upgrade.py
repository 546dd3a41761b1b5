"""A node upgraded from the first release with pods attached: their records still serve.

The first release kept `<state_dir>/attachments/<64-hex id>.json`, a bare JSON list of
attachments with one `address` and one `gateway` each. Its OVS marks and leases are what
today's release writes, so the records are the one thing that changed shape.
"""

from __future__ import annotations

import json
import os

from plugin.core import recordfile
from plugin.core.records import Attachment, RecordStore
from plugin.identity import Identity

INFRA = "ab" * 32
FIRST_RELEASE = [{  # exactly as its RecordStore.save wrote an Attachment
    "namespace": "default", "pod": "22-web", "infra_id": INFRA, "interface": "eth1",
    "bridge": "k8s_br", "port": "vp0123456789ab", "vlan": 22, "address": "10.22.0.7/24",
    "network": "vlan22", "mac": "0a:58:0a:16:00:07", "gateway": "10.22.0.1", "primary": True,
}]


def first_release_file(state_dir: str, body: object = FIRST_RELEASE, name: str = INFRA) -> str:
    directory = recordfile.directory(state_dir)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(body, handle)
    return path


def test_first_release_record_is_read_in_todays_shape(tmp_path):
    first_release_file(str(tmp_path))
    [record] = RecordStore(str(tmp_path)).load(INFRA)
    assert record == Attachment(
        who=Identity("default", "22-web", INFRA, "eth1"), bridge="k8s_br",
        port="vp0123456789ab", vlan=22, network="vlan22", addresses=("10.22.0.7/24",),
        mac="0a:58:0a:16:00:07", gateways=("10.22.0.1",), primary=True)
    assert record.plumber == "pipework"  # the only plumber the first release had


def test_status_answers_from_a_first_release_record(tmp_path):
    first_release_file(str(tmp_path))
    assert recordfile.primary_ip(str(tmp_path), INFRA) == "10.22.0.7"
    assert recordfile.primary_ip(str(tmp_path), "cd" * 32) is None


def test_list_and_gc_see_first_release_records(tmp_path):
    first_release_file(str(tmp_path))
    found, damaged = RecordStore(str(tmp_path)).all()
    assert damaged == [] and [r.address for r in found[INFRA]] == ["10.22.0.7/24"]


def test_a_write_moves_the_records_to_todays_file(tmp_path):
    legacy = first_release_file(str(tmp_path))
    store = RecordStore(str(tmp_path))
    store.save(INFRA, store.load(INFRA))
    assert not os.path.exists(legacy) and os.path.exists(store.path(INFRA))
    assert [r.address for r in store.load(INFRA)] == ["10.22.0.7/24"]


def test_teardown_deletes_the_first_release_file(tmp_path):
    legacy = first_release_file(str(tmp_path))
    RecordStore(str(tmp_path)).delete(INFRA)
    assert not os.path.exists(legacy) and RecordStore(str(tmp_path)).load(INFRA) == []


def test_a_list_not_named_by_a_container_id_is_damaged(tmp_path):
    first_release_file(str(tmp_path), name="not-an-id")
    first_release_file(str(tmp_path), body=[1, 2], name="cd" * 32)
    found, damaged = RecordStore(str(tmp_path)).all()
    assert found == {} and len(damaged) == 2, damaged


def test_an_attachment_without_an_address_has_none(tmp_path):
    first_release_file(str(tmp_path), body=[{**FIRST_RELEASE[0], "address": "", "gateway": ""}])
    [record] = RecordStore(str(tmp_path)).load(INFRA)
    assert record.addresses == () and record.gateways == ()
