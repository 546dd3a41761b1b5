"""The `networks` section of the node config, read and validated once into the
allocators' own `NetworkConfig`s.

Everything a later step relies on is checked here (subnets that do not overlap,
one network per VLAN, gateway and exclusions inside the subnet, a non-empty
pool) and defaults are resolved here (the range), so the allocators trust the
`NetworkConfig` they get.
"""

from __future__ import annotations

import re
from dataclasses import replace
from types import MappingProxyType

from plugin.config.limits import parse_bandwidth
from plugin.config.reader import Section
from plugin.errors import ConfigError
from plugin.ipam.addresses import (ALL_VLANS, parse_address, parse_block, parse_interface,
                                   parse_subnet, parse_vlans)
from plugin.ipam.networks import NetworkConfig
from plugin.ipam.pool import Pool

TYPE_CHECKING = False  # the records' module is not loaded on teardown (issue 23)
if TYPE_CHECKING:
    from plugin.ipam.model import IPAddress, IPInterface, IPNetwork, Route

ALLOCATORS = ("static", "local", "etcd")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
POD_KEY = re.compile(r"[^/\s]+/[^/\s]+")
MTU_MIN, MTU_MAX = 576, 9216

# Without a `networks` section: unique addresses from the reference plugin's subnet.
DEFAULT_NETWORK = {"name": "default", "vlans": ALL_VLANS, "subnet": "192.168.255.0/24"}


def parse_networks(sections: list[Section]) -> tuple[NetworkConfig, ...]:
    """Every network of the config, or the built-in default when there is none."""
    if not sections:
        sections = [Section("(built-in default)", DEFAULT_NETWORK, "networks[0]")]
    families = [_parse_network(section) for section in sections]
    _check_together(families, sections)
    return tuple(family for found in families for family in found)


def _parse_network(s: Section) -> list[NetworkConfig]:
    """A network's families: one, or an IPv4 and an IPv6 one (dual-stack)."""
    name = s.string("name")
    if not NAME.fullmatch(name):
        raise s.error(s.key("name"), name, "must be letters, digits, '_', '.', '-' (a file name)")
    vlans = s.convert("vlans", parse_vlans,
                      'a list of VLAN ids (1-4094) or "A-B" ranges, or "all"', None)
    dual = s.has("subnets")
    if dual:
        for key in ("subnet", "range", "gateway", "default_route", "exclude"):
            if s.has(key):
                raise s.error(s.key(key), s.raw(key), "goes inside each item of subnets when "
                              "a network has subnets")
    subnet = None if dual else s.convert("subnet", parse_subnet,
                                         "an IP subnet like 10.22.0.0/24", None)
    allocator = s.choice("allocator", ALLOCATORS, "local" if subnet or dual else "static")
    routes = tuple(_parse_route(r) for r in s.sections("routes"))
    mtu = s.integer("mtu", None, MTU_MIN, MTU_MAX)
    limits = parse_bandwidth(s, "bandwidth")
    if dual:
        if allocator == "static":
            raise s.error(s.key("subnets"), s.raw("subnets"), "applies to allocator local or "
                          "etcd only")
        families = _parse_families(s, name, vlans, allocator)
    elif allocator == "static":
        families = [_parse_static(s, name, vlans, subnet, _parse_gateway(s))]
    else:
        families = [_parse_dynamic(s, name, vlans, allocator, subnet)]
    s.done()
    versions = {f.version for f in families}
    for i, route in enumerate(routes):
        if route.destination.version not in versions:
            raise s.error(f"{s.key('routes')}[{i}].dst", str(route.destination),
                          f"is IPv{route.destination.version}, a family the network has not")
    return [replace(f, routes=tuple(r for r in routes if r.destination.version == f.version),
                    mtu=mtu, bandwidth=limits)
            for f in families]


def _parse_families(s: Section, name: str, vlans: frozenset[int] | None,
                    allocator: str) -> list[NetworkConfig]:
    """`subnets`: one IPv4 and one IPv6 item, each a CIDR or {subnet, range, gateway,
    exclude}, claimed together for every pod (dual-stack)."""
    items = s.typed("subnets", list)
    if not 1 <= len(items) <= 2:
        raise s.error(s.key("subnets"), items, "must list one subnet, or one IPv4 and one IPv6")
    families = []
    for i, item in enumerate(items):
        section = Section(s.source, {"subnet": item} if isinstance(item, str) else item,
                          f"{s.key('subnets')}[{i}]")
        subnet = section.convert("subnet", parse_subnet, "an IP subnet like 10.22.0.0/24")
        families.append(_parse_dynamic(section, name, vlans, allocator, subnet))
        section.done()
    if len({f.version for f in families}) != len(families):
        raise s.error(s.key("subnets"), items, "has two subnets of one family: a pod gets one "
                      "address per family")
    if len(families) == 1:
        return families
    # IPv4 first, whatever the config's order: status reports it, and pipework is given it.
    return [replace(f, store="" if f.version == 4 else f"{name}@6")
            for f in sorted(families, key=lambda f: f.version)]


