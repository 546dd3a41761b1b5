"""Attachment records: what the plugin attached (or set out to attach) to each pod, on disk.

OVSDB `external_ids` is the authority on ports (teardown and gc read them);
this small JSON file per container exists so that `status`, which the kubelet
calls on every pod sync, answers from one file read, with no Docker, no
ovs-vsctl and no subprocess, and so that a call killed at any point leaves
its intent behind: a record is written before any address is claimed (naming
the network the lease comes from) and again before any link exists.

Files are named by a hash of the container id (`names.state_key`), carry the
full id, a kind and a version; one that cannot be read is reported by list and
doctor, never silently taken for "no attachment".
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, fields, replace

from plugin import identity
from plugin.core import recordfile
from plugin.core.marks import Marks
from plugin.core.recordfile import KIND, VERSION
from plugin.identity import Identified, Identity


@dataclass(frozen=True)
class Attachment(Identified):
    """What the plugin attached (or set out to attach) for one interface of one pod (`who`:
    its pod and interface, no node: a record is the node's own). On disk its identity's
    parts stand at the top level, as they always have (`identity.flat`)."""

    who: Identity
    bridge: str
    port: str
    vlan: int
    network: str          # whose allocator holds the lease (or the CNI network, if delegated)
    # One per family (the network's order, so the first is the one status reports); none
    # while only intended. gateways[i] is addresses[i]'s default route ("" for none).
    addresses: tuple[str, ...] = ()
    mac: str = ""
    gateways: tuple[str, ...] = ()
    primary: bool = True
    cni_network: str = ""  # set for CNI attachments: the network config's name
    plumber: str = "pipework"
    netns: str = ""  # the netns plumber's namespace path, and its "device:inode" at ADD
    netns_id: str = ""
    # What DEL releases through, whatever the network config says by then: "vlanpipe" (its
    # allocators, on `network`) or "delegated" (the IPAM plugin `ipam` names, given that
    # config, as JSON, on CNI network `cni_network`); "" in records from before they said.
    allocator: str = ""
    ipam: str = ""
    # Port security (`flows.Guard`): "on" or "off" as decided at setup ("" in records
    # from before it existed: the node's setting decides), the pod's IPv6 link-local
    # addresses as read from it after plugging, and the allowed address pairs (an
    # address, and the MAC it may come from: "" for the pod's own).
    port_security: str = ""
    link_locals: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()

    @property
    def address(self) -> str:
        """The first address ("" if none yet)."""
        return self.addresses[0] if self.addresses else ""

    @property
    def gateway(self) -> str:
        return self.gateways[0] if self.gateways else ""

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]

    def marks(self, node: str) -> Marks:
        """The marks on this attachment's OVS port."""
        return Marks(replace(self.who, node=node), address=",".join(self.addresses),
                     network=self.network, cni_network=self.cni_network, plumber=self.plumber,
                     netns=self.netns, netns_id=self.netns_id)


@dataclass(frozen=True)
class DamagedRecord:
    """A record file that cannot be read, and why (list and doctor show it)."""

    path: str
    reason: str


class RecordStore:
    """One file per container under `<state_dir>/attachments`, replaced atomically."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.directory = recordfile.directory(state_dir)

    def path(self, infra_id: str) -> str:
        return recordfile.path(self.state_dir, infra_id)

    def load(self, infra_id: str) -> list[Attachment]:
        """The container's records; none if there is no file or it cannot be read (which
        `damaged` reports)."""
        try:
            found_id, records = _parse(*recordfile.find(self.state_dir, infra_id))
        except FileNotFoundError:
            return []
        except ValueError:
            return []
        return records if found_id == infra_id else []

    def save(self, infra_id: str, attachments: list[Attachment]) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        body = {"kind": KIND, "version": VERSION, "infra_id": infra_id,
                "attachments": [identity.flat(a) for a in attachments]}
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(body, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path(infra_id))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self._forget_first_release(infra_id)

    def delete(self, infra_id: str) -> None:
        try:
            os.unlink(self.path(infra_id))
        except FileNotFoundError:
            pass
        self._forget_first_release(infra_id)

    def _forget_first_release(self, infra_id: str) -> None:
        """Drop the first release's file once today's holds the records (or none are left)."""
        legacy = recordfile.legacy_path(self.state_dir, infra_id)
        if legacy is not None:
            try:
                os.unlink(legacy)
            except FileNotFoundError:
                pass

    def has(self, key: str) -> bool:
        """Whether a record file exists under `names.state_key` `key`."""
        return os.path.exists(os.path.join(self.directory, f"{key}.json"))

    def all(self) -> tuple[dict[str, list[Attachment]], list[DamagedRecord]]:
        """Every container's records, and the files that cannot be read."""
        found: dict[str, list[Attachment]] = {}
        damaged = []
        try:
            entries = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return {}, []
        for name in entries:
            if not name.endswith(".json"):
                continue
            path = os.path.join(self.directory, name)
            try:
                infra_id, records = _read(path)
            except FileNotFoundError:
                continue  # deleted since the listing
            except ValueError as exc:
                damaged.append(DamagedRecord(path, str(exc)))
                continue
            found[infra_id] = records
        return found, damaged


def _read(path: str) -> tuple[str, list[Attachment]]:
    """(container id, records) of one file; ValueError says why it cannot be used."""
    return _parse(*recordfile.read(path))


def _tuples(item: dict) -> dict:
    """The JSON lists of a record item as the tuples an Attachment holds."""
    found = {key: tuple(item.get(key, ())) for key in ("addresses", "gateways", "link_locals")}
    found["pairs"] = tuple(tuple(pair) for pair in item.get("pairs", ()))
    return found


def _parse(infra_id: str, items: list[dict]) -> tuple[str, list[Attachment]]:
    known = {f.name for f in fields(Attachment) if f.name != "who"} | set(identity.STORED)
    if not all(set(i) <= known for i in items):
        raise ValueError("malformed attachments")
    try:
        return infra_id, [Attachment(**identity.unflat({**item, **_tuples(item)}))
                          for item in items]
    except KeyError as exc:
        raise ValueError(f"malformed attachment (no {exc})") from None
    except TypeError as exc:
        raise ValueError(f"malformed attachment ({exc})") from None
