"""The one way the plugin runs a program: bounded with its whole process tree, dying with
the plugin, handing a held pod lock to its children. Real processes (sh, sleep), no daemon."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml

from pipework_wrapper import command
from pipework_wrapper.errors import ToolFailed
from tests.unit.test_bad_input import EXEC

# A "tool" that forks a child which holds stdout and acts after a delay, then waits for it:
# the shape of pipework running ip or ovs-vsctl.
SLOW_CHILD = 'sh -c "sleep {delay}; touch {marker}" & wait'

def wait_for(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()

def test_a_timeout_ends_the_whole_tree_so_no_child_acts_after_it(tmp_path):
    marker = tmp_path / "acted"
    with pytest.raises(ToolFailed, match="did not finish within 0.5s; it and its children "
                                         "were stopped"):
        command.run("sh", ["-c", SLOW_CHILD.format(delay=3, marker=marker)], timeout=0.5)
    # The grandchild was killed with its group: three seconds on, it has done nothing.
    time.sleep(3.5)
    assert not marker.exists()

def test_output_input_and_exit_codes(tmp_path):
    assert command.run("cat", [], timeout=5, input=b"hello").stdout == "hello"
    assert command.run("sh", ["-c", "echo out; echo err >&2; exit 3"], timeout=5,
                       ok=(3,)).output == "out err"
    with pytest.raises(ToolFailed, match=r"sh -c exit 4... failed \(exit 4\)"):
        command.run("sh", ["-c", "exit 4"], timeout=5)
    with pytest.raises(ToolFailed, match="no-such-tool not found on PATH"):
        command.run("no-such-tool", [], timeout=5)

def test_children_die_with_a_killed_caller(tmp_path):
    """The caller is SIGKILLed mid-call: its child gets SIGKILL from the kernel at once."""
    pidfile = tmp_path / "child.pid"
    script = ("from pipework_wrapper import command\n"
              f"command.run('sh', ['-c', 'echo $$ > {pidfile}; exec sleep 60'], timeout=60)\n")
    caller = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd())
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
    child = int(pidfile.read_text())
    caller.kill()
    caller.wait()
    assert wait_for(lambda: not _alive(child))

def test_a_held_lock_and_token_pass_to_every_child(tmp_path):
    lock = tmp_path / "lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    with command.inherit(fd, {"VLANPIPE_LOCK_TOKEN": "t1"}):
        found = command.run("sh", ["-c", f'echo "$VLANPIPE_LOCK_TOKEN"; ls /proc/self/fd/{fd}'],
                            timeout=5)
    assert found.stdout.split()[0] == "t1"
    outside = command.run("sh", ["-c", 'echo "x$VLANPIPE_LOCK_TOKEN"'], timeout=5)
    assert outside.stdout.strip() == "x"
    os.close(fd)

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_docker_that_accepts_and_never_answers_is_bounded_by_timeouts_docker(tmp_path):
    """The Docker SDK's own timeout bounds a lookup: a socket that takes the request and
    stays silent ends the setup with a clean error (code 5), not a hang."""
    path = str(tmp_path / "silent.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
    config = tmp_path / "etc" / "config.yaml"
    config.parent.mkdir(mode=0o755)
    config.write_text(yaml.safe_dump({
        "state_dir": str(tmp_path / "state"), "log": {"file": str(tmp_path / "log")},
        "docker_url": f"unix://{path}", "timeouts": {"docker": 1}}))
    try:
        proc = subprocess.run(
            [*EXEC, "--config", str(config), "setup", "default", "22-web", "c" * 64],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, timeout=30)  # unbounded, it would hang here
    finally:
        server.close()
        for connection in held:
            connection.close()
    assert held, "the plugin never asked the socket"
    assert proc.returncode == 5 and len(proc.stdout.splitlines()) == 1, proc.stdout
    assert f"Docker does not answer at unix://{path}" in proc.stdout, proc.stdout
