"""The bed's namespaces: one network + mount + UTS namespace each, held open by a
process, with its own Open vSwitch daemons where it has a bridge (nodes, the switch)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from tests.support import hostnet
from tests.support.nodebed.processes import (BedError, daemon_env, spawn_process,
                                             stop_process, wait_for)

OVS_RUN = "/var/run/openvswitch"
NETNS_RUN = "/var/run/netns"
OVS_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
SWITCH_BRIDGE = "sw0"


@dataclass
class Namespace:
    """One network + mount + UTS namespace held open by a ``sleep`` process.

    ``run`` enters it with ``nsenter -t PID -n -m -u``: the same binaries as the
    host, but this namespace's links, /sys, /var/run/openvswitch (so ovs-vsctl
    and ovs-appctl talk to its own daemons) and /var/run/netns.
    """

    role: str  # "node", "switch" or "mgmt"
    name: str
    dir: str  # this namespace's temp folder (OVS db, logs)
    holder: subprocess.Popen[Any]
    daemons: dict[str, subprocess.Popen[Any]] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """PID of the holder: ``nsenter -t PID -n -m -u`` enters this namespace."""
        return self.holder.pid

    def nsenter(self, argv: Sequence[str]) -> list[str]:
        """argv prefixed to run inside this namespace."""
        return ["nsenter", "-t", str(self.pid), "-n", "-m", "-u", "--", *argv]

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
            input: str | None = None, timeout: float = 60, check: bool = False,
            cwd: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run argv inside the namespace; capture text output.

        ``env`` replaces the environment (as subprocess does; PATH in it finds
        argv[0]); None means this process's, with the sbin folders appended to
        PATH. ``check`` raises hostnet.CommandError on a non-zero exit.
        """
        proc = subprocess.run(
            self.nsenter(argv), capture_output=True, text=True, timeout=timeout, cwd=cwd,
            env=dict(env) if env is not None else daemon_env(), input=input,
            stdin=subprocess.DEVNULL if input is None else None)
        if check and proc.returncode != 0:
            raise hostnet.CommandError(proc)
        return proc

    def spawn(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              cwd: str | None = None) -> subprocess.Popen[Any]:
        """Start a long-lived process inside the namespace, stopped by close().

        stdout and stderr go to ``<dir>/<name>.out``. It dies with this Python
        process (PDEATHSIG), as the bed's own daemons do.
        """
        if name in self.daemons and self.daemons[name].poll() is None:
            raise BedError(f"{self.role} {self.name}: a process {name!r} is already running")
        with open(os.path.join(self.dir, f"{name}.out"), "ab") as log:
            proc = spawn_process(self.nsenter(argv), stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, cwd=cwd,
                                 env=dict(env) if env is not None else daemon_env())
        self.daemons[name] = proc
        return proc

    def stop(self, name: str, grace: float = 5.0) -> int:
        """Stop one process started with spawn() (SIGTERM, then SIGKILL); its exit status."""
        return stop_process(self.daemons.pop(name), grace)

    def path(self, inside: str) -> str:
        """The host path of ``inside`` as this namespace's mounts see it.

        ``/proc/PID/root`` walks the holder's mount namespace, but an absolute
        symlink on the way (``/var/run`` -> ``/run``) jumps back to *this*
        process's root, i.e. the host's /run/openvswitch. So symlinks are
        resolved first (the namespaces share the host's root file system; only
        mounts differ).
        """
        return f"/proc/{self.pid}/root/{os.path.realpath(inside).lstrip('/')}"

    def links(self) -> set[str]:
        """Names of the links in this namespace."""
        out = self.run(["ip", "-o", "link", "show"], check=True).stdout
        return {line.split(":", 2)[1].strip().split("@", 1)[0]
                for line in out.splitlines() if line.count(":") >= 2}

    def ns_ids(self) -> tuple[int, int]:
        """(net, mnt) namespace inode numbers, to recognise processes inside."""
        return (os.stat(f"/proc/{self.pid}/ns/net").st_ino,
                os.stat(f"/proc/{self.pid}/ns/mnt").st_ino)

    # OVS: only for namespaces started with their own daemons (nodes and the switch).

    def ovs(self, *args: str, timeout: int = 10) -> str:
        """``ovs-vsctl --timeout=N ARGS`` against this namespace's own ovsdb-server."""
        return self.run(["ovs-vsctl", f"--timeout={timeout}", *args], check=True,
                        timeout=timeout + 5).stdout

    def appctl(self, *args: str) -> str:
        """``ovs-appctl ARGS`` against this namespace's ovs-vswitchd (e.g. ``fdb/show BR``)."""
        return self.run(["ovs-appctl", "--timeout=10", *args], check=True, timeout=15).stdout

    def fdb(self, bridge: str) -> list[dict[str, Any]]:
        """The MAC learning table of ``bridge``: [{port, vlan, mac, age}], port as an OVS
        port name ("LOCAL" for the bridge's own)."""
        numbers, current = {}, None
        for line in self.appctl("dpif/show").splitlines():
            head = re.match(r"^  (\S+):$", line)  # "  BRIDGE:" then "    PORT OFPORT/DPPORT: ..."
            if head:
                current = head.group(1)
            port = re.match(r"^    (\S+) (\d+)/", line)
            if port and current == bridge:
                numbers[port.group(2)] = port.group(1)
        table = []
        for line in self.appctl("fdb/show", bridge).splitlines()[1:]:
            port, vlan, mac, age = line.split()
            table.append({"port": numbers.get(port, port), "vlan": int(vlan),
                          "mac": mac, "age": int(age) if age.isdigit() else age})
        return table

    def _start_ovs(self, setup: Sequence[str]) -> None:
        """Start ovsdb-server (default paths, inside this namespace), run ``ovs-vsctl
        --no-wait init -- SETUP`` as one transaction, then ovs-vswitchd.

        The configuration is written before ovs-vswitchd starts, so it builds the
        bridges at once and no call waits on a reconfiguration.
        """
        db = os.path.join(self.dir, "conf.db")
        hostnet.run(["ovsdb-tool", "create", db, OVS_SCHEMA])
        self.spawn("ovsdb-server", [
            "ovsdb-server", db, f"--remote=punix:{OVS_RUN}/db.sock", "--pidfile",
            "-vconsole:off", f"--log-file={self.dir}/ovsdb-server.log"])
        wait_for(lambda: os.path.exists(self.path(f"{OVS_RUN}/db.sock")), 10,
                  f"{self.role} {self.name}: ovsdb-server socket", self.daemons["ovsdb-server"])
        self.ovs("--no-wait", "init", *(["--", *setup] if setup else []))
        self.spawn("ovs-vswitchd", [
            "ovs-vswitchd", "--pidfile", "--disable-system", "-vconsole:off",
            f"--log-file={self.dir}/ovs-vswitchd.log"])

    def _wait_for_device(self, name: str, timeout: float = 15) -> None:
        """Wait until ``name`` shows in this namespace's /sys/class/net (an OVS bridge's
        local port appears once ovs-vswitchd has built the bridge; pipework looks there)."""
        wait_for(lambda: os.path.isdir(self.path(f"/sys/class/net/{name}")), timeout,
                  f"{self.role} {self.name}: device {name}", self.daemons.get("ovs-vswitchd"))

    def _close(self, grace: float = 5.0) -> None:
        for proc in list(self.daemons.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.daemons.values():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.daemons.clear()
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()


@dataclass
class Node(Namespace):
    """A Kubernetes node as the plugin sees it.

    ``state_dir`` is the node's own empty folder (the plugin's state, config);
    ``uplink`` is the node's end of the cable to the switch, left unplugged:
    plug_uplink() puts it on the node bridge as a trunk port.
    """

    bridge: str = "k8s_br"
    uplink: str = "uplink0"
    state_dir: str = ""
    mgmt_if: str = "mgmt0"
    mgmt_address: str = ""  # this node's address on the management network
    etcd_url: str | None = None  # etcd as this node reaches it (None: bed without etcd)
    _noarp_dir: str = ""

    def plug_uplink(self, trunks: Iterable[int] | None = None) -> None:
        """Attach the uplink to the node bridge as a trunk port (all VLANs, or only
        ``trunks``), the way an operator cables a node; idempotent."""
        args = ["--may-exist", "add-port", self.bridge, self.uplink]
        vlans = sorted(set(trunks)) if trunks is not None else []
        if vlans:
            args += ["--", "set", "Port", self.uplink, "trunks=" + ",".join(map(str, vlans))]
        self.ovs(*args)

    def unplug_uplink(self) -> None:
        self.ovs("--if-exists", "del-port", self.bridge, self.uplink)

    def pipework(self, container: str, address: str, *, vlan: int | None = None,
                 mac: str | None = None, hostif: str | None = None, ifname: str = "eth1",
                 announce: bool = True, bridge: str | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Bare pipework inside this node: ``pipework BR -i IF [-l HOSTIF] CID ADDR [MAC][@VLAN]``.

        The host-side veth and the OVS port land in this node, the guest end in the
        container (found by cgroup, by PID). ``announce=False`` puts a folder whose
        ``arping`` does nothing first on PATH: no gratuitous ARP (and no 1 s wait).
        Raises hostnet.CommandError if pipework fails.
        """
        argv = ["pipework", bridge or self.bridge, "-i", ifname]
        if hostif:
            argv += ["-l", hostif]
        slot = (mac or "") + (f"@{vlan}" if vlan is not None else "")
        argv += [container, address] + ([slot] if slot else [])
        env = daemon_env()
        if not announce:
            env["PATH"] = f"{self._noarp_dir}:{env['PATH']}"
        return self.run(argv, env=env, timeout=timeout, check=True)


@dataclass
class Switch(Namespace):
    """The top-of-rack switch: one netdev OVS bridge that learns MACs (NORMAL action,
    300 s aging), one trunk port per node."""

    bridge: str = SWITCH_BRIDGE
    ports: dict[str, str] = field(default_factory=dict)  # node name -> switch port


@dataclass
class Mgmt(Namespace):
    """The management network: a Linux bridge at MGMT_GATEWAY and the bed's etcd."""

    etcd_data: str = ""
