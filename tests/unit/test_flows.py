"""The plugin's OpenFlow rules as text: cookies, the guard's shape, the dump parser.

What the rules let through is shown on real OVS (tests/e2e); here, the facts
every caller relies on: whose a cookie is, and that a port's rules all carry it.
"""

from __future__ import annotations

from pipework_wrapper.ofctl import _flow
from plugin.core import flows
from plugin.identity import Identity

MAC = "0a:58:0a:00:00:05"
WHO = Identity("ns", "22-a", "c" * 64, "eth1")


def guard(**changes) -> flows.Guard:
    fields = dict(port="vp1234abcd-1", ofport=7, mac=MAC, addresses=("10.0.0.5/24",))
    fields.update(changes)
    return flows.Guard(**fields)


def test_cookies_are_the_plugins_and_differ_per_port():
    one, two = flows.cookie("vpaaaa-1"), flows.cookie("vpaaaa-2")
    assert flows.ours(one) and flows.ours(two) and flows.ours(flows.BRIDGE)
    assert one != two and one != flows.BRIDGE
    assert not flows.ours(0) and not flows.ours(0x5)


def test_every_rule_of_a_port_carries_its_cookie_and_port():
    rules = flows.guard_rules(guard(addresses=("10.0.0.5/24", "fd00::5/64"),
                                    link_locals=("fe80::1",)))
    assert rules and all(f"cookie={flows.cookie('vp1234abcd-1'):#x}," in r for r in rules)
    assert all(",in_port=7," in r for r in rules)
    assert sum("actions=drop" in r and f"priority={flows.DENY}," in r for r in rules) == 1


def test_ipv4_only_pod_sends_as_itself_and_probes():
    rules = flows.guard_rules(guard())
    assert any(f"ip,dl_src={MAC},nw_src=10.0.0.5," in r for r in rules)
    assert any(f"arp_sha={MAC},arp_spa=10.0.0.5," in r for r in rules)
    assert any("arp_op=1" in r and "arp_spa=0.0.0.0" in r for r in rules)
    assert not any("ipv6_src=::," in r for r in rules)  # no IPv6: no DAD rule


def test_neighbour_advertisements_only_for_own_targets():
    rules = flows.guard_rules(guard(addresses=("fd00::5/64",), link_locals=("fe80::1",)))
    targets = {r.split("nd_target=")[1].split(",")[0] for r in rules if "nd_target=" in r}
    assert targets == {"fd00::5", "fe80::1"}
    assert any("ipv6_src=::," in r and f"nd_sll={flows.NO_LLADDR}" in r for r in rules)


def test_pairs_are_sent_from_their_own_mac_or_the_pods():
    rules = flows.guard_rules(guard(pairs=(("10.0.0.100", "02:00:00:00:00:99"),
                                           ("10.0.0.101", ""))))
    assert any("dl_src=02:00:00:00:00:99,nw_src=10.0.0.100," in r for r in rules)
    assert any(f"dl_src={MAC},nw_src=10.0.0.101," in r for r in rules)


def test_replace_deletes_the_ports_rules_first():
    lines = flows.replace(guard())
    assert lines[0] == f"delete cookie={flows.cookie('vp1234abcd-1'):#x}/-1"
    assert all(line.startswith("add ") for line in lines[1:])


def test_dump_lines_parse_into_cookie_table_priority_match_and_count():
    line = (" cookie=0x7670000000000001, duration=0.004s, table=1, n_packets=12, "
            "n_bytes=900, idle_age=0, priority=100,ip,in_port=5,dl_src=02:00:00:00:00:01,"
            "nw_src=10.0.0.1 actions=resubmit(,1)")
    flow = _flow(line)
    assert (flow.cookie, flow.table, flow.priority, flow.packets) == (flows.BRIDGE | 1, 1,
                                                                      100, 12)
    assert flow.match == "ip,in_port=5,dl_src=02:00:00:00:00:01,nw_src=10.0.0.1"
    assert flow.actions == "resubmit(,1)"


def test_records_say_whether_their_port_is_guarded():
    from plugin.core.records import Attachment

    record = Attachment(WHO, "k8s_br", "vpc-1", 22, "net",
                        addresses=("10.0.0.5/24",), mac=MAC, link_locals=("fe80::1",),
                        pairs=(("10.0.0.100", ""),))
    older = flows.guard_of(record, 7, node_default=True)
    assert older == flows.Guard("vpc-1", 7, MAC, ("10.0.0.5/24",), ("fe80::1",),
                                (("10.0.0.100", ""),))
    assert flows.guard_of(record, 7, node_default=False) is None
    on = Attachment(**{**record.__dict__, "port_security": "on"})
    off = Attachment(**{**record.__dict__, "port_security": "off"})
    assert flows.guard_of(on, 7, node_default=False) is not None
    assert flows.guard_of(off, 7, node_default=True) is None


def test_record_files_keep_the_guard_fields(tmp_path):
    from plugin.core.records import Attachment, RecordStore

    record = Attachment(WHO, "k8s_br", "vpc-1", 22, "net",
                        addresses=("10.0.0.5/24",), mac=MAC, port_security="on",
                        link_locals=("fe80::1",), pairs=(("10.0.0.100", "02:00:00:00:00:99"),))
    store = RecordStore(str(tmp_path))
    store.save(record.infra_id, [record])
    assert store.load(record.infra_id) == [record]
