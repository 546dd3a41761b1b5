"""Lifecycle safety and operations: gc, list, doctor, several networks, faults, concurrency."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from plugin import names
from tests.support import hostnet
from tests.support.kubelet import make_plugin, status_ip

from .test_exec_plugin import NS, base_config, leases, our_ports




@pytest.fixture
def plugin(tmp_path, bridge):
    return make_plugin(str(tmp_path), base_config(bridge))


def rows(plugin) -> list[dict]:
    return json.loads(plugin.ok("list", "--json").output)


def test_list_shows_each_attachment_with_its_state(plugin, bridge, make_container):
    live, dead = make_container("live"), make_container("dead")
    plugin.ok("setup", NS, "22-live", live.id)
    plugin.ok("setup", NS, "23-dead", dead.id)
    hostnet.remove_container(dead.id)
    table = {r["pod"]: r for r in rows(plugin)}
    assert table["22-live"]["state"] == "ok" and table["23-dead"]["state"] == "container gone"
    assert table["22-live"]["vlan"] == 22 and table["22-live"]["bridge"] == bridge
    assert table["22-live"]["mac"].startswith("0a:58:")
    assert table["22-live"]["infra_id"] == live.id[:12]
    text = plugin.ok("list").output
    heads = [line for line in text.splitlines() if not line.startswith(" ")]
    assert heads == [f"{NS}/22-live eth1: ok", f"{NS}/23-dead eth1: container gone"], text
    assert "None" not in text and max(map(len, text.splitlines())) <= 80
    plugin.ok("teardown", NS, "22-live", live.id)
    plugin.ok("teardown", NS, "23-dead", dead.id)


def test_gc_sweeps_dead_pods_and_spares_live_and_foreign_ports(plugin, bridge, make_container):
    live, dead = make_container("live"), make_container("dead")
    plugin.ok("setup", NS, "22-live", live.id)
    plugin.ok("setup", NS, "22-dead", dead.id)
    hostnet.ovs("add-port", bridge, "foreign0", "tag=22", "--", "set", "Interface", "foreign0",
                "type=internal")
    dangling = os.path.join(hostnet.NETNS_DIR, "4999999")
    os.symlink("/proc/4999999/ns/net", dangling)
    try:
        hostnet.remove_container(dead.id)
        before = (our_ports(bridge), leases(plugin))
        dry = plugin.ok("gc", "--dry-run").output
        assert "22-dead" in dry and "22-live" not in dry and dangling in dry
        assert (our_ports(bridge), leases(plugin)) == before and os.path.islink(dangling)
        plugin.ok("gc")
        assert set(our_ports(bridge)) == {names.host_veth(live.id, "eth1"), "foreign0"}
        assert len(leases(plugin)) == 1 and not os.path.lexists(dangling)
        assert [r["pod"] for r in rows(plugin)] == ["22-live"]
        assert plugin.ok("gc").output.strip() == "nothing to sweep"
        plugin.ok("teardown", NS, "22-live", live.id)
    finally:
        hostnet.ovs("--if-exists", "del-port", "foreign0")
        if os.path.lexists(dangling):
            os.unlink(dangling)


def test_gc_without_docker_says_what_it_did_and_could_not_judge(tmp_path, bridge, make_container):
    """Issue 25 item 10: with Docker unreachable, gc still sweeps what needs no Docker and
    prints every removal; it names each attachment and lease it could not judge, exits 5,
    and never claims "the rest was swept". The dry run prints what it would do, and both
    log lines keep dry_run."""
    plugin = make_plugin(str(tmp_path), base_config(bridge))
    kept = make_container("kept")
    plugin.ok("setup", NS, "22-kept", kept.id)
    dangling = os.path.join(hostnet.NETNS_DIR, "4999998")
    os.symlink("/proc/4999998/ns/net", dangling)
    try:
        plugin.configure(base_config(bridge, docker_url=f"unix://{tmp_path}/none.sock"))
        for dry in (True, False):
            call = plugin("gc", "--json", *(["--dry-run"] if dry else []))
            assert call.code == 5, call.output
            # Only what this test made: other tests on the host may leave netns links too.
            actions = [a for a in json.JSONDecoder().raw_decode(call.output)[0]
                       if a["pod"] or a["what"] == dangling]
            assert "the rest was swept" not in call.output
            assert call.lines[-1] == ("myplugin: gc: 2 not judged (no Docker); start dockerd "
                                      "and run gc again")
            assert {(a["outcome"], a["pod"], a["what"].split()[0]) for a in actions} == {
                ("not judged", f"{NS}/22-kept", "port"), ("not judged", f"{NS}/22-kept", "lease"),
                ("would remove" if dry else "removed", "", dangling)}, actions
            assert all(set(a) == {"outcome", "what", "pod", "why"} for a in actions)
            assert os.path.lexists(dangling) == dry
            logged = plugin.log_records()[-1]
            assert logged["dry_run"] is dry and sum(
                NS in line or dangling in line for line in logged["actions"]) == 3, logged
        human = plugin("gc", "--dry-run")
        assert human.code == 5 and f"not judged port {names.host_veth(kept.id, 'eth1')}" in \
            human.output and max(map(len, human.lines)) <= 80, human.output
        assert len(our_ports(bridge)) == 1 and len(leases(plugin)) == 1
    finally:
        if os.path.lexists(dangling):
            os.unlink(dangling)
    plugin.ok("teardown", NS, "22-kept", kept.id)


def test_gc_without_docker_collects_a_lease_nothing_holds(tmp_path, bridge):
    """Issue 19 item 11: a lease of a 64-hex owner with no record and no port, on a node
    where Docker does not answer, was counted alive ("nothing to sweep", exit 0). Nothing
    can hold it: judged again under the pod's lock, it is collected, and said so."""
    from plugin.config.loader import load
    from tests.support.ipamdata import owner

    plugin = make_plugin(str(tmp_path), base_config(
        bridge, docker_url=f"unix://{tmp_path}/none.sock"))
    orphan = owner(7)
    (lease,) = load(plugin.config_path).allocators().allocate(orphan, 22)
    assert len(leases(plugin)) == 1
    call = plugin.ok("gc", "--json")
    (action,) = [a for a in json.loads(call.output) if a["pod"]]  # not other tests' netns links
    assert action == {"outcome": "removed", "what": f"lease {lease.address} on pods",
                      "pod": f"{orphan.namespace}/{orphan.pod}",
                      "why": "no record and no port holds it"}, action
    assert leases(plugin) == [] and not [a for a in json.loads(plugin.ok("gc", "--json").output)
                                         if a["pod"]]


