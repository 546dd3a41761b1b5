"""Open vSwitch through ovs-vsctl: bridges, ports, tags and ownership marks.

Each verb is one ovs-vsctl process and one OVSDB transaction (commands joined
with `--`), always with `--timeout` so a stopped ovsdb-server is an error in
bounded time, not a hang. A node starting its 110 pods at once has more ovs-vsctl
processes connecting than ovsdb-server's listen backlog holds while it is busy; each
one refused (EAGAIN, which Open vSwitch reports as "database connection failed
(Protocol error)") is run again, with ovs-vsctl's own `--retry`, until the timeout
(issue 23). Not with `--retry` from the start: that also waits the whole timeout for an
ovsdb-server that is not running at all, where the answer must come at once; a server
that refused as busy is running.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from pipework_wrapper import ovsdb_json as js
from pipework_wrapper.command import run
from pipework_wrapper.errors import ToolFailed

HINT = "start Open vSwitch (ovsdb-server and ovs-vswitchd; see scripts/host-setup)"
BUSY = "(Protocol error)"  # how Open vSwitch's tools report connect(2)'s EAGAIN: a full backlog
BUSY_PAUSE = 0.05  # seconds between two attempts to reach a busy daemon


def waiting(program: str, args: Sequence[str], timeout: float, hint: str,
            ok: tuple[int, ...] = (0,), input: bytes | None = None,
            once_busy: Sequence[str] = ()) -> str:
    """The output of `program --timeout=S args...` (ovs-vsctl, ovs-ofctl), run again while
    the daemon it asks is too busy to accept it; all of it within `timeout` (each attempt
    gets what is left, at least 1 s). A daemon that is not running fails it at once.

    `once_busy`: options the attempts after a refusal add, for a tool that can wait for
    a busy daemon itself (ovs-vsctl's `--retry`, which connects again after 1 s, 2 s,
    4 s... in its own process): a new setpriv and tool every BUSY_PAUSE cost 110
    teardowns at once about 185 processes a round (~4.5 ms of CPU each, on a machine
    already saturated). ovs-ofctl has no such option."""
    deadline = time.monotonic() + timeout
    extra: Sequence[str] = ()
    while True:
        left = deadline - time.monotonic()
        try:
            return run(program, [*extra, f"--timeout={max(1, round(left))}", *args],
                       timeout=max(1, left) + 2, ok=ok, hint=hint, input=input).stdout
        except ToolFailed as exc:
            if BUSY not in exc.message or time.monotonic() + BUSY_PAUSE >= deadline:
                raise
        extra = once_busy
        time.sleep(BUSY_PAUSE)


def vsctl_waits(timeout: float) -> list[str]:
    """How pipework's own ovs-vsctl waits (`pipework.quiet_path`): it runs only after the
    plugin's ovs-vsctl reached ovsdb-server, so a refusal there is a busy server, and
    ovs-vsctl's own `--retry` waits for it, never longer than `timeout`."""
    return ["--retry", f"--timeout={max(1, round(timeout))}"]


@dataclass(frozen=True)
class Port:
    """An OVS port as the plugin reads it: bridge, tag, marks and its interface's error."""

    name: str
    bridge: str
    tag: int | None
    external_ids: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    trunks: tuple[int, ...] = ()  # the VLANs a trunk port carries (none listed: all)
    datapath: str = ""  # its bridge's datapath_type ("netdev": the userspace datapath)
    ofport: int | None = None  # its interface's OpenFlow number (None: not assigned, or -1)


@dataclass(frozen=True)
class Qos:
    """A `linux-htb` QoS of one queue on a port: what holds the rate of the traffic the port
    sends towards its device (on either datapath); marked like the port."""

    max_rate: int  # bit/s
    burst: int  # bits
    external_ids: Mapping[str, str] = field(default_factory=dict)

    def create(self, port: str) -> list[str]:
        """ovs-vsctl arguments that give `port` this QoS, in the caller's transaction. QoS
        and Queue rows are roots in OVSDB: deleting the port leaves them (`destroy_qos`)."""
        marks = [f"external_ids:{k}={json.dumps(v)}" for k, v in self.external_ids.items()]
        return ["--", "set", "Port", port, "qos=@qos",
                "--", "--id=@qos", "create", "QoS", "type=linux-htb",
                f"other_config:max-rate={self.max_rate}", "queues:0=@queue", *marks,
                "--", "--id=@queue", "create", "Queue", f"other_config:max-rate={self.max_rate}",
                f"other_config:burst={self.burst}", *marks]


