"""Open vSwitch through ovs-vsctl: bridges, ports, tags and ownership marks.

Each verb is one ovs-vsctl process and one OVSDB transaction (commands joined
with `--`), always with `--timeout` so a stopped ovsdb-server is an error in
bounded time, not a hang. A node starting its 110 pods at once has more ovs-vsctl
processes connecting than ovsdb-server's listen backlog holds while it is busy; each
one refused (EAGAIN, which Open vSwitch reports as "database connection failed
(Protocol error)") is run again until the timeout (issue 23). Not with ovs-vsctl's
own `--retry`: that also waits the whole timeout for an ovsdb-server that is not
running at all, where the answer must come at once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from pipework_wrapper.command import run
from pipework_wrapper.errors import ToolFailed

HINT = "start Open vSwitch (ovsdb-server and ovs-vswitchd; see scripts/host-setup)"
BUSY = "(Protocol error)"  # how ovs-vsctl reports connect(2)'s EAGAIN: a full backlog
BUSY_PAUSE = 0.05  # seconds between two attempts to reach a busy ovsdb-server


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


class Ovs:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def vsctl(self, *args: str, ok: tuple[int, ...] = (0,)) -> str:
        """One ovs-vsctl, run again while ovsdb-server is too busy to accept it; all of it
        within the timeout (each attempt gets what is left, at least 1 s)."""
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            try:
                return run("ovs-vsctl", [f"--timeout={max(1, round(left))}", *args],
                           timeout=max(1, left) + 2, ok=ok, hint=HINT).stdout
            except ToolFailed as exc:
                if BUSY not in exc.message or time.monotonic() + BUSY_PAUSE >= deadline:
                    raise
            time.sleep(BUSY_PAUSE)

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
        rows = _rows(self.vsctl("--format=json", "--columns=name,datapath_type",
                                "find", "Bridge", f"name={bridge}"))
        return rows[0] if rows else None

    def ports(self, **match: str) -> list[Port]:
        """Ports whose external_ids hold every key=value of `match` (all ports if none)."""
        conditions = [f"external_ids:{k}={v}" for k, v in match.items()]
        out = self.vsctl(
            "--format=json",
            "--", "--columns=_uuid,name,tag,trunks,external_ids,interfaces", "find", "Port",
            *conditions,
            "--", "--columns=name,ports,datapath_type", "list", "Bridge",
            "--", "--columns=_uuid,error", "list", "Interface",
        )
        ports, bridges, interfaces = _documents(out)
        owner = {uuid: b["name"] for b in bridges for uuid in _uuids(b["ports"])}
        datapath = {b["name"]: b["datapath_type"] for b in bridges}
        errors = {i["_uuid"][1]: i for i in interfaces}
        found = []
        for row in ports:
            iface = next((errors[u] for u in _uuids(row["interfaces"]) if u in errors), {})
            found.append(Port(
                name=row["name"],
                bridge=owner.get(row["_uuid"][1], ""),
                datapath=datapath.get(owner.get(row["_uuid"][1], ""), ""),
                tag=_scalar(row["tag"]),
                external_ids=_map(row["external_ids"]),
                error=_scalar(iface.get("error", ["set", []])),
                trunks=tuple(sorted(_set(row["trunks"]))),
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

    def plug(self, bridge: str, port: str, tag: int, external_ids: Mapping[str, str]) -> str:
        """Make `port` a member of `bridge` with `tag` and our marks, in one transaction;
        return the bridge's datapath_type, read in the same transaction.

        `--may-exist` keeps pipework's own add-port (or the lack of it, when
        pipework skipped it for a same-named stale port) and fails if the port
        sits on another bridge; the `set` then overrides whatever tag it had.
        `--no-wait`: the database is the truth the caller checks; ovs-vswitchd applies
        it right after, and waiting for that costs more the more ports the bridge has.
        """
        marks = [f"external_ids:{k}={json.dumps(v)}" for k, v in external_ids.items()]
        out = self.vsctl("--no-wait", "--", "--may-exist", "add-port", bridge, port,
                         "--", "set", "Port", port, f"tag={tag}", *marks,
                         "--", "get", "Bridge", bridge, "datapath_type")
        return out.strip().strip('"')

    def delete_ports(self, ports: list[str]) -> None:
        """Delete every named port that exists, in one transaction; absent ones are fine."""
        if ports:
            self.vsctl("--no-wait", *_del_ports(ports))

    def find_then_delete(self, ports: list[str], **match: str) -> list[Port]:
        """List the ports marked with `match`, then delete the named ones, in one
        transaction: one process for teardown's common case, where the marked ports are
        the named ones."""
        conditions = [f"external_ids:{k}={v}" for k, v in match.items()]
        out = self.vsctl("--no-wait", "--format=json",
                         "--", "--columns=name,external_ids", "find", "Port", *conditions,
                         *_del_ports(ports))
        return [Port(row["name"], "", None, _map(row["external_ids"])) for row in _rows(out)]


def _del_ports(ports: list[str]) -> list[str]:
    """Why deletions pass `--no-wait`: OVSDB is the truth; ovs-vswitchd lets go
    of the devices right after, and waiting for it costs more the more ports the bridge
    has. The veths are deleted beside, so their traffic ends with them."""
    return [arg for port in ports for arg in ("--", "--if-exists", "del-port", port)]


def _documents(text: str) -> list[list[dict[str, Any]]]:
    """Split ovs-vsctl's concatenated JSON tables into lists of row dicts."""
    decoder, docs, pos = json.JSONDecoder(), [], 0
    text = text.strip()
    while pos < len(text):
        table, end = decoder.raw_decode(text, pos)
        docs.append([dict(zip(table["headings"], row)) for row in table["data"]])
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


def _rows(text: str) -> list[dict[str, Any]]:
    docs = _documents(text)
    return docs[0] if docs else []


def _uuids(value: Any) -> list[str]:
    if value[0] == "uuid":
        return [value[1]]
    return [item[1] for item in value[1]]


def _scalar(value: Any) -> Any:
    """OVSDB encodes an empty optional column as ["set", []]."""
    if isinstance(value, list) and value and value[0] == "set":
        return value[1][0] if value[1] else None
    return value


def _set(value: Any) -> list[Any]:
    """OVSDB encodes a set of one as the atom, of several as ["set", [...]]."""
    if isinstance(value, list) and value and value[0] == "set":
        return list(value[1])
    return [value]


def _map(value: Any) -> dict[str, str]:
    return {k: v for k, v in value[1]}