def test_doctor_passes_then_names_the_broken_check(tmp_path, plugin, bridge):
    plugin.ok("init")
    report = json.loads(plugin.ok("doctor", "--json").output)
    assert all(c["ok"] for c in report), report
    assert {"open vswitch", "docker", "pipework", "kubelet install myplugin", f"bridge {bridge}",
            "pods"} <= {
        c["name"] for c in report}
    plugin.configure(base_config(bridge, pipework=str(tmp_path / "nowhere")))
    call = plugin("doctor")
    assert call.code != 0
    assert "fix: install pipework" in doctor_rows(call.output)["pipework"]


def doctor_rows(text: str) -> dict[str, str]:
    """doctor's human output by check: "FAIL"/"ok", what it found and the fix, one string."""
    rows: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith(("ok  ", "FAIL  ")):
            name = line[6:].split(":")[0]
            rows[name] = line
        elif line.startswith(" ") and name:
            rows[name] += " " + line.strip()
    return rows


def test_doctor_fails_naming_the_pods_list_shows_unhealthy(plugin, bridge, make_container):
    """Issue 25 item 6: a veth deleted by hand, a port deleted by hand, a container gone:
    each state is a failed row naming its pod, and doctor exits non-zero."""
    plugin.ok("init")
    pods = {name: make_container(name) for name in ("ok", "veth", "port", "gone")}
    for name, c in pods.items():
        plugin.ok("setup", NS, f"22-{name}", c.id)
    assert {c["name"]: c["ok"] for c in json.loads(plugin.ok("doctor", "--json").output)}[
        "pods"] is True
    hostnet.run(["ip", "link", "del", names.host_veth(pods["veth"].id, "eth1")])
    hostnet.ovs("del-port", bridge, names.host_veth(pods["port"].id, "eth1"))
    hostnet.remove_container(pods["gone"].id)
    call = plugin("doctor")
    assert call.code == 1 and call.lines[-1].startswith("myplugin: doctor: 3 of "), call.output
    found = doctor_rows(call.output)
    assert found["pods interface error"].startswith(f"FAIL  pods interface error: 1: {NS}/22-veth eth1")
    assert found["pods port missing"].startswith(f"FAIL  pods port missing: 1: {NS}/22-port eth1")
    assert found["pods container gone"].startswith(
        f"FAIL  pods container gone: 1: {NS}/22-gone eth1")
    assert "fix: run gc" in found["pods container gone"] and "pods" not in {
        name for name in found if name == "pods"}
    states = {r["pod"]: r["state"] for r in rows(plugin)}
    assert states == {"22-ok": "ok", "22-veth": "interface error", "22-port": "port missing",
                      "22-gone": "container gone"}
    for name, c in pods.items():
        plugin.ok("teardown", NS, f"22-{name}", c.id)
    assert our_ports(bridge) == {} and leases(plugin) == []


