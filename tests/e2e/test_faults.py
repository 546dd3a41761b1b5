"""Races, kills and hangs, made to happen on cue with slow stand-ins at the wrapper boundary
(a script first on the plugin's PATH, or in the config's `pipework:`), around the real
daemons. Each test fails on a plugin that lets the fault through."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from plugin import names
from tests.support import hostnet
from tests.support.kubelet import make_plugin
from tests.support.pluginstate import our_ports

from .test_exec_plugin import NS, base_config, leases


def stand_in(directory: Path, name: str, body: str) -> str:
    """An executable `name` in `directory` running `body` (sh), then the real one."""
    directory.mkdir(exist_ok=True)
    real = subprocess.run(["sh", "-c", f"command -v {name}"], capture_output=True,
                          text=True).stdout.strip()
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\nexec {real or '/usr/local/bin/' + name} \"$@\"\n")
    path.chmod(0o755)
    return str(path)


def wait_for(path: Path, seconds: float = 20) -> None:
    assert hostnet.wait_until(path.exists, timeout=seconds), f"{path} never appeared"


def test_gc_never_removes_a_pod_set_up_while_it_ran(tmp_path, bridge, make_container):
    """gc lists Docker's containers first; a pod set up after that is in its later
    listing of ports and leases. Under the pod's lock gc must ask Docker again."""
    plugin = make_plugin(str(tmp_path), base_config(bridge))
    slow = tmp_path / "slow"
    marker = tmp_path / "gc-listing"
    stand_in(slow, "ovs-vsctl", f'[ -e {marker} ] || {{ touch {marker}; sleep 3; }}')
    gc = subprocess.Popen([plugin.path, "gc"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "PATH": f"{slow}:{os.environ['PATH']}"})
    wait_for(marker)  # gc has asked Docker and is now listing ports, slowly
    late = make_container("late")
    plugin.ok("setup", NS, "22-late", late.id)
    output = gc.communicate(timeout=60)[0]
    assert gc.returncode == 0, output
    assert names.host_veth(late.id, "eth1") in our_ports(bridge), output
    assert hostnet.container_addresses(late.id, "eth1") and len(leases(plugin)) == 1
    assert "in use again" in output
    plugin.ok("teardown", NS, "22-late", late.id)


def test_a_killed_setup_leaves_no_child_that_acts_after_teardown(tmp_path, bridge, container):
    """The runtime kills a setup past its deadline, then tears down. A child of the killed
    plugin (here pipework, started late) must not plug the pod after that teardown."""
    started = tmp_path / "pipework-started"
    wrapper = stand_in(tmp_path / "bin", "pipework",
                       f'touch {started}\n( sleep 3; exec /usr/local/bin/pipework "$@" ) & wait\n'
                       'exit $?')
    plugin = make_plugin(str(tmp_path), base_config(bridge, pipework=wrapper))
    setup = subprocess.Popen([plugin.path, "setup", NS, "22-x", container.id],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    wait_for(started)
    setup.send_signal(signal.SIGKILL)  # the plugin only, as a runtime kills it
    setup.wait()
    plugin.ok("teardown", NS, "22-x", container.id)
    time.sleep(5)  # the orphan would have run pipework by now
    assert our_ports(bridge) == {}
    assert hostnet.container_addresses(container.id, "eth1") == []
    assert leases(plugin) == []


def test_a_setup_past_its_pipework_timeout_returns_when_the_timeout_says(tmp_path, bridge,
                                                                         container):
    """pipework hangs in a child that keeps its output open; timeouts.pipework ends both."""
    wrapper = stand_in(tmp_path / "bin", "pipework", 'sleep 40 & wait\nexit 1')
    plugin = make_plugin(str(tmp_path), base_config(bridge, pipework=wrapper,
                                                    timeouts={"pipework": 2}))
    call = plugin("setup", NS, "22-x", container.id, timeout=30)  # 40 s would fail here
    assert call.code == 6 and "did not finish within 2s" in call.output, call.output
    records = [r for r in plugin.log_records() if r["command"] == "setup"]
    assert records[-1]["outcome"] == "error"
    assert our_ports(bridge) == {} and leases(plugin) == []


def test_the_pod_lock_has_a_deadline_and_names_its_holder(tmp_path, bridge, container):
    started = tmp_path / "pipework-started"
    wrapper = stand_in(tmp_path / "bin", "pipework", f'touch {started}\nsleep 30')
    plugin = make_plugin(str(tmp_path), base_config(bridge, pipework=wrapper,
                                                    timeouts={"lock": 1}))
    setup = subprocess.Popen([plugin.path, "setup", NS, "22-x", container.id],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for(started)
        call = plugin("teardown", NS, "22-x", container.id)
        assert call.code == 6 and len(call.lines) == 1, call.output
        assert f"still held by another process (pid {setup.pid}) after 1s" in call.output
    finally:
        setup.kill()
        setup.wait()
    plugin.ok("teardown", NS, "22-x", container.id)
    assert our_ports(bridge) == {} and leases(plugin) == []
    assert json.dumps(plugin.log_records()[-1]).count('"outcome": "ok"') == 1