def _parse_gateway(s: Section) -> tuple[IPAddress | None, bool]:
    """`gateway`, and `default_route` (default false): whether the pod's default traffic of
    that family goes through it. A second interface must not take the pod's cluster
    network (Docker's eth0) away unless the operator says so."""
    gateway = s.convert("gateway", parse_address, "an IP address", None)
    default_route = s.boolean("default_route", False)
    if default_route and gateway is None:
        raise s.error(s.key("default_route"), True, "needs a gateway beside it (the pod's "
                      "default traffic goes through that address)")
    return gateway, default_route


def _parse_static(s: Section, name: str, vlans: frozenset[int] | None,
                  subnet: IPNetwork | None,
                  gateway_route: tuple[IPAddress | None, bool]) -> NetworkConfig:
    gateway, default_route = gateway_route
    for key in ("range", "exclude"):
        if s.has(key):
            raise s.error(s.key(key), s.raw(key), "applies to allocator local or etcd only")
    address = s.convert("address", parse_interface, "an address with prefix like 10.0.0.5/24", None)
    pods = _parse_pods(s)
    if address is None and not pods:
        raise ConfigError(
            f"config {s.source}: network '{name}' ({s.path}) uses allocator static "
            "but has neither 'address' nor 'pods'",
            "give it an address for every pod, a pods map, or a subnet to allocate from",
        )
    if address is not None:
        _check_inside(s, "address", address, subnet)
    for pod, value in pods.items():
        _check_inside(s, f"pods.{pod}", value, subnet)
    if gateway is not None:
        for value in ([address] if address else []) + list(pods.values()):
            if gateway not in (subnet or value.network):
                raise s.error(s.key("gateway"), str(gateway), f"is outside {subnet or value.network}")
    return NetworkConfig(name=name, vlans=vlans, allocator="static", subnet=subnet,
                         gateway=gateway, default_route=default_route, address=address,
                         pods=MappingProxyType(pods))


def _parse_pods(s: Section) -> dict[str, IPInterface]:
    raw = s.typed("pods", dict, {})
    pods: dict[str, IPInterface] = {}
    seen: dict[IPInterface, str] = {}
    for pod, value in raw.items():
        key = f"{s.key('pods')}.{pod}"
        if not isinstance(pod, str) or not POD_KEY.fullmatch(pod):
            raise s.error(key, value, 'is not keyed "namespace/pod"')
        try:
            pods[pod] = parse_interface(value)
        except ValueError as exc:
            raise s.error(key, value, f"is not an address with prefix ({exc})") from None
        if pods[pod].ip in {a.ip for a in seen}:
            raise s.error(key, value, "is also given to another pod")
        seen[pods[pod]] = pod
    return pods


def _check_inside(s: Section, key: str, value: IPInterface, subnet: IPNetwork | None) -> None:
    if subnet is not None and value.network != subnet:
        raise s.error(s.key(key), str(value), f"is not an address of subnet {subnet}")


def _parse_dynamic(s: Section, name: str, vlans: frozenset[int] | None, allocator: str,
                   subnet: IPNetwork | None) -> NetworkConfig:
    for key in ("address", "pods"):
        if s.has(key):
            raise s.error(s.key(key), s.raw(key), "applies to allocator static only")
    gateway, default_route = _parse_gateway(s)
    if subnet is None:
        raise ConfigError(f"config {s.source}: key '{s.key('subnet')}' is required "
                          f"for allocator {allocator}", "add the subnet the network allocates from")
    if gateway is not None and gateway not in subnet:
        raise s.error(s.key("gateway"), str(gateway), f"is outside subnet {subnet}")
    exclude = _parse_exclude(s, subnet)
    start, end = _parse_range(s, subnet)
    network = NetworkConfig(name=name, vlans=vlans, allocator=allocator, subnet=subnet,
                            range_start=start, range_end=end, gateway=gateway,
                            default_route=default_route, exclude=exclude)
    if Pool.of(network).size == 0:
        raise ConfigError(f"config {s.source}: key '{s.key('subnet')}' = '{subnet}' of network "
                          f"'{name}' has no address left to hand out once the gateway and "
                          "exclusions are taken out",
                          "widen its range or subnet, or shorten its exclude list")
    return network