def test_two_networks_per_pod_all_or_nothing(tmp_path, bridge, container):
    second = "tc" + os.urandom(3).hex()
    config = base_config(bridge, attachments=[
        {"interface": "eth1", "primary": True},
        {"interface": "eth2", "bridge": second, "vlan": {"rule": "fixed", "tag": 300}}])
    plugin = make_plugin(str(tmp_path), config)
    call = plugin("setup", NS, "22-multi", container.id)
    assert call.code != 0 and len(call.lines) == 1, call.output
    assert our_ports(bridge) == {} and leases(plugin) == []
    assert hostnet.container_addresses(container.id, "eth1") == []
    plugin.ok("init")
    try:
        plugin.ok("setup", NS, "22-multi", container.id)
        assert our_ports(bridge)[names.host_veth(container.id, "eth1")]["tag"] == 22
        assert our_ports(second)[names.host_veth(container.id, "eth2")]["tag"] == 300
        eth1 = hostnet.container_addresses(container.id, "eth1")
        assert hostnet.container_addresses(container.id, "eth2")
        plugin.configure({**config, "status": {"report": "vlan"}})
        assert f"{status_ip(plugin.ok('status', NS, '22-multi', container.id).output)}/24" in eth1
        plugin.ok("teardown", NS, "22-multi", container.id)
        assert our_ports(bridge) == {} and our_ports(second) == {} and leases(plugin) == []
    finally:
        hostnet.delete_bridge(second)


def test_state_dir_writable_by_others_is_refused(plugin, bridge, container):
    os.makedirs(plugin.state_dir, exist_ok=True)
    os.chmod(plugin.state_dir, 0o777)
    call = plugin("setup", NS, "22-x", container.id)
    assert call.code == 3 and "state_dir" in call.output and "chmod go-w" in call.output
    assert our_ports(bridge) == {}


def test_status_and_teardown_work_with_docker_unreachable(tmp_path, bridge, container):
    plugin = make_plugin(str(tmp_path), base_config(bridge))
    plugin.ok("setup", NS, "22-x", container.id)
    ip = status_ip(plugin.ok("status", NS, "22-x", container.id).output)
    plugin.configure(base_config(bridge, docker_url=f"unix://{tmp_path}/none.sock"))
    assert status_ip(plugin.ok("status", NS, "22-x", container.id).output) == ip
    plugin.ok("teardown", NS, "22-x", container.id)
    assert our_ports(bridge) == {} and leases(plugin) == []


def test_stale_pipework_port_of_a_dead_pod_with_the_same_pid(plugin, bridge, container):
    """The reference plugin's leftover: `veth1pl<PID>` with another tag, the PID now reused."""
    stale = f"veth1pl{container.pid}"
    hostnet.ovs("add-port", bridge, stale, "tag=99", "--", "set", "Interface", stale,
                "type=internal")
    try:
        plugin.ok("setup", NS, "22-x", container.id)
        assert our_ports(bridge)[names.host_veth(container.id, "eth1")]["tag"] == 22
        assert our_ports(bridge)[stale]["tag"] == 99
        plugin.ok("teardown", NS, "22-x", container.id)
    finally:
        hostnet.ovs("--if-exists", "del-port", stale)


