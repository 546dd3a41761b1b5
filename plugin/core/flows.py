"""The plugin's OpenFlow rules: the one definition of their cookies, tables and shape.

Every rule the plugin writes carries a cookie whose top 16 bits say "vlanpipe"
(`PREFIX`). A bridge's own rules (the explicit default forwarding a bridge in
`fail_mode=secure` needs) carry `BRIDGE`; an attachment's rules carry
`cookie(port)`, so an attachment's rules are removed with one delete by cookie
(del-port leaves a port's rules behind, and a new port given the same OpenFlow
number would inherit them), and rules the plugin does not own are never touched.

The pipeline has two tables:

- `GUARD` (table 0), admission: a guarded pod's port may send only as itself
  (its MAC, its addresses, ARP and neighbour discovery about itself); what is
  admitted goes on to `FORWARD`, the rest is dropped. Ports without rules of
  their own (the uplink, ports the plugin does not own, unguarded pods) pass.
- `FORWARD` (table 1), forwarding: `NORMAL` (MAC learning, the VLAN tags in
  OVSDB, the uplink trunk), where per-port forwarding features (egress meters)
  add their rules.

A trunk pod (`Guard.trunk`) may also send tagged on the VLANs its trunk lists: as
its MAC only (`dl_vlan=V,dl_src=MAC`, ahead of the neighbour-discovery drops), or,
for an entry that lists `addresses`, with the OWN-style rules of those addresses on
that VLAN only. Its own addresses are then held to its native VLAN's untagged
frames (`vlan_tci=0x0000/0x1fff`), or, without a native VLAN, to its own VLAN's tag;
a tag its trunk does not list meets the drop.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plugin.policy import trunk as trunks
from plugin.policy.trunk import TrunkEntry

if TYPE_CHECKING:
    from plugin.core.records import Attachment

PREFIX = 0x7670 << 48  # "vp"
MASK = 0xFFFF << 48
BRIDGE = PREFIX  # the bridge's default rules: the prefix with nothing below it
GUARD, FORWARD = 0, 1
NO_LLADDR = "00:00:00:00:00:00"  # how OpenFlow matches an ND message without the option

# Priorities in GUARD, highest first: what is never allowed from a pod, then the
# neighbour discovery a pod may send about itself, then the rest of its traffic, then
# the drop of everything else from its port. TAGGED: a trunk's VLANs guarded by MAC alone
# (all of the pod's frames there, neighbour discovery too, but not what NEVER drops).
NEVER, TAGGED, ND, OWN, DENY = 50, 45, 40, 30, 10
UNTAGGED = "vlan_tci=0x0000/0x1fff"  # no 802.1Q header (OpenFlow's VLAN match of VID 0)


def cookie(port: str) -> int:
    """The cookie of the rules of the attachment whose OVS port is `port` (names are
    unique on a node; 48 bits of a hash keep the prefix)."""
    low = int.from_bytes(hashlib.sha256(port.encode()).digest()[:6], "big")
    return PREFIX | (low or 1)


def ours(value: int) -> bool:
    """Whether a rule's cookie is the plugin's."""
    return value & MASK == PREFIX


def bridge_rules() -> list[str]:
    """The default forwarding of a bridge in secure fail mode, written by the plugin."""
    return [f"add table={GUARD},priority=0,cookie={BRIDGE:#x},actions=resubmit(,{FORWARD})",
            f"add table={FORWARD},priority=0,cookie={BRIDGE:#x},actions=NORMAL"]


@dataclass(frozen=True)
class Guard:
    """What a guarded port may send as: its MAC and addresses (with prefix or not), its
    IPv6 link-local addresses as read from the pod, and allowed address pairs (an
    address with the MAC it may be sent from, the pod's own if empty)."""

    port: str
    ofport: int
    mac: str
    addresses: tuple[str, ...]
    link_locals: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()
    trunk: tuple[TrunkEntry, ...] = ()  # the VLANs it may also send tagged on
    vlan: int = 0  # with a trunk, its attachment's VLAN (listed: its addresses' tag)

    def senders(self) -> list[tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address]]:
        """Each (MAC, address) the port may send from."""
        found = [(self.mac, _ip(a)) for a in (*self.addresses, *self.link_locals)]
        found += [(mac or self.mac, _ip(a)) for a, mac in self.pairs]
        return list(dict.fromkeys(found))


def guard_of(record: "Attachment", ofport: int, node_default: bool) -> Guard | None:
    """The guard of an attachment's port (OpenFlow number `ofport`), or None if its port
    is not guarded (`node_default` decides for records from before port security)."""
    guarded = record.port_security == "on" or (not record.port_security and node_default)
    if not guarded:
        return None
    return Guard(record.port, ofport, record.mac, record.addresses, record.link_locals,
                 record.pairs, record.trunk, record.vlan if record.trunk else 0)