def _parse_exclude(s: Section, subnet: IPNetwork) -> tuple[IPNetwork, ...]:
    items = s.typed("exclude", list, [])
    blocks = []
    for i, item in enumerate(items):
        key = f"{s.key('exclude')}[{i}]"
        try:
            block = parse_block(item)
        except ValueError as exc:
            raise s.error(key, item, f"is not an address or CIDR ({exc})") from None
        if block.version != subnet.version or not block.subnet_of(subnet):  # type: ignore[arg-type]
            raise s.error(key, item, f"is outside subnet {subnet}")
        blocks.append(block)
    return tuple(blocks)


def _parse_range(s: Section, subnet: IPNetwork) -> tuple[IPAddress, IPAddress]:
    """The range, defaulting to the subnet's hosts (no network or broadcast address)."""
    default_start, default_end = _hosts_span(subnet)
    if not s.has("range"):
        return default_start, default_end
    r = s.section("range")
    start = r.convert("start", parse_address, "an IP address", default_start)
    end = r.convert("end", parse_address, "an IP address", default_end)
    r.done()
    for key, value in (("start", start), ("end", end)):
        if value.version != subnet.version or value not in subnet:
            raise r.error(r.key(key), str(value), f"is outside subnet {subnet}")
    if int(start) > int(end):
        raise r.error(r.key("start"), str(start), f"is after range end {end}")
    if subnet.version == 6 and int(start) >> 32 != int(end) >> 32:
        raise r.error(r.key("end"), str(end), f"is not in the same /96 as {start}: an IPv6 "
                      "range stays within one /96")
    return start, end


def _hosts_span(subnet: IPNetwork) -> tuple[IPAddress, IPAddress]:
    """The subnet's hosts; for IPv6, those of its first /96 at most (a rule from when an
    IPv6-only pod's MAC was its address's last 32 bits; kept, so configs mean what they did)."""
    first, last = subnet.network_address, subnet.broadcast_address
    if subnet.num_addresses <= 2:
        return first, last
    if subnet.version == 4:
        return first + 1, last - 1
    # No broadcast in IPv6; the subnet-router anycast address (the first) is skipped.
    return first + 1, min(last, first + (1 << 32) - 1)


def _parse_route(s: Section) -> Route:
    from plugin.ipam.model import Route

    destination = s.convert("dst", parse_subnet, "a destination subnet like 10.0.0.0/8")
    gateway = s.convert("gw", parse_address, "an IP address", None)
    s.done()
    if gateway is not None and gateway.version != destination.version:
        raise s.error(s.key("gw"), str(gateway), f"is not IPv{destination.version} like dst")
    return Route(destination=destination, gateway=gateway)


def _check_together(families: list[list[NetworkConfig]], sections: list[Section]) -> None:
    """Rules across networks: unique names, one network per VLAN, disjoint subnets."""
    source = sections[0].source
    fallback: str | None = None
    owner_of: dict[int, str] = {}
    names: set[str] = set()
    for network in (found[0] for found in families):
        if network.name in names:
            raise _clash(source, f"two networks are named '{network.name}'", "rename one")
        names.add(network.name)
        if network.vlans is None:
            if fallback is not None:
                raise _clash(source, f"networks '{fallback}' and '{network.name}' both say "
                             'vlans: "all"', "only one network may serve every other VLAN")
            fallback = network.name
        for vlan in sorted(network.vlans or ()):
            if vlan in owner_of:
                raise _clash(source, f"VLAN {vlan} is claimed by networks '{owner_of[vlan]}' "
                             f"and '{network.name}'", "give each VLAN to one network")
            owner_of[vlan] = network.name
    flat = [family for found in families for family in found]
    for i, one in enumerate(flat):
        for other in flat[i + 1:]:
            _check_disjoint(source, one, other)
            _check_disjoint(source, other, one)


def _check_disjoint(source: str, one: NetworkConfig, other: NetworkConfig) -> None:
    if one.subnet is None:
        return
    if other.subnet is not None and other.subnet.version == one.subnet.version \
            and one.subnet.overlaps(other.subnet):  # type: ignore[arg-type]
        raise _clash(source, f"subnets of networks '{one.name}' ({one.subnet}) and "
                     f"'{other.name}' ({other.subnet}) overlap",
                     "networks must not share addresses: make the subnets disjoint")
    for value in other.static_addresses():
        if value.ip in one.subnet:
            raise _clash(source, f"static address {value} of network '{other.name}' lies in "
                         f"subnet {one.subnet} of network '{one.name}'",
                         "a static address must not be one the other network hands out")


def _clash(source: str, message: str, hint: str) -> ConfigError:
    return ConfigError(f"config {source}: {message}", hint)