class Ovs:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def vsctl(self, *args: str, ok: tuple[int, ...] = (0,)) -> str:
        """One ovs-vsctl, run again while ovsdb-server is too busy to accept it (then with
        `--retry`: a server that refused as busy is running)."""
        return waiting("ovs-vsctl", args, self.timeout, HINT, ok=ok, once_busy=("--retry",))

    def ensure_bridge(self, bridge: str, datapath_type: str, mtu: int | None = None) -> None:
        """The bridge, with its own (internal) interface's MTU fixed at `mtu`: without
        mtu_request Open vSwitch lowers it to the smallest port's."""
        args = ["--", "--may-exist", "add-br", bridge]
        if datapath_type:
            args += ["--", "set", "Bridge", bridge, f"datapath_type={datapath_type}"]
        if mtu is not None:
            args += ["--", "set", "Interface", bridge, f"mtu_request={mtu}"]
        self.vsctl(*args)

    def fix_mtu(self, bridge: str, mtu: int) -> None:
        """An existing bridge's own interface keeps `mtu` whatever its ports'."""
        self.vsctl("set", "Interface", bridge, f"mtu_request={mtu}")

    def bridges(self) -> set[str]:
        return set(self.vsctl("list-br").split())

    def bridge(self, bridge: str) -> dict[str, Any] | None:
        rows = js.rows(self.vsctl("--format=json", "--columns=name,datapath_type,fail_mode",
                                "find", "Bridge", f"name={bridge}"))
        return {**rows[0], "fail_mode": js.scalar(rows[0]["fail_mode"]) or ""} if rows else None

    def fail_modes(self) -> dict[str, str]:
        """Each bridge's fail_mode ("" for OVS's default, standalone), in one read."""
        rows = js.rows(self.vsctl("--format=json", "--columns=name,fail_mode", "list", "Bridge"))
        return {row["name"]: js.scalar(row["fail_mode"]) or "" for row in rows}

    def set_fail_mode(self, bridge: str, mode: str) -> None:
        """`secure`: with no rules (after an ovs-vswitchd restart) the bridge forwards
        nothing, instead of falling back to NORMAL for everything."""
        self.vsctl("set-fail-mode", bridge, mode)

    def ports(self, **match: str) -> list[Port]:
        """Ports whose external_ids hold every key=value of `match` (all ports if none)."""
        conditions = [f"external_ids:{k}={v}" for k, v in match.items()]
        out = self.vsctl(
            "--format=json",
            "--", "--columns=_uuid,name,tag,trunks,external_ids,interfaces", "find", "Port",
            *conditions,
            "--", "--columns=name,ports,datapath_type", "list", "Bridge",
            "--", "--columns=_uuid,error,ofport", "list", "Interface",
        )
        ports, bridges, interfaces = js.documents(out)
        owner = {uuid: b["name"] for b in bridges for uuid in js.uuids(b["ports"])}
        datapath = {b["name"]: b["datapath_type"] for b in bridges}
        errors = {i["_uuid"][1]: i for i in interfaces}
        found = []
        for row in ports:
            iface = next((errors[u] for u in js.uuids(row["interfaces"]) if u in errors), {})
            found.append(Port(
                name=row["name"],
                bridge=owner.get(row["_uuid"][1], ""),
                datapath=datapath.get(owner.get(row["_uuid"][1], ""), ""),
                tag=js.scalar(row["tag"]),
                external_ids=js.as_map(row["external_ids"]),
                error=js.scalar(iface.get("error", ["set", []])),
                trunks=tuple(sorted(js.as_set(row["trunks"]))),
                ofport=js.ofport(iface.get("ofport", ["set", []])),
            ))
        return found

    def port(self, name: str) -> Port | None:
        """The port named `name`, marked or not."""
        return next((p for p in self.ports() if p.name == name), None)

    def plug_trunk(self, bridge: str, port: str, vlans: list[int],
                   external_ids: Mapping[str, str]) -> None:
        """Make `port` a trunk of `bridge` carrying `vlans` (none: every VLAN), marked, in
        one transaction; run again, it corrects the VLAN list."""
        marks = [f"external_ids:{k}={json.dumps(v)}" for k, v in external_ids.items()]
        self.vsctl("--", "--may-exist", "add-port", bridge, port,
                   "--", "set", "Port", port, "vlan_mode=trunk",
                   f"trunks=[{','.join(map(str, vlans))}]", "tag=[]", *marks)

    def ofports(self) -> set[int]:
        """Every OpenFlow port number an Interface has or asks for (`ofport`,
        `ofport_request`), on any bridge: one read."""
        out = self.vsctl("--format=json", "--columns=ofport,ofport_request", "list",
                         "Interface")
        return {n for row in js.rows(out) for n in (js.scalar(row["ofport"]),
                                                  js.scalar(row["ofport_request"]))
                if isinstance(n, int) and n > 0}

    def plug(self, bridge: str, port: str, tag: int, external_ids: Mapping[str, str],
             ofport: int | None = None, trunks: Sequence[int] = (),
             native: bool = True, qos: Qos | None = None) -> str:
        """Make `port` a member of `bridge` with `tag` and our marks (and OpenFlow port
        number `ofport`, so rules can name the port before ovs-vswitchd has it), in one
        transaction; return the bridge's datapath_type, read in the same transaction.

        With `trunks` the port also carries those VLANs tagged: `tag` is its native
        (untagged) VLAN (`vlan_mode=native-untagged`), or, with `native` false, it has none
        (`vlan_mode=trunk`: untagged frames arrive nowhere). An empty `trunks` is never
        written for a trunk: OVS would read it as every VLAN.

        `--may-exist` keeps pipework's own add-port (or the lack of it, when
        pipework skipped it for a same-named stale port) and fails if the port
        sits on another bridge; the `set` then overrides whatever tag it had.
        `--no-wait`: the database is the truth the caller checks; ovs-vswitchd applies
        it right after, and waiting for that costs more the more ports the bridge has.
        With `qos`, the port is never without it (the rows' UUIDs print before the type).
        """
        marks = [f"external_ids:{k}={json.dumps(v)}" for k, v in external_ids.items()]
        number = [] if ofport is None else ["--", "set", "Interface", port,
                                            f"ofport_request={ofport}"]
        vlan = [f"tag={tag}"]
        if trunks:
            vlan = [f"vlan_mode={'native-untagged' if native else 'trunk'}",
                    f"tag={tag if native else '[]'}", f"trunks=[{','.join(map(str, trunks))}]"]
        out = self.vsctl("--no-wait", "--", "--may-exist", "add-port", bridge, port,
                         "--", "set", "Port", port, *vlan, *marks, *number,
                         *(qos.create(port) if qos else []),
                         "--", "get", "Bridge", bridge, "datapath_type")
        return out.strip().splitlines()[-1].strip('"')

    def ofport(self, port: str) -> int:
        """The OpenFlow number ovs-vswitchd gave `port`'s interface (-1: none, e.g. no
        device; [] before ovs-vswitchd has seen it, or no such interface: taken as -1)."""
        out = self.vsctl("--if-exists", "get", "Interface", port, "ofport").strip()
        return int(out) if out.lstrip("-").isdigit() else -1

    def qos_rows(self, **match: str) -> tuple[list[str], list[str]]:
        """The UUIDs of the QoS and Queue rows whose external_ids hold `match` (one read)."""
        conditions = [f"external_ids:{k}={v}" for k, v in match.items()]
        out = self.vsctl("--format=json", "--", "--columns=_uuid", "find", "QoS", *conditions,
                         "--", "--columns=_uuid", "find", "Queue", *conditions)
        qos, queues = js.documents(out)
        return [r["_uuid"][1] for r in qos], [r["_uuid"][1] for r in queues]

    def unreferenced_qos(self, **match: str) -> tuple[list[str], list[str]]:
        """Of the QoS and Queue rows that hold `match`, those no Port (QoS) or no QoS
        (Queue) refers to: what a port deleted without them left (one read)."""
        conditions = [f"external_ids:{k}={v}" for k, v in match.items()]
        out = self.vsctl("--format=json", "--", "--columns=_uuid,queues", "find", "QoS",
                         *conditions, "--", "--columns=_uuid", "find", "Queue", *conditions,
                         "--", "--columns=qos", "list", "Port")
        qos, queues, ports = js.documents(out)
        used = {u for p in ports for u in js.optional_uuids(p["qos"])}
        kept = [r for r in qos if r["_uuid"][1] in used]
        queued = {u[1] for r in kept for _, u in r["queues"][1]}
        return ([r["_uuid"][1] for r in qos if r["_uuid"][1] not in used],
                [r["_uuid"][1] for r in queues if r["_uuid"][1] not in queued])

    def destroy_qos(self, qos: list[str], queues: list[str]) -> None:
        """Destroy these QoS rows, then their Queue rows, in one transaction (gone: fine)."""
        args = [arg for table, uuids in (("QoS", qos), ("Queue", queues)) for uuid in uuids
                for arg in ("--", "--if-exists", "destroy", table, uuid)]
        if args:
            self.vsctl("--no-wait", *args)

    def delete_ports(self, ports: list[str]) -> None:
        """Delete every named port that exists, in one transaction; absent ones are fine."""
        if ports:
            self.vsctl("--no-wait", *_del_ports(ports))

    def find_then_delete(self, ports: list[str], **match: str) -> list[Port]:
        """List the ports marked with `match` (with their bridges), then delete the named
        ones, in one transaction: one process for teardown's common case, where the
        marked ports are the named ones."""
        conditions = [f"external_ids:{k}={v}" for k, v in match.items()]
        out = self.vsctl("--no-wait", "--format=json",
                         "--", "--columns=_uuid,name,external_ids", "find", "Port", *conditions,
                         "--", "--columns=name,ports", "list", "Bridge",
                         *_del_ports(ports))
        rows, bridges = js.documents(out)
        owner = {uuid: b["name"] for b in bridges for uuid in js.uuids(b["ports"])}
        return [Port(row["name"], owner.get(row["_uuid"][1], ""), None,
                     js.as_map(row["external_ids"])) for row in rows]


def _del_ports(ports: list[str]) -> list[str]:
    """Why deletions pass `--no-wait`: OVSDB is the truth; ovs-vswitchd lets go
    of the devices right after, and waiting for it costs more the more ports the bridge
    has. The veths are deleted beside, so their traffic ends with them."""
    return [arg for port in ports for arg in ("--", "--if-exists", "del-port", port)]
