"""`scripts/bench --cluster`, part 4: the kubelet's `status` on a full node, as a node runs it.

A regular (non-editable) install, as `scripts/node-install` makes one: a temporary venv
of the benchmark's own base interpreter, the plugin installed into it by pip from this
checkout (`--no-deps`; the dependencies are the running venv's, named by a .pth line,
which adds them to the path without running that venv's own .pth files, so the
editable install's finder stays out), and its launcher written by its own `vlanpipe
install`. An editable install's finder adds about 25 ms to every start, the bare
interpreter's too, and flatters the ratio (issue 23).

What is real at density: `status` reads its config cache entry and the pod's one record
file, and nothing else; no process, no socket (the audit below shows it on every run).
So the pods attached are, to `status`, their records: N files written by the plugin's
own `RecordStore`, in the format setup writes, in the state directory it reads; the
ports and containers of those pods would not be seen. The answer is checked.

Then, interleaved call by call: the launcher's status, `python -I -c pass` of the same
venv, and (informational) pip's console script `vlanpipe status`. With `before` (a git
revision), the same again for that revision's code, installed the same way beside it.
"""

from __future__ import annotations

import ast
import ipaddress
import json
import os
import secrets
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from typing import Any

import yaml

from bench import stats
from bench.contenders import NAMESPACE
from bench.proc import Sample, checked
from bench.setup_plugin import POOL_SUBNET, POOL_VLAN
from plugin.core.records import Attachment, RecordStore
from plugin.identity import Identity

AUDIT = r"""
import os, runpy, sys
launcher, *args = sys.argv[1:]
seen = {"open": [], "spawn": [], "connect": []}
def hook(event, payload):
    if event == "open" and isinstance(payload[0], str) and payload[0] != launcher \
            and not payload[0].endswith((".py", ".pyc", ".so", ".pth")):
        seen["open"].append(payload[0])
    elif event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork", "os.system"):
        seen["spawn"].append(event)
    elif event == "socket.connect":
        seen["connect"].append(str(payload[1]))
def leave(code):
    raise SystemExit(code)
os._exit = leave
sys.argv = [launcher, *args]
sys.addaudithook(hook)
try:
    runpy.run_path(launcher, run_name="__main__")
except SystemExit:
    pass
sys.stderr.write("AUDIT " + repr(seen) + "\n")
"""


@dataclass
class Plan:
    records: int  # pods attached: their record files in the state directory
    calls: int  # status calls (and as many bare interpreters) per install
    before: str | None = None  # a git revision to measure the same way, beside


@dataclass(frozen=True)
class Install:
    """One regular install: its venv's interpreter, the kubelet's launcher, pip's script."""

    label: str
    python: str
    launcher: str
    console_script: str
    config: str


def prepare(plan: Plan, root: str, repo: str) -> list[Install]:
    """The regular installs, made before the benchmark enters its private namespaces:
    pip may need the package index for setuptools, to build the plugin's wheel."""
    work = os.path.join(root, "status-density")
    installs = [regular_install(os.path.join(work, "now"), "now", repo)]
    if plan.before:
        source = os.path.join(work, "before-src")
        os.makedirs(source)
        archive = subprocess.run(["git", "-C", repo, "archive", plan.before], check=True,
                                 capture_output=True, timeout=60).stdout
        subprocess.run(["tar", "-x", "-C", source], input=archive, check=True, timeout=60)
        installs.append(regular_install(os.path.join(work, "before"), plan.before, source))
    return installs


