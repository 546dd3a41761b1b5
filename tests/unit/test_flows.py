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
    assert lines[0] == f"delete table=0,cookie={flows.cookie('vp1234abcd-1'):#x}/-1"
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


def trunk_guard(vlan: int = 22, **changes) -> flows.Guard:
    from plugin.policy import trunk

    entries = trunk.parse([{"id": 100}, {"id": 300, "addresses": ["10.3.0.5/24", "fd03::5/64"]},
                           {"minID": 200, "maxID": 210}])
    return guard(trunk=entries, vlan=vlan, **changes)


def admitted(rules: list[str]) -> list[str]:
    return [r for r in rules if "resubmit" in r]


def test_without_a_trunk_no_rule_matches_a_vlan():
    assert not any("vlan" in r for r in flows.guard_rules(guard()))


def test_a_trunks_listed_vlans_admit_the_pods_mac_alone_ahead_of_the_nd_drops():
    rules = flows.guard_rules(trunk_guard())
    mac_only = [r for r in rules if f"priority={flows.TAGGED}," in r]
    assert flows.NEVER > flows.TAGGED > flows.ND
    matches = sorted(r.split(f"in_port=7,priority={flows.TAGGED},")[1].split(",dl_src")[0]
                     for r in mac_only)
    # 100, and 200-210 as aligned blocks: 200-207, 208-209, 210.
    assert matches == ["dl_vlan=100", "dl_vlan=210", "vlan_tci=0x10c8/0x1ff8",
                       "vlan_tci=0x10d0/0x1ffe"]
    assert all(r.endswith(f"dl_src={MAC},actions=resubmit(,{flows.FORWARD})") for r in mac_only)
    assert not any("dl_vlan=300" in r for r in mac_only)  # it lists addresses


def test_addresses_listed_for_a_vlan_are_admitted_there_and_nowhere_else():
    rules = admitted(flows.guard_rules(trunk_guard()))
    assert any(f"dl_vlan=300,ip,dl_src={MAC},nw_src=10.3.0.5," in r for r in rules)
    assert any(f"dl_vlan=300,arp,dl_src={MAC},arp_sha={MAC},arp_spa=10.3.0.5," in r
               for r in rules)
    assert any(f"dl_vlan=300,ipv6,dl_src={MAC},ipv6_src=fd03::5," in r for r in rules)
    assert any("dl_vlan=300,icmp6,icmp_type=136" in r and "nd_target=fd03::5" in r
               for r in rules)
    assert any("dl_vlan=300,arp,arp_op=1" in r and "arp_spa=0.0.0.0" in r for r in rules)
    with_address = [r for r in rules if "10.3.0.5" in r or "fd03::5" in r]
    assert with_address and all("dl_vlan=300," in r for r in with_address)  # not on A, B...


def test_the_native_vlans_own_addresses_are_admitted_untagged_only():
    rules = admitted(flows.guard_rules(trunk_guard()))
    own = [r for r in rules if "10.0.0.5" in r]
    assert own and all(f",{flows.UNTAGGED},ip" in r or f",{flows.UNTAGGED},arp" in r
                       for r in own)
    probes = [r for r in rules if "arp_spa=0.0.0.0" in r]
    assert len(probes) == 2 and sum(flows.UNTAGGED in r for r in probes) == 1


def test_without_a_native_vlan_the_pods_addresses_go_tagged_on_its_own_vlan():
    rules = admitted(flows.guard_rules(trunk_guard(vlan=205)))
    own = [r for r in rules if "10.0.0.5" in r]
    assert own and all("dl_vlan=205," in r for r in own)
    assert not any(flows.UNTAGGED in r for r in rules)  # untagged: only the drop
    mac_only = [r for r in rules if f"priority={flows.TAGGED}," in r]
    assert not any("dl_vlan=205," in r for r in mac_only)  # address-guarded, not MAC-only
    assert any("vlan_tci=0x10c8/0x1ffc" in r for r in mac_only)  # 200-203, then 204, 206-...
    assert any("dl_vlan=204," in r for r in mac_only)


def test_the_pods_own_vlan_listed_with_addresses_keeps_both():
    from plugin.policy import trunk

    g = guard(trunk=trunk.parse([{"id": 22, "addresses": ["10.2.0.9/24"]}]), vlan=22)
    own = [r for r in admitted(flows.guard_rules(g)) if "nw_src=" in r]
    assert sorted(r.split("nw_src=")[1].split(",")[0] for r in own) == ["10.0.0.5", "10.2.0.9"]
    assert all("dl_vlan=22," in r for r in own)


def test_guard_of_a_trunk_record_carries_its_trunk_and_vlan():
    from plugin.core.records import Attachment
    from plugin.policy import trunk

    entries = trunk.parse([{"id": 100}])
    record = Attachment(WHO, "k8s_br", "vpc-1", 22, "net",
                        addresses=("10.0.0.5/24",), mac=MAC, port_security="on", trunk=entries)
    found = flows.guard_of(record, 7, node_default=False)
    assert found is not None and (found.trunk, found.vlan) == (entries, 22)
