"""gc over the fakes at the wrapper boundary (`tests/support/wired.py`): what it finds is a
candidate only, asked about again under the pod's lock just before anything is removed.
tests/e2e runs gc against the real daemons; here the answer can change at the one moment
that matters."""

from __future__ import annotations

import pytest

from plugin import names
from plugin.calllog import CallLog
from plugin.config.schema import Config, parse
from plugin.core.attach import Core
from plugin.core.plumbing import docker_sandbox
from plugin.core.policy import Want
from plugin.errors import BackendError
from plugin.identity import Identity
from plugin.locks import pod_lock
from plugin.ops.actions import NOT_JUDGED, REMOVED
from plugin.ops.gc import sweep
from tests.support.fakes import FakeHost
from tests.support.wired import FakeDocker, wire

ID, PID = "a" * 64, 4242
POD = Identity("default", "22-web", ID)


@pytest.fixture
def host(monkeypatch) -> FakeHost:
    fake = FakeHost()
    fake.bridges.add("br0")
    fake.containers[ID] = PID
    return fake


@pytest.fixture
def docker(monkeypatch, host) -> FakeDocker:
    return wire(monkeypatch, host)


@pytest.fixture
def config(tmp_path) -> Config:
    return parse({"bridge": "br0", "state_dir": str(tmp_path / "state"), "node_name": "n1",
                  "log": {"file": str(tmp_path / "log")},
                  "networks": [{"name": "pods", "vlans": "all", "subnet": "10.9.0.0/24"}]},
                 "test")


def attached(config: Config) -> Core:
    core = Core(config, CallLog(config.log_file, "test"))
    core.attach(POD, [Want("eth1", "br0", 22)], docker_sandbox(config, ID))
    return core


def held_elsewhere(config: Config) -> bool:
    """Whether the pod's lock is held now (by another descriptor: this one waits briefly)."""
    try:
        with pod_lock(config.state_dir, ID, 0.05):
            return False
    except BackendError:
        return True


def state(core: Core, host: FakeHost) -> tuple[list[str], list[str], list[str]]:
    """The pod's ports, records and leases, as far as they are left."""
    return (sorted(host.ports), [r.port for r in core.records.load(ID)],
            [o.interface for o, _ in core.allocators.leases() if o.infra_id == ID])


def test_a_pod_gone_from_the_listing_but_running_under_the_lock_is_kept(config, host, docker):
    """The container is missing from Docker's listing (gc's candidate) and runs when asked
    again under the pod's lock (set up again meanwhile): nothing of it is removed."""
    core = attached(config)
    before = state(core, host)
    asked_under_lock = []
    inspect = docker.inspect_container

    def recorded(container_id):
        asked_under_lock.append(held_elsewhere(config))
        return inspect(container_id)

    docker.inspect_container = recorded
    docker.unlisted.add(ID)
    sweep(config, CallLog(config.log_file, "gc"))
    assert asked_under_lock == [True]
    port = names.host_veth(ID, "eth1")
    assert state(core, host) == before == ([port], [port], ["eth1"])
    assert port in host.links


def test_a_pod_still_gone_under_the_lock_is_collected(config, host, docker):
    core = attached(config)
    del host.containers[ID]
    sweep(config, CallLog(config.log_file, "gc"))
    assert state(core, host) == ([], [], []) and host.leftovers() == []


def test_without_docker_gc_judges_no_docker_pod_and_says_so(config, host, docker):
    core = attached(config)
    before = state(core, host)
    docker.down = True
    actions = sweep(config, CallLog(config.log_file, "gc"))
    assert state(core, host) == before
    unjudged = [a for a in actions if a.outcome == NOT_JUDGED]
    assert {a.what.split()[0] for a in unjudged} == {"port", "lease"}, actions  # both named
    assert all("Docker does not answer" in a.why for a in unjudged), actions
    assert not [a for a in actions if a.outcome == REMOVED]


def test_gc_leaves_the_ports_another_node_marked_on_a_shared_open_vswitch(tmp_path, config,
                                                                          host, docker):
    other = parse({"bridge": "br0", "state_dir": str(tmp_path / "other"), "node_name": "n2",
                   "log": {"file": str(tmp_path / "log")},
                   "networks": [{"name": "pods", "vlans": "all", "subnet": "10.8.0.0/24"}]},
                  "test")
    attached(other)
    del host.containers[ID]  # gone, as this node's Docker sees it: not this node's pod
    sweep(config, CallLog(config.log_file, "gc"))
    assert sorted(host.ports) == [names.host_veth(ID, "eth1")]
