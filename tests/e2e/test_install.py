"""The README's install, run as written: a node install that serves real pods, then leaves nothing.

The commands are read from the README's fenced blocks marked `<!-- tested: NAME -->`, so
the documentation cannot drift from what is tested. They run in a copy of this tree (what
an operator's checkout holds), with every node path moved into the test's folder through
the variables the README documents. Then, through what was installed: the kubelet's
`init`, `setup`, `status` and `teardown` of a real Docker pod with the kubelet's argv, and a
CNI ADD and DEL through the CNI link, each with a decoy `python3` first on the PATH and
PYTHONHOME/PYTHONPATH set to nonsense (the launcher must name its venv's interpreter and
ignore them). Last, the uninstall, after which the node folder holds the config only.

Two ways in: from the checkout with Debian's own python3 (PEP 668: it refuses `pip
install` into itself) and the package index; and from a wheelhouse built for the oldest
Python that setup.cfg declares, installed with no index and no network (`unshare --net`:
no route at all), the machine's pip configuration ignored.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import pytest

from tests.support import hostnet, pluginstate
from tests.support.cni_runtime import Runtime, pod_args
from tests.support.hostnet import Container
from tests.support.kubelet import Plugin, status_ip

REPO = Path(__file__).resolve().parents[2]
MARKED = re.compile(r"^<!-- tested: ([\w-]+) -->\n```sh\n(.*?)^```$", re.M | re.S)
BLOCKS = ("install", "uninstall", "install-cni", "wheelhouse-build", "wheelhouse-node")
ARCHIVE = "dist/vlanpipe-wheelhouse.tar.gz"  # what the README says to copy to the nodes
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SUBNET = "10.95.0.0/24"
NS = "default"


def readme_blocks() -> dict[str, str]:
    found = MARKED.findall((REPO / "README.md").read_text(encoding="utf-8"))
    blocks = dict(found)
    assert len(blocks) == len(found) and sorted(blocks) == sorted(BLOCKS), sorted(blocks)
    return blocks


def run_block(name: str, cwd: Path, env: Mapping[str, str], network: bool = True) -> str:
    """One README block as a shell script: the commands exactly as an operator pastes them."""
    argv = ["bash", "-euo", "pipefail", "-c", readme_blocks()[name]]
    if not network:
        argv = ["unshare", "--net", "--", *argv]
    proc = subprocess.run(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"README block {name!r} exited {proc.returncode}:\n" \
                                 f"{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@dataclass(frozen=True)
class Node:
    """A node's install paths, all under `root`."""

    root: Path

    @property
    def prefix(self) -> Path:
        return self.root / "opt" / "vlanpipe"

    @property
    def plugin_dir(self) -> Path:
        return self.root / "usr" / "libexec" / "kubernetes" / "kubelet-plugins" / "net" / "exec"

    @property
    def launcher(self) -> Path:
        return self.plugin_dir / "myplugin" / "myplugin"

    @property
    def cni_link(self) -> Path:
        return self.root / "opt" / "cni" / "bin" / "vlanpipe"

    @property
    def config(self) -> Path:
        return self.root / "etc" / "vlanpipe" / "config.yaml"

    @property
    def unit(self) -> Path:
        return self.root / "etc" / "systemd" / "system" / "vlanpipe-watch.service"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("VLANPIPE_", "PYTHON", "CNI_"))}
        env.update(VLANPIPE_PREFIX=str(self.prefix), VLANPIPE_PLUGIN_DIR=str(self.plugin_dir),
                   VLANPIPE_CNI_BIN_DIR=str(self.cni_link.parent),
                   VLANPIPE_CONFIG=str(self.config), VLANPIPE_UNIT_DIR=str(self.unit.parent),
                   **extra)
        return env

    def outside_the_venv(self) -> dict[str, str]:
        """Every path under root but the venv's contents: a file's content, a link's target."""
        return {str(p.relative_to(self.root)): f"-> {os.readlink(p)}" if p.is_symlink()
                else p.read_text() if p.is_file() else ""
                for p in sorted(self.root.rglob("*"))
                if not p.is_relative_to(self.prefix) or p == self.prefix}


