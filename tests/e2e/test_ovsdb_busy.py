"""A busy ovsdb-server makes the plugin's ovs-vsctl, and pipework's, wait: not fail.

Issue 23, item 3: 110 pods set up at once through the exec plugin failed 8 to 54 of
their setups with "ovs-vsctl: unix:/var/run/openvswitch/db.sock: database connection
failed (Protocol error)": while ovsdb-server is busy, more clients connect than its
listen backlog holds; connect(2) then fails with EAGAIN, which Open vSwitch reports as
EPROTO, and ovs-vsctl without `--retry` gives up at once. pipework's own `ovs-vsctl
list-br` failing made it take the bridge for a physical interface ("Unknown device
type").

On cue, with a private ovsdb-server (its own database and socket, reached through
OVS_RUNDIR; the host's daemons are not touched): stopped (SIGSTOP), its backlog is
filled with connections until connect(2) is refused; then a call runs while a timer
lets the server go on a second later. Without `--retry` the call fails at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest
from plumbum import local

from pipework_wrapper import pipework
from pipework_wrapper.ovs import Ovs
from plugin.config.schema import Config
from tests.support import hostnet

from .test_faults import stand_in

OVS_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


@pytest.fixture(params=[1.0])
def busy_ovsdb(request: pytest.FixtureRequest, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Timer]:
    """A private ovsdb-server whose backlog is full; the timer it yields resumes it after
    `request.param` seconds."""
    db, sock = tmp_path / "conf.db", tmp_path / "db.sock"
    hostnet.run(["ovsdb-tool", "create", str(db), OVS_SCHEMA])
    # ovs-vsctl's default db.sock is there: for this process's children, and for the
    # plugin's, which plumbum starts with the environment it copied at import
    monkeypatch.setenv("OVS_RUNDIR", str(tmp_path))
    monkeypatch.setitem(local.env, "OVS_RUNDIR", str(tmp_path))
    server = subprocess.Popen(["ovsdb-server", str(db), f"--remote=punix:{sock}",
                               f"--unixctl={tmp_path / 'ctl'}", "-vconsole:off",
                               f"--log-file={tmp_path / 'ovsdb-server.log'}"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    fillers: list[socket.socket] = []
    try:
        hostnet.wait_until(sock.exists, timeout=10)
        subprocess.run(["ovs-vsctl", "--timeout=5", "--no-wait", "init"], check=True,
                       timeout=10)
        server.send_signal(signal.SIGSTOP)
        while len(fillers) < 4096:  # until the kernel refuses: the backlog is full
            one = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            one.setblocking(False)
            fillers.append(one)
            try:
                one.connect(str(sock))
            except BlockingIOError:
                break
        else:
            pytest.fail("ovsdb-server's backlog never filled")

        def resume() -> None:
            for one in fillers:
                one.close()
            server.send_signal(signal.SIGCONT)

        timer = threading.Timer(request.param, resume)
        yield timer
        timer.cancel()
        resume()
    finally:
        server.send_signal(signal.SIGCONT)
        server.terminate()
        server.wait(timeout=10)
        for one in fillers:
            one.close()


def test_a_refused_connection_fails_ovs_vsctl_without_retry(busy_ovsdb) -> None:
    """The cue is real: this is the failure the burst met."""
    done = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True,
                          text=True, timeout=10)
    assert done.returncode != 0 and "Protocol error" in done.stderr, done.stderr


def test_the_plugins_ovs_vsctl_waits_for_a_busy_server(busy_ovsdb) -> None:
    busy_ovsdb.start()
    assert Ovs(timeout=5).bridges() == set()


@pytest.mark.parametrize("busy_ovsdb", [8.0], indirect=True)
def test_the_default_bound_outlasts_a_server_busy_for_seconds(busy_ovsdb) -> None:
    """110 setups at once on 2 cores kept ovs-vsctl calls waiting more than the former
    default of 5 s (teardowns failed with SIGALRM): the default bound is longer."""
    busy_ovsdb.start()
    assert Ovs(timeout=Config.ovs_timeout).bridges() == set()


def test_pipeworks_ovs_vsctl_waits_for_a_busy_server(busy_ovsdb, tmp_path: Path) -> None:
    folder = pipework.quiet_path(str(tmp_path / "quiet"), timeout=5)
    busy_ovsdb.start()
    done = subprocess.run([os.path.join(folder, "ovs-vsctl"), "list-br"], capture_output=True,
                          text=True, timeout=10)
    assert done.returncode == 0, done.stderr


def test_a_refused_ovs_vsctl_waits_in_one_more_process(busy_ovsdb, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Once ovsdb-server refused as busy it is running: ovs-vsctl's own `--retry` waits for
    it in one more process. A new ovs-vsctl every 50 ms cost 110 teardowns at once about
    185 processes a round (20 for this one second)."""
    calls = tmp_path / "calls"
    stand_in(tmp_path / "shims", "ovs-vsctl", f'echo "$*" >> {calls}')
    monkeypatch.setitem(local.env, "PATH", f"{tmp_path / 'shims'}:{local.env['PATH']}")
    busy_ovsdb.start()
    assert Ovs(timeout=5).bridges() == set()
    argvs = calls.read_text().splitlines()
    assert len(argvs) == 2 and argvs[1].startswith("--retry "), argvs
