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
from tests.support import etcd_server, hostnet
from tests.support.kubelet import make_plugin
from tests.support.pluginstate import our_ports

from .test_exec_plugin import NS, base_config, leases
from .test_ipam_e2e import etcd_keys


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
    started, acted = tmp_path / "pipework-started", tmp_path / "orphan-acted"
    wrapper = stand_in(tmp_path / "bin", "pipework",
                       f'touch {started}\n( sleep 3; touch {acted}; '
                       'exec /usr/local/bin/pipework "$@" ) & wait\nexit $?')
    plugin = make_plugin(str(tmp_path), base_config(bridge, pipework=wrapper))
    setup = subprocess.Popen([plugin.path, "setup", NS, "22-x", container.id],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    wait_for(started)
    setup.send_signal(signal.SIGKILL)  # the plugin only, as a runtime kills it
    setup.wait()
    plugin.ok("teardown", NS, "22-x", container.id)
    time.sleep(5)  # the orphan would have run pipework by now
    assert not acted.exists()  # teardown ended it (it held the pod lock), not waited it out
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
        assert call.code == 9 and len(call.lines) == 1, call.output  # LockTimeout's code
        assert f"still held by another process (pid {setup.pid}) after 1s" in call.output
    finally:
        setup.kill()
        setup.wait()
    plugin.ok("teardown", NS, "22-x", container.id)
    assert our_ports(bridge) == {} and leases(plugin) == []
    assert json.dumps(plugin.log_records()[-1]).count('"outcome": "ok"') == 1


def test_a_claim_applied_in_etcd_whose_reply_was_lost_is_undone(tmp_path, bridge, container):
    """etcd applies the claim transaction; its reply never arrives. The setup fails, and the
    address and owner keys it wrote are removed at once, not left for a gc."""
    server = etcd_server.start(str(tmp_path / "etcd"))
    proxy = etcd_server.DroppingProxy(server.client_port, b"request_put")
    try:
        plugin = make_plugin(str(tmp_path), base_config(bridge, etcd={
            "endpoints": [proxy.url], "timeout": 2, "prefix": "/lost"}, networks=[
                {"name": "pods", "vlans": "all", "subnet": "10.98.0.0/24",
                 "allocator": "etcd"}]))
        call = plugin("setup", NS, "22-x", container.id)
        assert call.code == 8 and "etcd" in call.output, call.output  # EtcdError's code
        assert proxy.dropped == 1
        assert etcd_keys(server, "/lost/ipam/") in ([], ["/lost/ipam/pods/last_reserved"])
        plugin.ok("setup", NS, "22-x", container.id)  # and the next attempt works
        plugin.ok("teardown", NS, "22-x", container.id)
        assert etcd_keys(server, "/lost/ipam/") in ([], ["/lost/ipam/pods/last_reserved"])
    finally:
        proxy.close()
        etcd_server.stop(server)


def test_an_etcd_outage_does_not_block_a_pod_of_a_local_network(tmp_path, bridge,
                                                                 make_container):
    server = etcd_server.start(str(tmp_path / "etcd"))
    try:
        plugin = make_plugin(str(tmp_path), base_config(bridge, etcd={
            "endpoints": [server.url], "timeout": 1, "prefix": "/two"}, networks=[
                {"name": "local22", "vlans": [22], "subnet": "10.97.0.0/24"},
                {"name": "cluster30", "vlans": [30], "subnet": "10.98.0.0/24",
                 "allocator": "etcd"}]))
        local, cluster = make_container("l"), make_container("c")
        plugin.ok("setup", NS, "22-l", local.id)
        plugin.ok("status", NS, "22-l", local.id)
        assert etcd_keys(server, "/two/nodes/") == []  # local networks only: no sign of life
        plugin.ok("setup", NS, "30-c", cluster.id)
        assert etcd_keys(server, "/two/nodes/") == [f"/two/nodes/{plugin.node_name}"]
        etcd_server.stop(server)
        plugin.ok("teardown", NS, "22-l", local.id)  # its record names local22 alone
        failed = plugin("teardown", NS, "30-c", cluster.id)  # its own network is down
        assert failed.code == 8 and "etcd" in failed.output
        assert names.host_veth(cluster.id, "eth1") not in our_ports(bridge)  # port gone anyway
        # No record and no port (a teardown the kubelet repeats, or of a pod never set up):
        # every allocator is asked, best effort; the one that is down is logged, not fatal.
        never = make_container("n")
        plugin.ok("teardown", NS, "30-n", never.id)
        logged = plugin.log_records()[-1]
        assert logged["outcome"] == "ok" and any(
            "cluster30" in problem for problem in logged["release_problems"]), logged
    finally:
        etcd_server.stop(server)


def test_a_routine_status_writes_nothing_to_the_log(tmp_path, bridge, container):
    plugin = make_plugin(str(tmp_path), base_config(bridge))
    plugin.ok("setup", NS, "22-x", container.id)
    before = len(plugin.log_records())
    for _ in range(3):
        plugin.ok("status", NS, "22-x", container.id)
    assert len(plugin.log_records()) == before
    assert plugin("status", NS, "bad_name", container.id).code == 4
    assert plugin.log_records()[-1]["outcome"] == "error"  # a failing one is logged
    plugin.ok("teardown", NS, "22-x", container.id)


def test_warnings_go_to_the_log_not_to_the_kubelets_output(tmp_path, bridge, make_container):
    plugin = make_plugin(str(tmp_path), base_config(bridge))
    first, second = make_container("a"), make_container("b")
    plugin.ok("setup", NS, "22-a", first.id)
    rotation = Path(plugin.state_dir) / "ipam" / "pods" / "last_reserved"
    rotation.write_bytes(b"\xffnot an address")
    assert plugin.ok("setup", NS, "22-b", second.id).output == ""
    logged = plugin.log_records()[-1]
    assert any("ignoring unreadable" in w and "last_reserved" in w for w in logged["warnings"])
    for pod, c in (("22-a", first), ("22-b", second)):
        plugin.ok("teardown", NS, pod, c.id)


def test_a_damaged_record_shows_in_list_and_doctor_and_gc_sweeps_leftover_files(
        tmp_path, bridge, container):
    plugin = make_plugin(str(tmp_path), base_config(bridge))
    plugin.ok("init")
    plugin.ok("setup", NS, "22-x", container.id)
    records = Path(plugin.state_dir) / "attachments"
    damaged = records / ("0" * 40 + ".json")
    damaged.write_text("{not json")
    rows = json.loads(plugin.ok("list", "--json").output)
    assert any(r["state"] == "damaged record: not JSON" and r["port"] == str(damaged)
               for r in rows)
    doctor = plugin("doctor")
    assert doctor.code == 1 and "1 damaged record(s)" in doctor.output
    damaged.unlink()
    old_temp = records / ".tmp-killed"
    old_temp.write_text("half")
    os.utime(old_temp, (time.time() - 3600, time.time() - 3600))
    lock = Path(plugin.state_dir) / "locks" / ("1" * 40 + ".lock")
    lock.write_text("")
    swept = {(a["what"], a["why"]) for a in json.loads(plugin.ok("gc", "--json").output)
             if not a["what"].startswith(hostnet.NETNS_DIR)}  # gc sweeps every dangling
    # netns link on the host: another suite's may be there (this test made none)
    assert swept == {(str(lock), "a pod lock no record uses"),
                     (str(old_temp), "a half-written file of a killed call")}, swept
    assert not lock.exists() and not old_temp.exists()
    assert names.host_veth(container.id, "eth1") in our_ports(bridge)  # the live pod stays
    kept = [p.name for p in (Path(plugin.state_dir) / "locks").iterdir()]
    assert kept == [f"{names.state_key(container.id)}.lock"]  # the live pod's, with records
    plugin.ok("teardown", NS, "22-x", container.id)


def test_gc_at_init_is_best_effort(tmp_path, bridge, container):
    """Docker down at init: the bridge is still made, init succeeds, and the pods of Docker
    containers that cannot be judged are kept and named in a warning."""
    plugin = make_plugin(str(tmp_path), base_config(bridge, gc_on_init=True))
    plugin.ok("setup", NS, "22-x", container.id)
    plugin.configure(base_config(bridge, gc_on_init=True,
                                 docker_url=f"unix://{tmp_path}/none.sock"))
    assert plugin.ok("init").output == ""
    logged = plugin.log_records()[-1]
    assert logged["outcome"] == "ok"
    assert any(w.startswith("gc at init could not judge 2 (Docker does not answer at ")
               for w in logged["warnings"]), logged
    assert names.host_veth(container.id, "eth1") in our_ports(bridge)
    plugin.configure(base_config(bridge))
    plugin.ok("teardown", NS, "22-x", container.id)


def test_gc_at_init_is_best_effort_with_etcd_down_too(tmp_path, bridge):
    """An etcd network whose etcd does not answer: init still succeeds and says what it
    could not sweep."""
    plugin = make_plugin(str(tmp_path), base_config(
        bridge, gc_on_init=True, etcd={"endpoints": ["http://127.0.0.1:9"], "timeout": 1},
        networks=[{"name": "cluster30", "vlans": [30], "subnet": "10.98.0.0/24",
                   "allocator": "etcd"}]))
    assert plugin.ok("init").output == ""
    logged = plugin.log_records()[-1]
    assert logged["outcome"] == "ok", logged
    assert any("gc at init skipped" in w and "etcd" in w for w in logged["warnings"]), logged
