"""A busy ovs-vswitchd makes the plugin's ovs-ofctl wait: not fail.

Issue 23, the full node in one burst: 110 card floors at once failed 88 of their
setups and 81 of their teardowns with "ovs-ofctl: /var/run/openvswitch/BRIDGE.mgmt:
failed to open socket (Protocol error)": more ovs-ofctl processes connect to the
bridge's management socket than ovs-vswitchd's listen backlog holds while it is busy,
connect(2) fails with EAGAIN, and Open vSwitch reports it as EPROTO, as it does for
ovsdb-server (tests/e2e/test_ovsdb_busy.py). The plugin's port security calls
ovs-ofctl in every setup and teardown: it must wait for the switch as its ovs-vsctl does.

On cue: the real bridge's management socket is reached through a socket of the test's
own (ovs-ofctl takes `unix:PATH` for a bridge) whose backlog is full; a timer then
empties it and lets every connection through to the bridge a second later.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest

from pipework_wrapper.ofctl import Ofctl

OVS_RUN = "/var/run/openvswitch"


@pytest.fixture
def busy_mgmt(bridge: str, tmp_path: Path) -> Iterator[tuple[str, threading.Timer]]:
    """`unix:PATH` of a socket in front of `bridge`'s management socket, its backlog full,
    and the timer that opens it a second later."""
    path = str(tmp_path / "mgmt")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    fillers: list[socket.socket] = []
    while len(fillers) < 4096:  # until the kernel refuses: the backlog is full
        one = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        one.setblocking(False)
        fillers.append(one)
        try:
            one.connect(path)
        except BlockingIOError:
            break
    else:
        pytest.fail("the backlog never filled")
    stop = threading.Event()

    def relay() -> None:
        for one in fillers:
            one.close()
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            switch = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                switch.connect(os.path.join(OVS_RUN, f"{bridge}.mgmt"))
            except OSError:
                client.close()  # a filler: its peer is gone
                continue
            for a, b in ((client, switch), (switch, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    timer = threading.Timer(1.0, relay)
    try:
        yield f"unix:{path}", timer
    finally:
        timer.cancel()
        stop.set()
        timer.join(timeout=5) if timer.is_alive() else None
        for one in fillers:
            one.close()
        listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for one in (source, sink):
            try:
                one.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_a_refused_connection_fails_ovs_ofctl_at_once(busy_mgmt) -> None:
    """The cue is real: this is the failure the burst met."""
    target, _ = busy_mgmt
    done = subprocess.run(["ovs-ofctl", "--timeout=5", "dump-flows", target],
                          capture_output=True, text=True, timeout=10)
    assert done.returncode != 0 and "Protocol error" in done.stderr, done.stderr


def test_the_plugins_ovs_ofctl_waits_for_a_busy_switch(busy_mgmt) -> None:
    target, timer = busy_mgmt
    timer.start()
    ofctl = Ofctl(timeout=10)
    ofctl.bundle(target, ["add table=0,priority=7,cookie=0x76700000000000ff,in_port=65000,"
                          "actions=drop"])
    assert [f.priority for f in ofctl.dump(target, 0x76700000000000ff)] == [7]
    ofctl.delete(target, ["delete cookie=0x76700000000000ff/-1"])
    assert ofctl.dump(target, 0x76700000000000ff) == []