@pytest.fixture(scope="session")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This tree as an operator's checkout holds it: the files git knows, as they are now."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True,
                            timeout=60).stdout.decode().split("\0")
    copy = tmp_path_factory.mktemp("checkout")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


@pytest.fixture(scope="session")
def oldest_python(checkout: Path) -> str:
    oldest = subprocess.run(["bash", "scripts/pythons", "range"], cwd=checkout, check=True,
                            capture_output=True, text=True, timeout=60).stdout.split()[0]
    found = subprocess.run(["bash", "scripts/pythons", "find", oldest], cwd=checkout,
                           capture_output=True, text=True, timeout=60)
    if found.returncode:
        pytest.fail(f"no python{oldest} on this machine, which setup.cfg declares", pytrace=False)
    return found.stdout.strip()


@pytest.fixture(scope="session")
def wheelhouse(checkout: Path, oldest_python: str) -> Path:
    """The README's wheelhouse, built once per session for the oldest declared Python."""
    run_block("wheelhouse-build", checkout, {**os.environ, "PYTHON": oldest_python})
    return checkout / ARCHIVE


def check_installed(node: Node, interpreter: str, checkout: Path) -> None:
    """The launcher and the CNI link name the venv's interpreter, itself the one asked for;
    the config is the documented defaults."""
    assert os.path.realpath(node.prefix / "bin" / "python") == os.path.realpath(interpreter)
    assert node.launcher.read_text().splitlines()[0] == f"#!{node.prefix}/bin/python -I"
    target = Path(os.readlink(node.cni_link))
    assert target.is_relative_to(node.prefix), target
    assert target.read_text().splitlines()[0] == f"#!{node.prefix}/bin/python -I"
    assert node.config.read_bytes() == (checkout / "config.yaml").read_bytes()
    unit = node.unit.read_text()  # the watcher's unit, naming this install's paths
    assert f"ExecStart={node.prefix}/bin/python -I -m plugin.frontends.exec_cli watch\n" in unit
    assert f"Environment=VLANPIPE_CONFIG={node.config}\n" in unit and "@" not in unit


def hostile_environment(work: Path) -> dict[str, str]:
    """A `python3` and `python` first on the PATH that fail, and PYTHONHOME/PYTHONPATH
    pointing at them: an installed plugin that used either would fail."""
    decoys = work / "decoys"
    decoys.mkdir(parents=True)
    for name in ("python3", "python"):
        (decoys / name).write_text("#!/bin/sh\necho decoy python >&2\nexit 99\n")
        (decoys / name).chmod(0o755)
    return {"PATH": f"{decoys}:{os.environ['PATH']}", "PYTHONHOME": str(decoys),
            "PYTHONPATH": str(decoys)}


def serve_pods(node: Node, bridge: str, make_container: Callable[..., Container],
               work: Path) -> None:
    """The kubelet's four commands and a CNI ADD/DEL, through what was installed."""
    hostile = hostile_environment(work)
    plugin = Plugin(str(node.launcher), str(node.config), str(work / "state"),
                    str(work / "log" / "vlanpipe.log"))
    plugin.configure({"bridge": bridge, "status": {"report": "vlan"},
                      "networks": [{"name": "pods", "vlans": "all", "subnet": SUBNET}]})
    kubelet_env = {**hostile, "VLANPIPE_CONFIG": str(node.config)}
    pod = make_container("kubelet")
    assert plugin.ok("init", env=kubelet_env).output == ""
    assert plugin.ok("setup", NS, "22-web", pod.id, env=kubelet_env).output == ""
    address = status_ip(plugin.ok("status", NS, "22-web", pod.id, env=kubelet_env).output)
    assert hostnet.container_addresses(pod.id, "eth1") == [f"{address}/24"]
    (port,) = pluginstate.our_ports(bridge).values()
    assert port["tag"] == 22 and port["external_ids"]["vlanpipe-infra-id"] == pod.id
    assert plugin.ok("teardown", NS, "22-web", pod.id, env=kubelet_env).output == ""
    assert pluginstate.our_ports(bridge) == {} and pluginstate.leases(plugin.state_dir) == []
    assert [(r["command"], r["outcome"]) for r in plugin.log_records()] == [
        ("init", "ok"), ("setup", "ok"), ("teardown", "ok")]

    runtime = Runtime(str(work / "cni"), command=(str(node.cni_link),))
    conf = runtime.netconf("1.0.0", bridge, vlan=23)
    sandbox = make_container("cni")
    result = runtime.ok("ADD", conf, sandbox, args=pod_args(NS, "web", sandbox.id),
                        env=hostile).body
    assert result is not None
    (ip,) = result["ips"]
    assert hostnet.container_addresses(sandbox.id, "net1") == [ip["address"]]
    (port,) = pluginstate.our_ports(bridge).values()
    assert port["tag"] == 23
    assert runtime.ok("DEL", conf, sandbox, env=hostile).stdout == ""
    assert pluginstate.our_ports(bridge) == {} and pluginstate.leases(runtime.state_dir) == []
    assert hostnet.container_addresses(sandbox.id, "net1") == []