def test_concurrent_setup_and_teardown(plugin, bridge, make_container):
    """Different pods in parallel, and the same pod set up and torn down at once."""
    pods = [(f"{22 + i % 2}-p{i}", make_container(f"p{i}")) for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        calls = list(pool.map(lambda p: plugin("setup", NS, p[0], p[1].id), pods))
    assert all(c.code == 0 for c in calls), [c.output for c in calls]
    assert len({a for _, c in pods for a in hostnet.container_addresses(c.id, "eth1")}) == 8
    same_pod, same = pods[0]
    with ThreadPoolExecutor(8) as pool:
        work = [("setup" if i % 2 else "teardown", NS, same_pod, same.id) for i in range(8)]
        work += [("teardown", NS, pod, c.id) for pod, c in pods[1:]]
        calls = list(pool.map(lambda argv: plugin(*argv), work))
    assert all(c.code == 0 for c in calls), [c.output for c in calls]
    attached = set(our_ports(bridge))
    assert attached <= {names.host_veth(same.id, "eth1")}
    assert len(leases(plugin)) == len(attached)
    assert bool(hostnet.container_addresses(same.id, "eth1")) == bool(attached)
    plugin.ok("teardown", NS, same_pod, same.id)
    assert our_ports(bridge) == {} and leases(plugin) == []


KILL_RUNS = int(os.environ.get("VLANPIPE_KILL_RUNS", "50"))


def test_sigkill_during_setup_leaks_nothing_after_retry_and_gc(scope, plugin, bridge,
                                                               make_container):
    """SIGKILL at a random moment of setup (the plugin alone, or with its pipework child),
    then the kubelet's retry with a new infra container, then gc: nothing is left of the
    killed attempt. The retried pods are torn down at the end: nothing is left at all."""
    rng = random.Random(20261130)
    plugin.ok("init")
    survivors = []
    for run in range(KILL_RUNS):
        pod = f"{22 + run % 2}-k{run}"
        first = make_container(f"k{run}")
        proc = subprocess.Popen([plugin.path, "setup", NS, pod, first.id], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(rng.uniform(0.0, 0.6))
        whole_group = rng.random() < 0.5
        if whole_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()
        hostnet.wait_until(lambda: not _pipework_running_for(first.id), timeout=30)
        hostnet.remove_container(first.id)
        retry = make_container(f"k{run}r")
        plugin.ok("setup", NS, pod, retry.id)
        survivors.append((pod, retry))
    plugin.ok("gc")
    hostnet.wait_until(lambda: not _leftovers(scope, plugin, bridge, survivors), timeout=10)
    assert _leftovers(scope, plugin, bridge, survivors) == []
    for pod, c in survivors:
        plugin.ok("teardown", NS, pod, c.id)
    assert our_ports(bridge) == {} and leases(plugin) == []


def _pipework_running_for(container_id: str) -> list[int]:
    """pipework processes that outlived a killed plugin (they hold the container id in argv;
    so does the container's own containerd shim, which must not count)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if container_id.encode() in argv and any(a.endswith(b"pipework") for a in argv[:2]):
            found.append(int(pid))
    return found


def _leftovers(scope, plugin, bridge, survivors) -> list[str]:
    wanted = {names.host_veth(c.id, "eth1") for _, c in survivors}
    problems = [f"port {p}" for p in our_ports(bridge) if p not in wanted]
    problems += [leak for leak in scope.leaks()
                 if not any(name in leak for name in wanted) and "container" not in leak]
    if len(leases(plugin)) != len(survivors):
        problems.append(f"{len(leases(plugin))} leases for {len(survivors)} pods")
    return problems


def test_a_config_another_user_owns_and_a_foreign_state_dir_are_refused(plugin, bridge,
                                                                        container):
    """uid 1000 owning config.yaml could choose the binary root runs as `pipework`."""
    os.chown(plugin.config_path, 1000, 1000)
    call = plugin("setup", NS, "22-x", container.id)
    assert call.code == 3 and "belongs to uid 1000" in call.output and len(call.lines) == 1
    os.chown(plugin.config_path, 0, 0)
    os.makedirs(plugin.state_dir, mode=0o700, exist_ok=True)
    os.chown(plugin.state_dir, 1000, 1000)
    call = plugin("setup", NS, "22-x", container.id)
    assert call.code == 3 and "state_dir" in call.output and "uid 1000" in call.output
    os.chown(plugin.state_dir, 0, 0)
    assert our_ports(bridge) == {}
