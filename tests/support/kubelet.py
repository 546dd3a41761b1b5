"""Calling the plugin exactly as the kubelet does, for tests and the benchmark.

The plugin is installed with its own `install` command as DIR/NAME/NAME, its
config.yaml beside it; each call is a fresh process with the exact argv, no
stdin, and stdout and stderr read together, as the kubelet reads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import secrets
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import yaml

from tests.support import pluginstate


@dataclass(frozen=True)
class Call:
    code: int
    output: str

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()


@dataclass
class Plugin:
    path: str
    config_path: str
    state_dir: str
    log_file: str
    # A node of its own: list and gc see only this plugin's ports, whatever else runs beside.
    node_name: str = field(default_factory=lambda: f"test-{secrets.token_hex(4)}")

    def __call__(self, *argv: str, env: Mapping[str, str] | None = None,
                 timeout: float = 120) -> Call:
        environment = {k: v for k, v in os.environ.items() if k != "VLANPIPE_CONFIG"}
        environment.update(env or {})
        proc = subprocess.run([self.path, *argv], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout, env=environment)
        return Call(proc.returncode, proc.stdout)

    def ok(self, *argv: str, **kwargs: Any) -> Call:
        call = self(*argv, **kwargs)
        assert call.code == 0, f"{argv} exited {call.code}: {call.output}"
        return call

    def configure(self, config: Mapping[str, Any]) -> None:
        """Rewrite config.yaml beside the plugin; state and log stay in the test's folder."""
        full = {"state_dir": self.state_dir, "log": {"file": self.log_file},
                "node_name": self.node_name, **config}
        with open(self.config_path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(full, handle)

    def log_records(self) -> list[dict[str, Any]]:
        return pluginstate.log_records(self.log_file)


def install(directory: str, name: str = "myplugin") -> str:
    """Run the plugin's own install command, as an operator would."""
    proc = subprocess.run([sys.executable, "-m", "plugin.frontends.exec_cli", "install",
                           "--dir", directory, "--name", name],
                          capture_output=True, text=True, check=True)
    return proc.stdout.split()[-1]


def interpreter(launcher: str) -> str:
    """The Python the installed launcher runs (its `#!` line names it, then `-I`)."""
    with open(launcher, encoding="utf-8") as handle:
        return handle.readline()[2:].split()[0]


def make_plugin(root: str, config: Mapping[str, Any], name: str = "myplugin") -> Plugin:
    path = install(os.path.join(root, "plugins"), name)
    plugin = Plugin(path, os.path.join(os.path.dirname(path), "config.yaml"),
                    os.path.join(root, "state"), os.path.join(root, "log", "vlanpipe.log"))
    plugin.configure(config)
    return plugin


def status_ip(output: str) -> str | None:
    """Parse status output the way the kubelet does: empty, or one PodNetworkStatus."""
    if not output.strip():
        return None
    status = json.loads(output)
    assert status.get("kind", "") in ("", "PodNetworkStatus"), output
    assert status.get("apiVersion", "") in ("", "v1beta1"), output
    return status["ip"]


def pod_args(namespace: str, pod: str, infra_id: str) -> Sequence[str]:
    return (namespace, pod, infra_id)
