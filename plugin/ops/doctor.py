"""`doctor`: is this node ready for the plugin? One line per check, with the fix.

Each check runs on its own: a failing one never hides the others, because an
operator wants the whole list at once.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from typing import Callable

from plugin.errors import PluginError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks(core, executable: str) -> list[Check]:
    config = core.config
    checks: list[tuple[str, Callable[[], str], str]] = [
        ("config", lambda: f"valid: {config.source}", "fix the config file"),
        ("open vswitch", lambda: _ovs(core), "start ovsdb-server and ovs-vswitchd (scripts/host-setup)"),
        *[(f"bridge {b}", (lambda b=b: _bridge(core, b)), "run the plugin's init command")
          for b in sorted({a.bridge for a in config.attachments})],
        ("docker", lambda: _docker(core), "start dockerd or set docker_url"),
        ("pipework", lambda: _pipework(config.pipework),
         "install pipework on the PATH or set pipework: to its path"),
        ("tools", _tools, "install iproute2 and util-linux"),
        ("kubelet install", lambda: _installed(executable), "run: vlanpipe install --dir DIR --name NAME"),
        ("log directory", lambda: _writable(os.path.dirname(config.log_file) or "."),
         f"create {os.path.dirname(config.log_file)} writable by root"),
        ("state directory", lambda: _private(config.state_dir), f"run chmod go-w {config.state_dir}"),
        ("allocators", lambda: f"{len(core.ipam.leases())} leases in use", "check the etcd section"),
    ]
    results = []
    for name, probe, fix in checks:
        try:
            results.append(Check(name, True, probe()))
        except PluginError as exc:
            results.append(Check(name, False, exc.line(), fix))
        except OSError as exc:
            results.append(Check(name, False, str(exc), fix))
    return results


def _ovs(core) -> str:
    version = core.ovs.vsctl("--version").splitlines()[0]
    core.ovs.vsctl("show")
    return f"answers ({version})"


def _bridge(core, bridge: str) -> str:
    row = core.ovs.bridge(bridge)
    wanted = core.config.datapath_type
    if row is None:
        raise PluginError(f"bridge {bridge} does not exist")
    if wanted and row["datapath_type"] != wanted:
        raise PluginError(f"bridge {bridge} has datapath_type {row['datapath_type']!r}, "
                          f"config says {wanted!r}")
    return f"exists, datapath_type {row['datapath_type'] or 'system'}"


def _docker(core) -> str:
    from pipework_wrapper.docker_lookup import running_ids

    count = len(running_ids(core.config.docker_url, core.config.docker_timeout))
    return f"answers at {core.config.docker_url}, {count} containers running"


def _pipework(program: str) -> str:
    """pipework run with no arguments prints its syntax and exits 1, in every version."""
    from pipework_wrapper.command import run

    path = shutil.which(program)
    if path is None:
        raise PluginError(f"{program} not found")
    result = run(path, [], timeout=10, ok=(0, 1))
    if "Syntax" not in result.output or "@vlan" not in result.output.lower():
        raise PluginError(f"{path} does not print the expected syntax (VLAN support missing?)")
    return f"found at {path}, supports VLANs"


def _tools() -> str:
    missing = [t for t in ("ovs-vsctl", "ip", "nsenter") if shutil.which(t) is None]
    if missing:
        raise PluginError(f"not on the PATH: {', '.join(missing)}")
    return "ovs-vsctl, ip and nsenter found"


def _installed(executable: str) -> str:
    path = os.path.abspath(executable)
    parent = os.path.basename(os.path.dirname(path))
    if not os.access(path, os.X_OK):
        raise PluginError(f"{path} is not executable")
    if parent != os.path.basename(path):
        raise PluginError(f"{path} is not laid out as DIR/NAME/NAME, the kubelet will not find it")
    return f"{path} (--network-plugin={parent.replace('~', '/')} " \
           f"--network-plugin-dir={os.path.dirname(os.path.dirname(path))})"


def _writable(directory: str) -> str:
    os.makedirs(directory, mode=0o755, exist_ok=True)
    if not os.access(directory, os.W_OK):
        raise PluginError(f"{directory} is not writable")
    return f"{directory} writable"


def _private(directory: str) -> str:
    _writable(directory)
    mode = os.stat(directory).st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PluginError(f"{directory} is writable by others (mode {oct(mode & 0o777)})")
    return f"{directory} writable by its owner only"
