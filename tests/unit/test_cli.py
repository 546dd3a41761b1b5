"""The command line speaks the ecosystem's conventions (issue 25, items 9 and 11-13): help on
every command, a version, the installed name in usage, one exit code per failure class (the
README's table is the code's), output within 80 columns, no Python `None`, and cluster
commands that say when etcd is not configured. No daemon: every case answers before one
would be asked, or reports that it cannot reach one."""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.test_bad_input import CNI, EXEC

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["init", "setup", "teardown", "status", "install", "gc", "list", "doctor", "pin",
            "pin set", "pin get", "pin del", "version"]


@pytest.fixture
def node(tmp_path) -> Path:
    path = tmp_path / "etc" / "config.yaml"
    path.parent.mkdir(mode=0o755)
    path.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"),
                                    "log": {"file": str(tmp_path / "log" / "vlanpipe.log")},
                                    "docker_url": f"unix://{tmp_path}/no-docker.sock",
                                    "timeouts": {"ovs": 2, "docker": 2}}))
    return path


def call(argv, program=EXEC, env=None, **kwargs) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    environment.update(env or {})
    return subprocess.run([*program, *argv], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60, env=environment, **kwargs)


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_help_for_the_program(flag, node):
    proc = call([flag])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: vlanpipe ") and proc.stderr == ""
    for command in ("init", "setup", "gc", "doctor", "pin set", "version"):
        assert f"\n  {command}" in proc.stdout, command


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("command", COMMANDS)
def test_help_for_every_command_and_subcommand(command, flag, node):
    proc = call(["--config", str(node), *command.split(), flag])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"usage: vlanpipe {command}"), proc.stdout
    assert proc.stderr == "" and all(len(line) <= 80 for line in proc.stdout.splitlines())