def run(plan: Plan, installs: list[Install], root: str, config: dict[str, Any]) -> dict[str, Any]:
    """`plan.records` pods' records, then the interleaved calls of every install."""
    work = os.path.join(root, "status-density")
    state = os.path.join(work, "state")
    ids = write_records(state, plan.records)
    probe = ids[len(ids) // 2]
    full = {**config, "state_dir": state, "log": {"file": os.path.join(work, "log")},
            "node_name": "bench-density"}
    for install in installs:
        with open(install.config, "w", encoding="utf-8") as handle:
            yaml.safe_dump(full, handle)
    expected = f"{ipaddress.ip_network(POOL_SUBNET)[1 + ids.index(probe)]}"
    out: dict[str, Any] = {"records": plan.records, "calls": plan.calls, "installs": {}}
    for install in installs:
        argv = _status(install.launcher, probe)
        answer = json.loads(checked(argv).output)  # also the first call: fills the config cache
        if answer.get("ip") != expected:
            raise AssertionError(f"status answered {answer}, expected {expected}")
        at = _plugin_at(install.python)
        if not at.startswith(os.path.dirname(os.path.dirname(install.python)) + os.sep):
            raise AssertionError(f"the {install.label} install imports the plugin from {at}")
        out["installs"][install.label] = {"audit": audit(install, argv), "plugin_at": at}
    samples: dict[str, dict[str, list[Sample]]] = {
        i.label: {"status": [], "bare": [], "console script": []} for i in installs}
    for _ in range(plan.calls):
        for install in installs:
            mine = samples[install.label]
            mine["status"].append(checked(_status(install.launcher, probe)))
            mine["bare"].append(checked([install.python, "-I", "-c", "pass"]))
            mine["console script"].append(checked(
                [install.console_script, "--config", install.config, "status", NAMESPACE,
                 f"{POOL_VLAN}-fill-probe", probe]))
    for label, kinds in samples.items():
        out["installs"][label].update({kind: {"wall_ms": stats.summary(s.wall_ms for s in got),
                                              "cpu_ms": stats.median(s.cpu_ms for s in got)}
                                       for kind, got in kinds.items()})
    return out


def _status(launcher: str, infra_id: str) -> list[str]:
    return [launcher, "status", NAMESPACE, f"{POOL_VLAN}-fill-probe", infra_id]


def write_records(state: str, count: int) -> list[str]:
    """`count` attachments on the pool VLAN, one record file each, as setup writes them."""
    os.makedirs(state, mode=0o700)
    store = RecordStore(state)
    network = ipaddress.ip_network(POOL_SUBNET)
    ids = [secrets.token_hex(32) for _ in range(count)]
    for index, infra_id in enumerate(ids):
        address = f"{network[1 + index]}/{network.prefixlen}"
        who = Identity(NAMESPACE, f"{POOL_VLAN}-fill-p{index:03d}", infra_id, "eth1")
        store.save(infra_id, [Attachment(
            who, "bnch", f"vp{infra_id[:12]}", POOL_VLAN, "bench-pool", (address,),
            f"02:00:{index >> 8 & 255:02x}:{index & 255:02x}:00:01", ("",))])
    return ids


def regular_install(where: str, label: str, source: str) -> Install:
    """A venv with the plugin from `source` installed by pip, not in editable mode."""
    venv = os.path.join(where, "venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True,
                   timeout=120)
    python = os.path.join(venv, "bin", "python")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install",
                           "--no-deps", "--no-input", "--quiet", source],
                          capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"pip install of {source} into {venv} failed: {done.stderr[-1500:]}")
    purelib = subprocess.run([python, "-I", "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"], check=True,
                             capture_output=True, text=True, timeout=60).stdout.strip()
    with open(os.path.join(purelib, "bench-dependencies.pth"), "w", encoding="utf-8") as handle:
        handle.write(sysconfig.get_paths()["purelib"] + "\n")
    plugins = os.path.join(where, "plugins")
    subprocess.run([python, "-I", "-m", "plugin.frontends.exec_cli", "install", "--dir",
                    plugins, "--name", "myplugin"], check=True, capture_output=True, timeout=60)
    return Install(label, python, os.path.join(plugins, "myplugin", "myplugin"),
                   os.path.join(venv, "bin", "vlanpipe"),
                   os.path.join(plugins, "myplugin", "config.yaml"))


def _plugin_at(python: str) -> str:
    """Where that interpreter imports the plugin from: the venv, never the checkout."""
    return subprocess.run([python, "-I", "-c", "import plugin; print(plugin.__file__)"],
                          check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def audit(install: Install, argv: list[str]) -> dict[str, Any]:
    """The files one status call opens (its modules and launcher aside), processes it
    starts, sockets it connects."""
    done = subprocess.run([install.python, "-I", "-c", AUDIT, *argv], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    line = next((ln for ln in done.stderr.splitlines() if ln.startswith("AUDIT ")), None)
    if line is None:
        raise RuntimeError(f"status audit failed: {done.stderr[-1500:]}")
    return ast.literal_eval(line[len("AUDIT "):])
