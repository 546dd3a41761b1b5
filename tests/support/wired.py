"""The whole plugin over the fakes: every wrapper redirected to one `FakeHost`.

`wire(monkeypatch, host)` points the wrappers the plugin reaches the host through
(ovs-vsctl's `Ovs`, ovs-ofctl's `Ofctl`, `iproute`, `pipework`, `announce`, `probe`, the
Docker SDK's client)
at the fakes, and makes every other external program an error. Then the
front-ends run as they do in production (`cni_main` feeds the CNI front-end its
environment and stdin), so a unit test states behaviour, not how the plugin is
put together inside, and no daemon is ever reached.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import docker
import pytest
import requests
from docker.errors import NotFound

from pipework_wrapper import announce, command, iproute, ovs, pipework, probe
from pipework_wrapper.ofctl import Ofctl
from pipework_wrapper.ovs import Ovs
from tests.support.fakes import FakeHost

IP_VERBS = ("link_exists", "in_datapath", "delete_link", "has_netns_link", "remove_netns_link",
            "container_addresses", "set_mtu", "add_veth", "enable_ipv6", "ipv6_defaults",
            "in_pod", "namespace_id", "dangling_netns_links", "tx_checksum", "set_tx_checksum",
            "link_locals", "root_qdiscs")
OVS_VERBS = ("bridges", "ports", "plug", "delete_ports", "find_then_delete", "ofports",
             "qos_rows", "unreferenced_qos", "destroy_qos", "ofport",
             "fail_modes", "set_fail_mode")
OFCTL_VERBS = ("bundle", "delete", "dump", "meter_features", "add_meter", "delete_meter",
               "meters")


class FakeDocker:
    """dockerd as the SDK's low-level client sees it: the host's containers, all running.

    `unlisted` containers are missing from the listing of running containers but
    still answer an inspection as running: one started between the two questions.
    `down`: dockerd does not answer (the SDK's requests fail to connect).
    """

    def __init__(self, host: FakeHost) -> None:
        self.host = host
        self.unlisted: set[str] = set()
        self.down = False

    def client(self, **_: Any) -> "FakeDocker":
        if self.down:
            raise requests.ConnectionError("Connection refused")
        return self

    def __enter__(self) -> "FakeDocker":
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def containers(self, quiet: bool = False) -> list[dict[str, str]]:
        return [{"Id": i} for i in self.host.containers if i not in self.unlisted]

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        if container_id not in self.host.containers:
            raise NotFound(f"No such container: {container_id}")
        return {"Id": container_id, "Name": f"/{container_id[:12]}",
                "State": {"Pid": self.host.containers[container_id], "Running": True}}


def _refuse(program: str, args: list[str], *_: Any, **__: Any) -> None:
    raise AssertionError(f"unfaked external program in a unit test: {program} {args}")


def wire(monkeypatch: pytest.MonkeyPatch, host: FakeHost) -> FakeDocker:
    """Redirect the wrappers to `host`; return its Docker."""
    fake_docker = FakeDocker(host)
    for module in (command, ovs, iproute, pipework):  # each binds `run` by name (ofctl: ovs)
        monkeypatch.setattr(module, "run", _refuse)
    for verb in IP_VERBS:
        monkeypatch.setattr(iproute, verb, getattr(host.ip, verb))
    for verb in OVS_VERBS:
        monkeypatch.setattr(Ovs, verb, lambda self, *a, _verb=verb, **k:
                            getattr(host.ovs, _verb)(*a, **k))
    for verb in OFCTL_VERBS:
        monkeypatch.setattr(Ofctl, verb, lambda self, *a, _verb=verb, **k:
                            getattr(host.ofctl, _verb)(*a, **k))
    monkeypatch.setattr(pipework, "attach", host.pipework.attach)
    monkeypatch.setattr(pipework, "generation", host.pipework.generation)
    monkeypatch.setattr(announce, "announce", host.announce)
    monkeypatch.setattr(probe, "probe", host.probe)
    monkeypatch.setattr(docker, "APIClient", fake_docker.client)
    return fake_docker


def cni_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             config_path: str, command_: str, netconf: dict[str, Any], container: str = "",
             ifname: str = "", netns: str = "", args: str = "") -> tuple[int, Any]:
    """Run the CNI front-end as a runtime calls it: (exit status, its stdout as JSON)."""
    from plugin.frontends.cni.main import main

    environ = {"CNI_COMMAND": command_, "CNI_CONTAINERID": container, "CNI_IFNAME": ifname,
               "CNI_NETNS": netns, "CNI_ARGS": args, "CNI_PATH": "/nonexistent",
               "VLANPIPE_CONFIG": config_path}
    for key, value in environ.items():
        if value:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)
    stdin = io.TextIOWrapper(io.BytesIO(json.dumps(netconf).encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    capsys.readouterr()
    status = main()
    out = capsys.readouterr().out
    return status, json.loads(out) if out.strip() else None
