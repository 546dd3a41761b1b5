"""gc's file sweeps race with whoever else removes the same files (issue 19 item 12): a
rollback, an operator's `ip netns del`, a second gc. Between gc's look and its unlink the
file may vanish; a file that vanished is a file removed, never an internal error. The fake
widens that window: the look itself removes the file, as the other party would."""

from __future__ import annotations

import os

import pytest

from pipework_wrapper import iproute
from plugin.ops import gc
from plugin.ops.actions import Action


@pytest.fixture
def netns_dir(tmp_path, monkeypatch):
    folder = tmp_path / "netns"
    folder.mkdir()
    monkeypatch.setattr(iproute, "NETNS_DIR", str(folder))
    return folder


def test_a_netns_link_removed_between_look_and_unlink_counts_as_removed(netns_dir,
                                                                        monkeypatch):
    link = netns_dir / "4999997"
    os.symlink("/proc/4999997/ns/net", link)
    real_islink = os.path.islink

    def islink_then_someone_removes_it(path) -> bool:
        found = real_islink(path)
        if found and str(path) == str(link):
            os.unlink(path)  # the other party, just after gc looked
        return found

    monkeypatch.setattr(iproute.os.path, "islink", islink_then_someone_removes_it)
    assert iproute.remove_netns_link(4999997) is True
    assert not os.path.lexists(link)


def test_gc_sweep_of_netns_links_survives_the_race(netns_dir, monkeypatch):
    links = [netns_dir / str(pid) for pid in (4999995, 4999996)]
    for link in links:
        os.symlink(f"/proc/{link.name}/ns/net", link)
    real_unlink = os.unlink

    def unlink_after_someone_else(path) -> None:
        real_unlink(path)  # the other party got there first
        real_unlink(path)  # gc's own unlink: FileNotFoundError

    monkeypatch.setattr(iproute.os, "unlink", unlink_after_someone_else)
    found = gc.netns_links(dry_run=False)
    assert found == [Action("removed", str(link), "",
                            "a dangling namespace link a failed pipework left")
                     for link in links]
    assert not any(os.path.lexists(link) for link in links)
