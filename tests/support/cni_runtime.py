"""Calling the CNI front-end exactly as a container runtime does, for tests.

Each call is a fresh process: the CNI_* variables in its environment, the
network config on stdin, stdout read as one JSON document (a result, an
error, or nothing at all) and stderr kept apart, as runtimes keep it (they log
it, never parse it). The netns is given as cri-dockerd gives it,
`/proc/<PID>/ns/net`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import yaml

from tests.support import pluginstate
from tests.support.hostnet import Container

COMMAND = (sys.executable, "-m", "plugin.frontends.cni")
CNI_PATH = "/usr/lib/cni"  # Debian's containernetworking-plugins: host-local, static


@dataclass(frozen=True)
class Reply:
    status: int
    stdout: str
    stderr: str

    @property
    def body(self) -> dict[str, Any] | None:
        """stdout as the runtime parses it: one JSON object, or None when empty."""
        return json.loads(self.stdout) if self.stdout.strip() else None

    @property
    def code(self) -> int | None:
        """The CNI error code (None on success)."""
        return self.body["code"] if self.status and self.body else None


def with_capabilities(plugin: Mapping[str, Any], **capability_args: Any) -> dict[str, Any]:
    """A plugin's config as libcni hands it over (injectRuntimeConfig, libcni 1.x): of the
    runtime's capability arguments (Multus: the annotation's `mac`, `ips`; a CRI runtime:
    `portMappings`, `bandwidth`...), only those the config's `capabilities` map declares
    true, under `runtimeConfig`; no `runtimeConfig` at all when none is. containerd 1.6's
    `ctr` passes no capability arguments, so tests inject them here."""
    declared = plugin.get("capabilities") or {}
    passed = {name: value for name, value in capability_args.items()
              if declared.get(name) is True}
    return {**plugin, "runtimeConfig": passed} if passed else dict(plugin)


def pod_args(namespace: str, pod: str, infra_id: str) -> str:
    return (f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={pod};"
            f"K8S_POD_INFRA_CONTAINER_ID={infra_id}")


@dataclass
class Runtime:
    """A CNI runtime on a node whose config (root's, found through $VLANPIPE_CONFIG) keeps
    state and log in the test's folder; the network configs are the tenant's."""

    root: str
    node: dict[str, Any] = field(default_factory=dict)  # the node config's keys beyond those
    # A node of its own, unique across test sessions: gc and list see only this one's ports.
    node_name: str = field(default_factory=lambda: f"test-{secrets.token_hex(4)}")
    # What the runtime executes: the checkout's front-end, or an installed plugin's path.
    command: Sequence[str] = COMMAND

    def __post_init__(self) -> None:
        self.bridges: set[str] = set()
        self.configure(**self.node)

    @property
    def state_dir(self) -> str:
        return os.path.join(self.root, "state")

    @property
    def log_file(self) -> str:
        return os.path.join(self.root, "log", "vlanpipe.log")

    @property
    def config_path(self) -> str:
        return os.path.join(self.root, "node", "config.yaml")

    @property
    def ipam_data_dir(self) -> str:
        return os.path.join(self.root, "host-local")

    def configure(self, **keys: Any) -> None:
        """Write the node config: its defaults for a test, with `keys` over them. The bridges
        the test's network configs name are allowed unless `cni` says otherwise."""
        self.node = keys
        cni = {"bridges": sorted(self.bridges | {"k8s_br"}), "ipam_data_dir": self.ipam_data_dir}
        config = {"state_dir": self.state_dir, "log": {"file": self.log_file},
                  "node_name": self.node_name,
                  "networks": [{"name": "pods", "vlans": "all", "subnet": "10.97.0.0/24"}],
                  **keys, "cni": {**cni, **keys.get("cni", {})}}
        os.makedirs(os.path.dirname(self.config_path), mode=0o755, exist_ok=True)
        with open(self.config_path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(config, handle)

    def netconf(self, version: str, bridge: str, **keys: Any) -> dict[str, Any]:
        """A network config, as a namespace user writes it."""
        if bridge not in self.bridges:
            self.bridges.add(bridge)
            self.configure(**self.node)
        return {"cniVersion": version, "name": "vlan-net", "type": "vlanpipe", "bridge": bridge,
                **keys}

    def __call__(self, command: str, conf: Mapping[str, Any] | bytes,
                 container: Container | None = None, ifname: str = "net1", args: str = "",
                 env: Mapping[str, str] | None = None, drop: Sequence[str] = (),
                 timeout: float = 120) -> Reply:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
        environment.update({"CNI_COMMAND": command, "CNI_IFNAME": ifname, "CNI_PATH": CNI_PATH,
                            "VLANPIPE_CONFIG": self.config_path})
        if container is not None:
            environment["CNI_CONTAINERID"] = container.id
            environment["CNI_NETNS"] = f"/proc/{container.pid}/ns/net"
        if args:
            environment["CNI_ARGS"] = args
        environment.update(env or {})
        for name in drop:
            environment.pop(name, None)
        stdin = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
        proc = subprocess.run(list(self.command), input=stdin, capture_output=True,
                              env=environment, timeout=timeout)
        return Reply(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    def ok(self, command: str, conf: Mapping[str, Any], *args: Any, **kwargs: Any) -> Reply:
        reply = self(command, conf, *args, **kwargs)
        assert reply.status == 0, f"{command} exited {reply.status}: {reply.stdout} {reply.stderr}"
        return reply

    def fails(self, code: int, command: str, conf: Mapping[str, Any] | bytes, *args: Any,
              **kwargs: Any) -> dict[str, Any]:
        """The call fails with CNI error `code`, as one error object on stdout."""
        reply = self(command, conf, *args, **kwargs)
        assert reply.status != 0 and reply.code == code, f"{reply.stdout} {reply.stderr}"
        body = reply.body
        assert body is not None and set(body) == {"cniVersion", "code", "msg", "details"}, body
        return body

    def log_records(self) -> list[dict[str, Any]]:
        return pluginstate.log_records(self.log_file)
