"""Fixtures for end-to-end tests against the real daemons (OVS userspace datapath,
dockerd, pipework). ``scripts/host-setup`` (run by ``scripts/test``) starts them.

Order of teardown matters: ``no_leaks`` is autouse, so pytest sets it up before
the ``bridge`` and ``make_container`` fixtures of a test and tears it down after
them; its "after" snapshot therefore sees the host once every fixture cleaned up.
OVS Port rows vanish with their bridge, so ``bridge`` itself checks, before
deleting the bridge, that no port is left on it.
"""

from __future__ import annotations

import secrets
from typing import Callable, Iterator

import pytest

from tests.support import hostnet
from tests.support.hostnet import Container

LEAK_SETTLE_SECONDS = 10  # a netns (and its veth) dies asynchronously after `docker rm`


@pytest.fixture(scope="session", autouse=True)
def daemons_ready() -> None:
    """Fail every e2e test at once, naming what is missing, if the host is not set up.

    Skips nothing: a machine without the daemons is a broken CI, not an excuse.
    pytest caches a session fixture's error, so the checks run once.
    """
    missing = hostnet.preflight()
    if missing:
        pytest.fail(
            "host not ready for e2e tests (run scripts/host-setup as root):\n  - "
            + "\n  - ".join(missing),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def no_leaks(daemons_ready: None) -> Iterator[None]:
    """Fail the test if it leaves new host links, OVS ports, /var/run/netns entries or
    labelled containers behind (checked after the other fixtures' teardown)."""
    before = hostnet.snapshot()
    yield
    hostnet.wait_until(lambda: not hostnet.diff(before, hostnet.snapshot()),
                       timeout=LEAK_SETTLE_SECONDS, interval=0.2)
    after = hostnet.snapshot()
    leaks = hostnet.diff(before, after)
    if leaks:
        hostnet.clean_leaks(before, after)
        pytest.fail("test leaked:\n  - " + "\n  - ".join(leaks), pytrace=False)


@pytest.fixture
def bridge(daemons_ready: None) -> Iterator[str]:
    """A fresh netdev OVS bridge ``tb`` + 6 hex digits; must have no ports left at
    teardown (checked before it is deleted, since deletion drops its ports)."""
    name = "tb" + secrets.token_hex(3)
    hostnet.make_bridge(name)
    try:
        yield name
    finally:
        try:
            problems = hostnet.bridge_leaks(name)
        finally:
            hostnet.delete_bridge(name)
    if problems:
        pytest.fail(f"bridge {name} not clean at teardown:\n  - " + "\n  - ".join(problems),
                    pytrace=False)


@pytest.fixture
def make_container(daemons_ready: None) -> Iterator[Callable[..., Container]]:
    """Factory: ``make_container(name_hint="c", docker_args=()) -> Container`` starts a
    labelled busybox sleeper; all are removed (``docker rm -f``) at teardown."""
    made: list[Container] = []

    def factory(name_hint: str = "c", docker_args: tuple[str, ...] = ()) -> Container:
        c = hostnet.start_container(name_hint, docker_args=docker_args)
        made.append(c)
        return c

    yield factory
    for c in reversed(made):
        hostnet.remove_container(c.id)


@pytest.fixture
def container(make_container: Callable[..., Container]) -> Container:
    """One labelled busybox sleeper (shorthand for ``make_container()``)."""
    return make_container()
