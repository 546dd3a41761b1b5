"""The pure allocator: candidates, holes, rotation order, refusals."""

from __future__ import annotations

import ipaddress
import itertools

from plugin.ipam.pool import Pool
from tests.support.ipamdata import network


def addresses(pool: Pool, last: str | None = None, limit: int = 1000) -> list[str]:
    start = ipaddress.ip_address(last) if last else None
    return [str(a) for a in itertools.islice(pool.rotation(start), limit)]


def test_candidates_skip_gateway_and_exclusions():
    pool = Pool.of(network(vlans=[1], subnet="10.0.0.0/29", gateway="10.0.0.1",
                           exclude=["10.0.0.3", "10.0.0.4/31"]))
    assert addresses(pool) == ["10.0.0.2", "10.0.0.6"]
    assert pool.size == 2


def test_rotation_starts_after_the_last_reserved_and_wraps():
    pool = Pool.of(network(vlans=[1], subnet="10.0.0.0/29"))
    assert addresses(pool, "10.0.0.4") == ["10.0.0.5", "10.0.0.6", "10.0.0.1", "10.0.0.2",
                                           "10.0.0.3", "10.0.0.4"]
    assert addresses(pool, "10.0.0.6")[0] == "10.0.0.1"
    assert addresses(pool, "10.9.9.9")[0] == "10.0.0.1"  # outside the range: from the start


def test_rotation_yields_each_candidate_once_whatever_the_start():
    pool = Pool.of(network(vlans=[1], subnet="10.0.0.0/27", gateway="10.0.0.9",
                           exclude=["10.0.0.16/30", "10.0.0.30"]))
    expected = sorted(addresses(pool))
    for last in [None] + expected:
        got = addresses(pool, last)
        assert sorted(got) == expected and len(got) == pool.size


def test_a_range_limits_the_candidates():
    pool = Pool.of(network(vlans=[1], subnet="10.0.0.0/24",
                           range={"start": "10.0.0.100", "end": "10.0.0.102"}))
    assert addresses(pool, "10.0.0.100") == ["10.0.0.101", "10.0.0.102", "10.0.0.100"]


def test_huge_holes_are_jumped_not_walked():
    pool = Pool.of(network(vlans=[1], subnet="10.0.0.0/8", exclude=["10.0.0.0/9"]))
    assert addresses(pool, limit=2) == ["10.128.0.0", "10.128.0.1"]
    assert pool.size == 2 ** 23 - 1  # the broadcast address is not in the range


def test_ipv6_candidates_keep_their_family():
    pool = Pool.of(network(vlans=[1], subnet="fd00::/124", gateway="fd00::1"))
    assert addresses(pool, limit=2) == ["fd00::2", "fd00::3"]
    assert str(pool.interface(ipaddress.ip_address("fd00::2"))) == "fd00::2/124"


def test_refusal_of_pinned_addresses():
    pool = Pool.of(network(vlans=[1], subnet="10.0.0.0/24", gateway="10.0.0.1",
                           exclude=["10.0.0.8/29"], range={"start": "10.0.0.100"}))
    refusal = lambda text: pool.refusal(ipaddress.ip_address(text))  # noqa: E731
    assert refusal("10.0.0.50") is None  # outside the range, inside the subnet: allowed
    assert refusal("10.0.0.1") == "is the gateway"
    assert refusal("10.0.0.9") == "is excluded"
    assert refusal("10.0.0.0") == "is the network address"
    assert refusal("10.0.0.255") == "is the broadcast address"
    assert refusal("10.0.1.5") == "is outside subnet 10.0.0.0/24"
    assert refusal("fd00::5") == "is outside subnet 10.0.0.0/24"


def test_a_pods_request_is_refused_just_outside_the_range_and_taken_at_its_ends():
    pool = Pool.of(network(vlans=[1], subnet="10.0.0.0/24",
                           range={"start": "10.0.0.10", "end": "10.0.0.20"}))
    refusal = lambda text: pool.refusal(ipaddress.ip_address(text), in_range=True)  # noqa: E731
    assert refusal("10.0.0.10") is None and refusal("10.0.0.20") is None
    for outside in ("10.0.0.9", "10.0.0.21"):
        assert refusal(outside) == "is outside the range 10.0.0.10-10.0.0.20"
