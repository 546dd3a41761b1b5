"""A private network and mount namespace with its own Open vSwitch, for one benchmark run.

Why: the e2e suite's leak check deletes every host link, OVS port and
/var/run/netns entry that appears during a test, and these machines run the
suite all the time. Measured on the shared host, the benchmark would lose its
bridge mid-run and make every concurrent test fail. Inside its own
namespaces, with its own ovsdb-server and ovs-vswitchd (the same binaries and
userspace datapath, at the default paths: /var/run/openvswitch and
/var/run/netns are private tmpfs mounts), neither sees the other, and the
plugin and its peers run unchanged with the kubelet's exact argv and
environment. The namespace dies with this process: every veth left in it goes
with it. Docker stays shared; the benchmark's containers are labelled.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import tempfile
import time
from typing import Mapping, Sequence

from bench.host import TMP_PREFIX
from tests.support import hostnet

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
PR_SET_PDEATHSIG = 1
OVS_RUN = "/var/run/openvswitch"
NETNS_RUN = "/var/run/netns"
OVS_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


class Sandbox:
    def __init__(self, other_config: Mapping[str, str] | None = None) -> None:
        """`other_config`: Open_vSwitch settings written before ovs-vswitchd starts (the
        throughput benchmark's userspace-tso-enable, which is read only at start)."""
        self.dir = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-ovs-")
        self.other_config = dict(other_config or {})
        self.daemons: list[subprocess.Popen[bytes]] = []

    def enter(self) -> None:
        """Move this (still single-threaded) process into new namespaces, then start OVS."""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS | CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS | CLONE_NEWNET) failed")
        hostnet.run(["mount", "--make-rprivate", "/"])
        self._private_sysfs()
        for path in (OVS_RUN, NETNS_RUN):
            os.makedirs(path, exist_ok=True)
            hostnet.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", path])
        hostnet.run(["ip", "link", "set", "lo", "up"])
        self._start_ovs()

    def _private_sysfs(self) -> None:
        """/sys/class/net must show this netns (pipework and the plugin read it), while the
        cgroup mounts under /sys/fs/cgroup stay (pipework finds containers through them)."""
        keep = os.path.join(self.dir, "cgroup")
        os.makedirs(keep)
        hostnet.run(["mount", "--rbind", "/sys/fs/cgroup", keep])
        hostnet.run(["mount", "-t", "sysfs", "sysfs", "/sys"])
        hostnet.run(["mount", "--move", keep, "/sys/fs/cgroup"])

    def _start_ovs(self) -> None:
        db = os.path.join(self.dir, "conf.db")
        hostnet.run(["ovsdb-tool", "create", db, OVS_SCHEMA])
        self._daemon(["ovsdb-server", db, f"--remote=punix:{OVS_RUN}/db.sock", "--pidfile",
                      "-vconsole:off", f"--log-file={self.dir}/ovsdb-server.log"])
        _wait(["ovs-vsctl", "--timeout=2", "show"], "ovsdb-server")
        settings = [f"other_config:{k}={v}" for k, v in self.other_config.items()]
        hostnet.run(["ovs-vsctl", "--timeout=5", "--no-wait", "init",
                     *(["--", "set", "Open_vSwitch", ".", *settings] if settings else [])])
        self._daemon(["ovs-vswitchd", "--pidfile", "--disable-system", "-vconsole:off",
                      f"--log-file={self.dir}/ovs-vswitchd.log"])
        _wait(["ovs-appctl", "-t", "ovs-vswitchd", "version"], "ovs-vswitchd")

    def restart_vswitchd(self) -> float:
        """Stop the sandbox's ovs-vswitchd and start another, as a node's restart does (every
        OpenFlow rule gone); the time.monotonic() at which the new one was started."""
        old = self.daemons.pop()
        old.send_signal(signal.SIGTERM)
        old.wait(timeout=10)
        started = time.monotonic()
        self._daemon(["ovs-vswitchd", "--pidfile", "--disable-system", "-vconsole:off",
                      f"--log-file={self.dir}/ovs-vswitchd.log"])
        return started

    def _daemon(self, argv: Sequence[str]) -> None:
        """A foreground daemon that dies with this process, however this process ends."""
        log = open(os.path.join(self.dir, os.path.basename(argv[0]) + ".out"), "wb")
        self.daemons.append(subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent))
        log.close()

    def vswitchd_cpu_s(self) -> float:
        """CPU seconds ovs-vswitchd has used so far: the userspace datapath polls every port,
        so with hundreds of ports it competes with the calls being measured."""
        pid = self.daemons[-1].pid
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def leftovers(self) -> list[str]:
        """Links and netns entries still in the sandbox (OVS's own devices aside)."""
        links = sorted(hostnet.host_links() - {"lo", "ovs-netdev"})
        return ([f"link {name} in the sandbox" for name in links]
                + [f"{NETNS_RUN}/{n}" for n in sorted(hostnet.netns_links())])

    def close(self) -> None:
        for proc in reversed(self.daemons):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.daemons.clear()
        hostnet.run(["rm", "-rf", "--one-file-system", self.dir], check=False)


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait(argv: list[str], what: str, limit: float = 10) -> None:
    deadline = time.monotonic() + limit
    while hostnet.run(argv, check=False, timeout=5).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"private {what} did not come up within {limit:g} s")
        time.sleep(0.1)
