"""doctor's MAC check: an IPv6-only pod's MAC is its address's last 32 bits, unique within
one /96; a range moved to another /96 while pods hold addresses can make two pods of one
VLAN share a MAC, and doctor must say so."""

from __future__ import annotations

import pytest

from plugin.config.schema import parse
from plugin.errors import Failure
from plugin.ipam.allocators import Allocators
from plugin.ops.doctor import _macs
from tests.support.ipamdata import owner


def config(tmp_path, start: str, end: str):
    return parse({"state_dir": str(tmp_path / "state"), "node_name": "n1",
                  "networks": [{"name": "v6", "vlans": "all", "subnet": "fd00:40::/64",
                                "range": {"start": start, "end": end}}]}, "test")


def test_pods_of_one_range_have_distinct_macs(tmp_path):
    first = config(tmp_path, "fd00:40::1:0:5", "fd00:40::1:0:9")
    allocators = Allocators.for_config(first)
    for i in range(3):
        allocators.allocate(owner(i), 22)
    assert _macs(first) == "3 pods, each MAC once on its network"


def test_a_range_moved_to_another_slash_96_can_share_a_mac_and_doctor_says_so(tmp_path):
    before = config(tmp_path, "fd00:40::1:0:5", "fd00:40::1:0:9")
    (kept,) = Allocators.for_config(before).allocate(owner(1), 22)
    after = config(tmp_path, "fd00:40::5", "fd00:40::9")
    (new,) = Allocators.for_config(after).allocate(owner(2), 22)
    assert (str(kept.address), str(new.address)) == ("fd00:40::1:0:5/64", "fd00:40::5/64")
    with pytest.raises(Failure, match="1 MAC.s. shared on a VLAN: 0a:58:00:00:00:05"):
        _macs(after)
