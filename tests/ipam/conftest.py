"""Fixtures for the IPAM tests: a real etcd, configs, owners.

One etcd serves the whole session; each test gets its own key prefix, so tests
never see each other's keys. Tests that restart etcd get a private one.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Iterator

import pytest

from plugin.config.reader import Section
from plugin.ipam.model import Owner
from plugin.ipam.networks import EtcdConfig, NetworkConfig, parse_etcd, parse_networks
from tests.support import etcd_server

_prefixes = itertools.count()


def networks(*items: dict[str, Any]) -> tuple[NetworkConfig, ...]:
    """Networks parsed from plain dicts, as the config file would give them."""
    return parse_networks([Section("test.yaml", item, f"networks[{i}]")
                           for i, item in enumerate(items)])


def network(**fields: Any) -> NetworkConfig:
    fields.setdefault("name", "net")
    return networks(fields)[0]


def owner(index: int, node: str = "", interface: str = "eth1") -> Owner:
    return Owner(infra_id=f"{index:064x}", interface=interface, namespace="ns",
                 pod=f"22-pod-{index}", node=node)


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
