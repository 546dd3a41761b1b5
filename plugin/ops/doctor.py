"""`doctor`: is this node ready for the plugin? One line per check, with the fix.

Each check runs on its own: a failing one never hides the others, because an
operator wants the whole list at once.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Callable

from pipework_wrapper.ovs import Ovs
from plugin.config.schema import Config
from plugin.config.files import check_private_dir
from plugin.core.records import RecordStore
from plugin.errors import BackendError, Failure, ToolFailed
from plugin.ops import checksums, conflicts
from plugin.ops import doctor_install as installed
from plugin.ops import doctor_pods as pods


@dataclass(frozen=True)
class Check:
    """One doctor finding: what was checked, whether it passed, and the fix if not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks(config: Config, executable: str) -> list[Check]:
    ovs = Ovs(config.ovs_timeout)
    checks: list[tuple[str, Callable[[], str], str]] = [
        ("config", lambda: _config(config), "fix the config file"),
        ("open vswitch", lambda: _ovs(ovs), "start ovsdb-server and ovs-vswitchd (scripts/host-setup)"),
        *[(f"bridge {b}", (lambda b=b: _bridge(ovs, b, config.datapath_type)), "run the plugin's init command (or reconcile)")
          for b in sorted({a.bridge for a in config.attachments})],
        *([(f"uplink {config.uplink.interface}", lambda: _uplink(ovs, config), "")]
          if config.uplink else []),
        ("docker", lambda: _docker(config), "start dockerd or set docker_url"),
        ("pipework", lambda: _pipework(config),
         "install pipework on the PATH or set pipework: to its path"),
        ("tools", _tools, "install iproute2 and util-linux"),
        *installed.checks(executable),
        ("log directory", lambda: _writable(os.path.dirname(config.log_file) or "."),
         f"create {os.path.dirname(config.log_file)} writable by root"),
        ("state directory", lambda: _private(config.state_dir),
         f"create {config.state_dir}, a directory of root's"),
        ("macs", lambda: _macs(config),
         "give each VLAN's IPv6 network a range within one /96 (config.yaml: networks)"),
        ("pod checksums", lambda: checksums.check(config),
         "run the plugin's init command, or setup (CNI: ADD) again, which turn it off"),
        ("node name", lambda: _node_name(config), ""),  # its finding names the old name
        ("records", lambda: _records(config),
         "read the damaged files it names; remove them once their pods are torn down"),
        ("allocators", lambda: _allocators(config),
         "a damaged lease names its file or key: fix or remove it"),
        ("conflicted leases", lambda: conflicts.check(config),
         f"remove the address from the host with that MAC, then {conflicts.CLEAR} ADDRESS"),
    ]
    results = [_run(name, probe, fix) for name, probe, fix in checks]
    try:
        results += [Check(*row) for row in pods.checks(config)]
    except Failure as exc:
        results.append(Check("pods", False, exc.message, exc.hint or "see the rows above"))
    return results


def _run(name: str, probe: Callable[[], str], fix: str) -> Check:
    """One check. A finding of the check itself (a plain Failure) gets the row's fix; any
    other failure (etcd down, the config, a tool) names its own cause, so its own hint."""
    try:
        return Check(name, True, probe())
    except Failure as exc:
        own = type(exc) is Failure or not exc.hint
        return Check(name, False, exc.message if exc.hint else exc.line(),
                     fix if own and fix else exc.hint)
    except OSError as exc:
        return Check(name, False, str(exc), fix)


def _config(config: Config) -> str:
    """Valid on its own and as a whole: an etcd network needs the etcd section."""
    config.allocators()
    return f"valid: {config.source}"


def _ovs(ovs: Ovs) -> str:
    version = ovs.vsctl("--version").splitlines()[0]
    ovs.vsctl("show")
    return f"answers ({version})"


def _bridge(ovs: Ovs, bridge: str, wanted: str) -> str:
    row = ovs.bridge(bridge)
    if row is None:
        raise Failure(f"bridge {bridge} does not exist")
    if wanted and row["datapath_type"] != wanted:
        raise Failure(f"bridge {bridge} has datapath_type {row['datapath_type']!r}, "
                          f"config says {wanted!r}")
    if row["fail_mode"] != "secure":
        raise Failure(f"bridge {bridge} has fail_mode {row['fail_mode'] or 'standalone'}: "
                      "after an ovs-vswitchd restart it forwards everything, port security "
                      "rules gone (fails open)")
    from pipework_wrapper.ofctl import Ofctl
    from plugin.core import flows, rules

    if rules.bridge_missing({flows.BRIDGE: Ofctl(ovs.timeout).dump(bridge, flows.BRIDGE)}):
        raise Failure(f"bridge {bridge} lacks the plugin's default rules, so it forwards "
                      "nothing (ovs-vswitchd restarted and neither init nor reconcile ran "
                      "since: is vlanpipe-watch running?)")
    return f"exists, datapath_type {row['datapath_type'] or 'system'}, fails closed"


def _uplink(ovs: Ovs, config: Config) -> str:
    from plugin.ops import uplink

    assert config.uplink is not None
    found = uplink.problems(ovs, config.uplink, config.node_name)
    if found:
        # What init refuses comes first: until it is fixed, "run init" would not help.
        fixes = list(dict.fromkeys(fix for _, fix in found if fix != uplink.INIT))
        raise BackendError("; ".join(problem for problem, _ in found),
                           "; ".join(fixes or [uplink.INIT]))
    return (f"up, on bridge {config.uplink.bridge}, trunks "
            f"{uplink.describe(ovs.port(config.uplink.interface))}")  # type: ignore[arg-type]


