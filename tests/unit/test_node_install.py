"""scripts/node-install refuses bad input with one line and creates nothing.

Every case fails before pip would run, so it needs no package index and no daemon (the
installs themselves are tests/e2e/test_install.py). The node's paths live in the test's
folder; after a refusal that folder holds exactly what the test put there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "node-install"


def node_env(node: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLANPIPE_")}
    env.update(PYTHON=sys.executable, VLANPIPE_PREFIX=str(node / "opt" / "vlanpipe"),
               VLANPIPE_PLUGIN_DIR=str(node / "plugins"),
               VLANPIPE_CNI_BIN_DIR=str(node / "opt" / "cni" / "bin"),
               VLANPIPE_CONFIG=str(node / "etc" / "vlanpipe" / "config.yaml"),
               VLANPIPE_UNIT_DIR=str(node / "etc" / "systemd" / "system"))
    return env


def tree(node: Path) -> dict[str, str]:
    return {str(p.relative_to(node)): p.read_text() if p.is_file() else ""
            for p in sorted(node.rglob("*"))}


def run(script: Path, node: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *args], env=node_env(node), text=True,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


@pytest.fixture
def node(tmp_path: Path) -> Path:
    path = tmp_path / "node"
    path.mkdir()
    return path


@pytest.mark.parametrize("args,needle", [
    (["--name", ".hidden"], "node-install: install: plugin name '.hidden' cannot be used; use a "
                            "plain name such as myplugin, or vendor/name"),
    (["--exec", "--name", "a~b"], "plugin name 'a~b' cannot be used"),
    (["--prefix", "opt/vlanpipe"], "'opt/vlanpipe' is not an absolute path"),
    (["--cni-bin-dir", "bin"], "'bin' is not an absolute path"),
    (["--prefix"], "--prefix needs a value"),
    (["--python", "/nonexistent/python3"], "cannot run '/nonexistent/python3': install the "
                                           "distribution's python3, or give --python"),
])
def test_bad_input_is_one_line_and_creates_nothing(node, args, needle):
    proc = run(SCRIPT, node, *args)
    assert proc.returncode == 1 and proc.stdout == "", proc
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and needle in proc.stderr, proc.stderr
    assert tree(node) == {}


def test_unknown_argument_prints_the_usage(node):
    proc = run(SCRIPT, node, "--frobnicate")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == "node-install: unknown argument '--frobnicate'"
    assert "scripts/node-install --uninstall" in proc.stderr and tree(node) == {}


def test_a_folder_it_did_not_make_is_neither_used_nor_removed(node):
    prefix = node / "opt" / "vlanpipe"
    prefix.mkdir(parents=True)
    (prefix / "data").write_text("someone else's")
    before = tree(node)
    proc = run(SCRIPT, node)
    assert proc.returncode == 1 and "is not empty and has no node-install.manifest: choose " \
        "another --prefix" in proc.stderr, proc.stderr
    proc = run(SCRIPT, node, "--uninstall")
    assert proc.returncode == 1 and "has no node-install.manifest: it was not made by " \
        "node-install; remove it yourself" in proc.stderr, proc.stderr
    assert tree(node) == before


def test_uninstall_with_nothing_installed_succeeds(node):
    proc = run(SCRIPT, node, "--uninstall")
    assert proc.returncode == 0 and proc.stdout == f"nothing installed at {node}/opt/vlanpipe\n"
    assert tree(node) == {}


def wheelhouse(tmp_path: Path, built_for: str, wheels: list[str]) -> Path:
    """A wheelhouse's layout (scripts/wheelhouse makes the real one), wheels left empty:
    these cases are refused before pip opens one."""
    house = tmp_path / "vlanpipe-wheelhouse"
    (house / "scripts").mkdir(parents=True)
    (house / "wheels").mkdir()
    shutil.copy(SCRIPT, house / "scripts" / "node-install")
    shutil.copy(ROOT / "config.yaml", house / "config.yaml")
    (house / "deploy").mkdir()
    shutil.copy(ROOT / "deploy" / "vlanpipe-watch.service", house / "deploy")
    (house / "built-for").write_text(f"{built_for}\n")
    for name in wheels:
        (house / "wheels" / name).write_text("")
    return house


def test_a_wheelhouse_for_another_python_is_refused(tmp_path, node):
    house = wheelhouse(tmp_path, "2.7 x86_64", ["vlanpipe-0.1.0-py3-none-any.whl"])
    proc = run(house / "scripts" / "node-install", node)
    version = "%d.%d" % sys.version_info[:2]
    assert proc.returncode == 1, proc
    assert "this wheelhouse is for Python 2.7 x86_64 and " in proc.stderr, proc.stderr
    assert f" is Python {version} " in proc.stderr and "scripts/wheelhouse --python" in proc.stderr
    assert tree(node) == {}


def test_a_wheelhouse_with_two_plugin_wheels_is_refused(tmp_path, node):
    house = wheelhouse(tmp_path, "3.9 x86_64", ["vlanpipe-0.1.0-py3-none-any.whl",
                                                "vlanpipe-0.2.0-py3-none-any.whl"])
    proc = run(house / "scripts" / "node-install", node)
    assert proc.returncode == 1 and "must hold exactly one vlanpipe wheel" in proc.stderr, proc
    assert tree(node) == {}
