"""Fixtures for end-to-end tests against the real daemons (OVS userspace datapath,
dockerd, pipework, etcd). ``scripts/host-setup`` (run by ``scripts/test``) starts them.

Each test checks only what it made (``tests/support/scope.py``): the fixtures
register their containers and bridges in the test's scope, and the autouse
``scope`` fixture, set up first and so torn down last, fails the test if any of
it is left once every other fixture has cleaned up. OVS Port rows vanish with
their bridge, so ``bridge`` itself checks, before deleting the bridge, that no
port is left on it.
"""

from __future__ import annotations

import itertools
import os
import secrets
from typing import Callable, Iterator

import pytest

from plugin.config.etcd import parse_etcd
from plugin.config.reader import Section
from plugin.ipam.stores.etcd_config import EtcdConfig
from tests.support import containerd, etcd_server, hostnet
from tests.support.hostnet import Container
from tests.support.scope import Scope

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
def scope(daemons_ready: None) -> Iterator[Scope]:
    """What this test made; fail it if any of that is left (checked after the other
    fixtures' teardown)."""
    made = Scope()
    yield made
    hostnet.wait_until(lambda: not made.leaks(), timeout=LEAK_SETTLE_SECONDS, interval=0.2)
    leaks = made.leaks()
    if leaks:
        made.clean()
        pytest.fail("test leaked:\n  - " + "\n  - ".join(leaks), pytrace=False)


@pytest.fixture
def bridge(scope: Scope) -> Iterator[str]:
    """A fresh netdev OVS bridge ``tb`` + 6 hex digits; must have no ports left at
    teardown (checked before it is deleted, since deletion drops its ports)."""
    name = "tb" + secrets.token_hex(3)
    scope.bridges.add(name)
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
def namespaces(scope: Scope) -> Iterator[Callable[[], containerd.NetNS]]:
    """CRI-order namespaces this test makes (`namespaces()` makes one); all removed after
    it, and registered in its scope so a leak fails it."""
    made: list[containerd.NetNS] = []

    def make() -> containerd.NetNS:
        ns = containerd.add_netns()
        scope.netns.add(ns.path)
        made.append(ns)
        return ns

    yield make
    for ns in made:
        containerd.delete_netns(ns)


@pytest.fixture
def make_container(scope: Scope) -> Iterator[Callable[..., Container]]:
    """Factory: ``make_container(name_hint="c", docker_args=()) -> Container`` starts a
    labelled busybox sleeper; all are removed (``docker rm -f``) at teardown."""
    made: list[Container] = []

    def factory(name_hint: str = "c", docker_args: tuple[str, ...] = ()) -> Container:
        c = scope.add_container(hostnet.start_container(name_hint, docker_args=docker_args,
                                                        labels=[scope.label]))
        made.append(c)
        return c

    yield factory
    for c in reversed(made):
        hostnet.remove_container(c.id)


@pytest.fixture
def container(make_container: Callable[..., Container]) -> Container:
    """One labelled busybox sleeper (shorthand for ``make_container()``)."""
    return make_container()


@pytest.fixture(scope="session")
def image() -> str:
    """The test image in containerd (imported from Docker's), for `ctr run`; fails at once,
    naming what is missing, when containerd is not ready."""
    from tests.support import containerd

    missing = containerd.preflight()
    if missing:
        pytest.fail("containerd not ready: " + "; ".join(missing), pytrace=False)
    return containerd.import_image()


_prefixes = itertools.count()


def _require_etcd() -> None:
    if not etcd_server.available():
        pytest.fail(f"etcd not found at {etcd_server.ETCD}: apt-get install etcd-server")


@pytest.fixture(scope="session")
def etcd_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _require_etcd()
    server = etcd_server.start(str(tmp_path_factory.mktemp("etcd") / "data"))
    yield server.url
    etcd_server.stop(server)


@pytest.fixture
def etcd_config(etcd_url: str) -> EtcdConfig:
    """An etcd section with a prefix no other test uses."""
    config = parse_etcd(Section("test.yaml", {"endpoints": [etcd_url], "timeout": 5,
                                              "prefix": f"/test{os.getpid()}-{next(_prefixes)}"},
                                "etcd"))
    assert config is not None
    return config


@pytest.fixture
def private_etcd(tmp_path) -> Iterator[etcd_server.EtcdServer]:
    """An etcd of the test's own, which it may kill and restart."""
    _require_etcd()
    server = etcd_server.start(str(tmp_path / "etcd-data"))
    yield server
    etcd_server.stop(server)