def _node_name(config: Config) -> str:
    """Every attachment this node's records name carries this node's name. Changing
    node_name with pods attached hides them from list and gc, and leaves their leases
    and etcd stamps under the old name (where `gc --node OLD` would free a live pod's
    address): the only safe fix is the old name back until those pods are gone."""
    from plugin.ops.listing import State, rows
    from plugin.ops.liveness import Liveness

    try:
        listed = rows(config, Liveness(config))
    except ToolFailed:
        return "not checked: Open vSwitch does not answer (see its row)"
    moved: dict[str, list[str]] = {}
    for row in listed:
        if row.kind is State.RENAMED:
            moved.setdefault(row.marked_for, []).append(f"{row.namespace}/{row.pod}")
    if not moved:
        return f"{config.node_name!r}: every attachment recorded here carries it"
    old, pods = sorted(moved.items())[0]
    raise Failure(f"node_name is {config.node_name!r}, but {len(pods)} attachment(s) made on "
                  f"this node are marked for node {old!r} ({', '.join(sorted(pods)[:5])}): "
                  "node_name was changed while they were attached, so list and gc no longer "
                  "take them for this node's and their leases keep the old name",
                  f"set node_name back to {old!r} in {config.source} (never run gc --node "
                  f"{old} while it serves pods); change it only when this node has no pods")


def _docker(config: Config) -> str:
    from pipework_wrapper.docker_lookup import running_ids

    count = len(running_ids(config.docker_url, config.docker_timeout))
    return f"answers at {config.docker_url}, {count} containers running"


def _allocators(config: Config) -> str:
    allocators = config.allocators()
    damaged = allocators.damaged()
    if damaged:
        raise Failure(f"{len(damaged)} damaged lease(s): " + "; ".join(
            f"{d.where}: {d.reason}" for d in damaged[:3]))
    return f"{len(allocators.leases())} leases in use"


def _macs(config: Config) -> str:
    """No two interfaces on one bridge and VLAN of this node with one MAC (plugin/core/macs.py,
    the rule setup enforces for a requested MAC); intents without an address are not
    plugged yet."""
    from plugin.core import macs

    found, _ = RecordStore(config.state_dir).all()  # damaged files: the records check's
    plugged = [record for records in found.values() for record in records if record.addresses]
    clashes = [f"{macs.effective(record)} of {macs.who(record)} and {macs.who(other)} on "
               f"{record.bridge} VLAN {record.vlan}" for record, other in macs.clashes(plugged)]
    if clashes:
        raise Failure(f"{len(clashes)} MAC(s) shared on a VLAN: " + "; ".join(clashes[:3]))
    return f"{len(plugged)} interface(s), each MAC once on its bridge and VLAN"


def _records(config: Config) -> str:
    found, damaged = RecordStore(config.state_dir).all()
    if damaged:
        raise Failure(f"{len(damaged)} damaged record(s): " + "; ".join(
            f"{d.path}: {d.reason}" for d in damaged[:3]))
    return f"{sum(map(len, found.values()))} attachments of {len(found)} pods recorded"


def _pipework(config: Config) -> str:
    """Which pipework: its usage text says whether it knows VLANs, and its generation.

    Upstream's gives an address through `busybox ipcalc` when busybox is installed, and
    busybox's cannot parse IPv6: a pod of an IPv6-only network (the only case where
    pipework gets an IPv6 address) would fail setup."""
    from pipework_wrapper import pipework

    program = config.pipework
    path = shutil.which(program)
    if path is None:
        raise Failure(f"{program} not found")
    text = pipework.usage(path)
    if "Syntax" not in text or "@vlan" not in text.lower():
        raise Failure(f"{path} does not print the expected syntax (VLAN support missing?)")
    if pipework.UPSTREAM_MARK in text:
        families: dict[str, set[int]] = {}
        for network in config.networks:
            if network.subnet is not None:
                families.setdefault(network.name, set()).add(network.subnet.version)
        only6 = sorted(name for name, found in families.items() if found == {6})
        if only6 and shutil.which("busybox"):
            raise Failure(f"{path} is upstream's pipework and busybox is installed: its "
                          "`busybox ipcalc` cannot parse IPv6, so pods of IPv6-only network(s) "
                          f"{', '.join(only6)} would fail setup; use the 2014 copy of pipework "
                          "(scripts/host-setup installs it) or give those networks an IPv4 "
                          "subnet too")
    return f"found at {path}, supports VLANs; {pipework.describe(pipework.generation_of(text))}"


def _tools() -> str:
    missing = [t for t in ("ovs-vsctl", "ip", "nsenter") if shutil.which(t) is None]
    if missing:
        raise Failure(f"not on the PATH: {', '.join(missing)}")
    return "ovs-vsctl, ip and nsenter found"


def _writable(directory: str) -> str:
    os.makedirs(directory, mode=0o755, exist_ok=True)
    if not os.access(directory, os.W_OK):
        raise Failure(f"{directory} is not writable")
    return f"{directory} writable"


def _private(directory: str) -> str:
    """What setup and gc demand of state_dir (files.check_private_dir: no symlink, ours,
    not writable by others), and that it can be written."""
    check_private_dir(directory, "state_dir")
    _writable(directory)
    return f"{directory} writable by its owner only"
