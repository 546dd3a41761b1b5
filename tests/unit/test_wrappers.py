"""Argument shapes and OVSDB JSON parsing of the wrappers: pure logic."""

import json

from pipework_wrapper import pipework
from pipework_wrapper.ovs import _documents, _map, _scalar, _uuids


def test_pipework_vlan_goes_in_mac_slot_and_gateway_after_at():
    args = pipework.argv("k8s_br", "c" * 64, "eth1", "vp1", "10.0.0.5/24", 22)
    assert args == ["k8s_br", "-i", "eth1", "-l", "vp1", "c" * 64, "10.0.0.5/24", "@22"]
    args = pipework.argv("br", "c" * 64, "eth1", "vp1", "10.0.0.5/24", 22, gateway="10.0.0.1",
                         mac="0a:58:0a:00:00:05")
    assert args[-2:] == ["10.0.0.5/24@10.0.0.1", "0a:58:0a:00:00:05@22"]


def _table(headings, rows):
    return json.dumps({"headings": headings, "data": rows})


def test_documents_splits_concatenated_tables_and_decodes_ovsdb_values():
    text = "\n".join([
        _table(["name", "tag", "external_ids"],
               [["p1", 22, ["map", [["owner", "vlanpipe"]]]], ["p2", ["set", []], ["map", []]]]),
        _table(["name", "ports"], [["br", ["set", [["uuid", "u1"], ["uuid", "u2"]]]],
                                   ["br2", ["uuid", "u3"]]]),
    ])
    ports, bridges = _documents(text)
    assert [p["name"] for p in ports] == ["p1", "p2"]
    assert _scalar(ports[0]["tag"]) == 22 and _scalar(ports[1]["tag"]) is None
    assert _map(ports[0]["external_ids"]) == {"owner": "vlanpipe"}
    assert _uuids(bridges[0]["ports"]) == ["u1", "u2"] and _uuids(bridges[1]["ports"]) == ["u3"]