def uninstall_leaves_the_config(node: Node, cwd: Path) -> None:
    config = node.config.read_text()
    run_block("uninstall", cwd, node.env())
    assert node.outside_the_venv() == {"etc": "", "etc/vlanpipe": "",
                                       "etc/vlanpipe/config.yaml": config}


def test_readme_install_from_the_checkout_with_the_system_python(
        checkout, oldest_python, bridge, make_container, tmp_path):
    """Debian's python3, externally managed, serves as the venv's interpreter; a venv of
    another minor version (the node's Python before a distribution upgrade) is made anew."""
    system = subprocess.run(["/usr/bin/python3", "-c", "import sysconfig; "
                             "print(sysconfig.get_path('stdlib'))"], capture_output=True,
                            text=True, check=True, timeout=60).stdout.strip()
    assert (Path(system) / "EXTERNALLY-MANAGED").is_file(), f"{system}: not a PEP 668 Python"
    node = Node(tmp_path / "node")
    node.root.mkdir()
    env = node.env(PATH=SYSTEM_PATH)  # python3 is the distribution's, as on a fresh node

    run_block("install", checkout, {**env, "PYTHON": oldest_python})
    check_installed(node, oldest_python, checkout)
    output = run_block("install", checkout, env)
    assert f"making the venv in {node.prefix} again: its Python is '3." in output, output
    check_installed(node, "/usr/bin/python3", checkout)
    node.config.write_text(node.config.read_text() + "# edited by the operator\n")
    before = node.outside_the_venv()
    run_block("install", checkout, env)  # again: the same install, the edited config kept
    assert node.outside_the_venv() == before

    serve_pods(node, bridge, make_container, tmp_path / "work")

    run_block("install-cni", checkout, env)  # the CNI section's command: the CNI plugin only
    assert not node.launcher.exists() and node.cni_link.is_symlink()
    uninstall_leaves_the_config(node, checkout)


def test_readme_wheelhouse_install_with_no_index_and_no_network(
        wheelhouse, oldest_python, checkout, bridge, make_container, tmp_path):
    """Built once with the index; installed on the node with none, under the oldest
    declared Python (RHEL 9's 3.9), which then serves the pods."""
    for family in ("-4", "-6"):
        routes = hostnet.run(["unshare", "--net", "--", "ip", family, "route", "show"])
        assert routes.stdout.strip() == "", routes.stdout  # where pip runs, no route at all
    home = tmp_path / "node-home"
    home.mkdir()
    shutil.copy(wheelhouse, home)
    node = Node(tmp_path / "node")
    node.root.mkdir()
    env = {k: v for k, v in node.env(PYTHON=oldest_python).items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # this machine's local indexes and wheel folders too

    run_block("wheelhouse-node", home, env, network=False)
    check_installed(node, oldest_python, home / "vlanpipe-wheelhouse")
    serve_pods(node, bridge, make_container, tmp_path / "work")
    uninstall_leaves_the_config(node, home / "vlanpipe-wheelhouse")