@pytest.mark.parametrize("program", [EXEC, CNI], ids=["vlanpipe", "vlanpipe-cni"])
@pytest.mark.parametrize("flag", ["--version", "version"])
def test_version_on_both_executables(program, flag, node):
    proc = call([flag], program, env={"VLANPIPE_CONFIG": str(node)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = proc.stdout.splitlines()
    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                           capture_output=True, text=True)
    # A git checkout names its commit; a copy without .git (an installed wheel, the
    # mutation runner's copy of the tree) says "unknown".
    commit = found.stdout.strip() if found.returncode == 0 else "unknown"
    assert re.match(r"vlanpipe \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}|unknown)\), "
                    r"Python 3\.\d+", line), line
    assert f"commit {commit}" in line and "pipework" in line, line


def test_the_cni_executable_answers_operator_commands(node):
    """Without CNI_COMMAND, `vlanpipe-cni doctor` is the operator's doctor, not a CNI error."""
    installed = os.path.join(os.path.dirname(sys.executable), "vlanpipe-cni")
    proc = call(["--config", str(node), "doctor", "--help"], (installed,))
    assert proc.returncode == 0 and proc.stdout.startswith("usage: vlanpipe-cni doctor")


def test_usage_and_errors_show_the_installed_name(tmp_path, node):
    subprocess.run([sys.executable, "-m", "plugin.frontends.exec_cli", "install", "--dir",
                    str(tmp_path / "exec"), "--name", "myplugin"], check=True,
                   capture_output=True)
    launcher = str(tmp_path / "exec" / "myplugin" / "myplugin")
    assert call(["--help"], (launcher,)).stdout.startswith("usage: myplugin ")
    proc = call(["--config", str(node), "frobnicate"], (launcher,))
    assert proc.returncode == 2 and proc.stderr.startswith("myplugin: unknown command")


def exit_table() -> list[tuple[int, str]]:
    from plugin.frontends.exitcodes import TABLE

    return [(code, meaning) for _, code, meaning in TABLE]


def test_one_exit_code_per_failure_class_and_the_readme_table_is_the_code_table():
    from plugin.errors import (BackendError, ConfigError, EtcdError, LockTimeout,
                               ToolFailed)
    from plugin.frontends.exitcodes import exit_code

    codes = {kind.__name__: exit_code(kind("x")) for kind in
             (BackendError, ToolFailed, EtcdError, LockTimeout, ConfigError)}
    assert codes == {"BackendError": 6, "ToolFailed": 6, "EtcdError": 8, "LockTimeout": 9,
                     "ConfigError": 3}
    table = exit_table()
    assert len({code for code, _ in table}) == len(table)  # one class per code
    readme = (ROOT / "README.md").read_text()
    documented = re.findall(r"^\| (\d+) \| (.+?) \|$", readme.split("### Exit codes")[1],
                            re.M)
    assert [(int(code), meaning) for code, meaning in documented] == [(0, "success")] + table


def test_etcd_and_lock_timeouts_raise_their_own_classes(tmp_path):
    from plugin import locks
    from plugin.config.reader import Section
    from plugin.errors import EtcdError, LockTimeout
    from plugin.config.etcd import parse_etcd
    from plugin.ipam.stores.etcd_client import EtcdConnection

    config = parse_etcd(Section("t.yaml", {"endpoints": ["http://127.0.0.1:9"], "timeout": 1},
                                "etcd"))
    with pytest.raises(EtcdError, match="etcd unreachable"):
        EtcdConnection(config).get("/x")
    path = str(tmp_path / "lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(LockTimeout, match="still held"):
            with locks.locked(path, 0.2):
                pass
    finally:
        os.close(fd)


@pytest.mark.parametrize("argv", [["list", "--cluster"], ["gc", "--node", "gone"],
                                  ["gc", "--node", "gone", "--dry-run", "--json"]])
def test_cluster_commands_without_an_etcd_section_say_so(argv, node):
    proc = call(["--config", str(node), *argv])
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1
    assert "etcd is not configured" in proc.stderr and "etcd:" in proc.stderr


def test_doctor_fits_80_columns(node):
    """No daemon answers in the unit tier: every row that fails says so within 80 columns."""
    proc = call(["--config", str(node), "doctor"])
    assert proc.returncode == 1 and "FAIL" in proc.stdout
    assert all(len(line) <= 80 for line in (proc.stdout + proc.stderr).splitlines()), proc.stdout


def test_list_rows_fit_80_columns_and_show_no_none():
    from plugin.frontends.render import attachments
    from plugin.identity import Identity
    from plugin.ops.listing import Row

    rows = [Row(Identity("default", "22-" + "w" * 240, "c" * 12, "eth1"), "vp0123456789ab",
                "k8s_br", 22,
                "10.22.0.5/24,fd00:22::5/64", "0a:58:0a:16:00:05", "ok"),
            Row(Identity(pod="(uplink)", interface="eth2"), "eth2", "k8s_br", None, "", "",
                "uplink, trunks 22,23"),
            Row(Identity(), "/var/lib/vlanpipe/attachments/x.json", "", None, "", "",
                "damaged record: not JSON")]
    text = attachments(rows)
    assert "None" not in text and all(len(line) <= 80 for line in text.splitlines())
    assert "22-www" in text and "uplink, trunks 22,23" in text and "not JSON" in text


def test_not_root_is_one_clear_error(node):
    """In a user namespace of its own the plugin is uid 65534 (root is not mapped there)."""
    for argv in (["doctor"], ["gc"], ["list"], ["pin", "get", "default/22-web"]):
        proc = call(["--config", str(node), *argv], program=("unshare", "--user", *EXEC))
        assert proc.returncode == 10, proc.stdout + proc.stderr
        assert proc.stdout == "" and proc.stderr.splitlines() == [
            f"vlanpipe: {argv[0]} must run as root, not as uid 65534; run it as root (sudo)"]


def test_the_pipework_copy_has_one_name_the_2014_copy(tmp_path):
    """Issue 25 item 14: the copy scripts/host-setup installs is upstream as of 2014-11;
    doctor, `version`, the README and the bench all call it the 2014 copy."""
    from pipework_wrapper import pipework
    from plugin.config.schema import parse
    from plugin.ops.doctor import _pipework

    fake = tmp_path / "pipework"
    fake.write_text("#!/bin/sh\necho 'Syntax:'\necho 'pipework <hostinterface> [-i "
                    "containerinterface] <guest> <ipaddr>/<subnet>[@default_gateway] "
                    "[macaddr][@vlan]'\nexit 1\n")
    fake.chmod(0o755)
    assert pipework.generation(str(fake)) == "2014"
    detail = _pipework(parse({"pipework": str(fake)}, "test"))
    assert "the 2014 copy" in detail and "2015" not in detail
    for path in ("README.md", "pipework_wrapper/pipework.py", "scripts/host-setup",
                 "bench/machine.py"):
        text = (ROOT / path).read_text()
        assert "2015" not in text and "2014 copy" in text.replace("2014 one", "2014 copy"), path


GC_PROBE = """
import gc, os, sys
from plugin.frontends import exec_cli

real_exit = os._exit
os._exit = lambda code: (print("collector", gc.isenabled(), "code", code), sys.stdout.flush(),
                         real_exit(0))
sys.argv = ["vlanpipe", "--config", *sys.argv[1:]]
exec_cli.run()
"""


@pytest.mark.parametrize("argv, collector", [
    (["status", "default", "22-a", "ab" * 32], False),  # a pod's call, as the kubelet's
    (["list"], True),  # an operator's command: may run long over many objects
])
def test_pod_calls_run_without_the_cyclic_collector_operator_commands_with(argv, collector,
                                                                           node):
    proc = subprocess.run([sys.executable, "-I", "-c", GC_PROBE, str(node), *argv],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert f"collector {collector} " in proc.stdout, proc.stdout + proc.stderr