def guard_rules(guard: Guard) -> list[str]:
    """The `add` lines that hold `guard.port` to `guard` (see the module's docstring)."""
    base = f"table={GUARD},cookie={cookie(guard.port):#x},in_port={guard.ofport}"
    admit = f"actions=resubmit(,{FORWARD})"
    drop = "actions=drop"
    rules = [f"priority={NEVER},udp,tp_src=67,{drop}",        # DHCP server replies
             f"priority={NEVER},udp6,tp_src=547,{drop}",      # DHCPv6 server replies
             f"priority={NEVER},icmp6,icmp_type=134,{drop}",  # router advertisements
             f"priority={NEVER},icmp6,icmp_type=137,{drop}",  # redirects
             f"priority={NEVER},icmp,icmp_type=5,{drop}",     # IPv4 redirects
             f"priority={ND},icmp6,icmp_type=135,{drop}",
             f"priority={ND},icmp6,icmp_type=136,{drop}",
             f"priority={DENY},{drop}"]
    senders = guard.senders()
    own_v6 = [(mac, ip) for mac, ip in senders if ip.version == 6]
    for mac, ip in senders:
        if ip.version == 4:
            rules += [f"priority={OWN},ip,dl_src={mac},nw_src={ip},{admit}",
                      f"priority={OWN},arp,dl_src={mac},arp_sha={mac},arp_spa={ip},{admit}"]
            continue
        rules.append(f"priority={OWN},ipv6,dl_src={mac},ipv6_src={ip},{admit}")
        for lladdr in (mac, NO_LLADDR):
            rules.append(f"priority={ND + 1},icmp6,icmp_type=135,dl_src={mac},"
                         f"ipv6_src={ip},nd_sll={lladdr},{admit}")
            rules += [f"priority={ND + 1},icmp6,icmp_type=136,dl_src={mac},ipv6_src={source},"
                      f"nd_target={ip},nd_tll={lladdr},{admit}"
                      for source_mac, source in own_v6 if source_mac == mac]
    if any(ip.version == 4 for _, ip in senders):  # RFC 5227 probes: sender address 0.0.0.0
        rules.append(f"priority={OWN},arp,arp_op=1,dl_src={guard.mac},arp_sha={guard.mac},"
                     f"arp_spa=0.0.0.0,{admit}")
    if own_v6:  # duplicate address detection: a solicitation from :: with no lladdr option
        rules.append(f"priority={ND + 1},icmp6,icmp_type=135,dl_src={guard.mac},ipv6_src=::,"
                     f"nd_sll={NO_LLADDR},{admit}")
    if guard.trunk:
        rules = _with_trunk(guard, rules, admit)
    return [f"add {base},{rule}" for rule in rules]


def _with_trunk(guard: Guard, rules: list[str], admit: str) -> list[str]:
    """A trunk pod's rules (the module's docstring): its own rules held to its own VLAN's
    frames (untagged on a native VLAN), each listed VLAN's by its entry's addresses (the
    same rules as its own, on that VLAN) or by its MAC alone."""
    home = UNTAGGED if trunks.native(guard.trunk, guard.vlan) else f"dl_vlan={guard.vlan}"
    found = [_within(rule, home) if rule.endswith(admit) else rule for rule in rules]
    mac_only = []
    for entry in guard.trunk:
        if entry.addresses:
            listed = guard_rules(Guard(guard.port, guard.ofport, guard.mac, entry.addresses))
            found += [_within(line.split(",", 3)[3], f"dl_vlan={entry.low}")
                      for line in listed if line.endswith(admit)]
        else:
            mac_only += [vlan for vlan in entry.vlans() if f"dl_vlan={vlan}" != home]
    found += [f"priority={TAGGED},{match},dl_src={guard.mac},{admit}"
              for match in _vlan_matches(sorted(mac_only))]
    return list(dict.fromkeys(found))


def _within(rule: str, vlan: str) -> str:
    """`rule` (`priority=N,...`) matching only frames that match `vlan` too."""
    priority, rest = rule.split(",", 1)
    return f"{priority},{vlan},{rest}"


def _vlan_matches(vlans: list[int]) -> list[str]:
    """Matches of exactly these tagged VLANs (sorted), few: a run of VLANs is cut into
    aligned blocks, each one masked `vlan_tci` match (a single VLAN: `dl_vlan`)."""
    matches, i = [], 0
    while i < len(vlans):
        start = vlans[i]
        size = start & -start  # the largest aligned block starting here...
        while size > 1 and vlans[i + size - 1:i + size] != [start + size - 1]:
            size //= 2  # ...that the run fills (the list is sorted, without repeats)
        matches.append(f"dl_vlan={start}" if size == 1 else
                       f"vlan_tci={0x1000 | start:#06x}/{0x1000 | (0xFFF & -size):#06x}")
        i += size
    return matches


def forget(rules_cookie: int) -> str:
    """The `delete` line for every rule of one cookie, in every table (an attachment's,
    once its port is gone)."""
    return f"delete cookie={rules_cookie:#x}/-1"


def unguard(port: str) -> str:
    """The `delete` line for `port`'s rules in GUARD: its rules in other tables (an egress
    meter's, in FORWARD) are another feature's and stay."""
    return f"delete table={GUARD},cookie={cookie(port):#x}/-1"


def replace(guard: Guard) -> list[str]:
    """One bundle's lines that make `guard.port`'s GUARD rules exactly `guard_rules(guard)`."""
    return [unguard(guard.port), *guard_rules(guard)]


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_interface(address).ip
