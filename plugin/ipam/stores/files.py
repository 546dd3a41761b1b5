"""The node-local store: one file per address on disk, in the spirit of CNI host-local.

Layout, all 0700 directories and 0600 files, under `<state_dir>/ipam/<network>/`:

    lock            flock held across every allocation (released if we die)
    last_reserved   the address handed out last: the next search starts after it
    addr/<address>  the lease record (JSON, leaserecord.py); the name is the reservation
    owner/<sha256>  a hard link to the owner's record: lookup by owner in one read

A record is written once, then linked under both names, the owner's first: a
crash in between leaves an owner name whose file no address name shares, and
readers, who compare inode numbers, treat it as absent. Files that cannot be
read are reported and their addresses never handed out.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
from contextlib import AbstractContextManager
from typing import Sequence

from plugin.identity import Identity
from plugin.ipam.leaserecord import Record, decode, encode, new_record
from plugin.ipam.networks import NetworkConfig
from plugin.ipam.stores import Claimed, Held
from plugin.ipam.stores.fileops import (ensure_dir, inode, link_exclusive, link_replace,
                                        overwrite, read_bytes, read_with_inode, remove, write_new)
from plugin.locks import locked

TYPE_CHECKING = False  # the records' module is not loaded on teardown (issue 23)
if TYPE_CHECKING:
    from plugin.ipam.model import Damaged, IPAddress

log = logging.getLogger(__name__)

OWN_NAMES = frozenset({"lock", "last_reserved", "addr", "owner", "record.tmp"})


class FileStore:
    spread = 1  # every writer holds the lock: no race to spread out
    lookahead = 0  # a taken candidate costs a stat, not a round trip: nothing to gain

    def __init__(self, network: NetworkConfig, state_dir: str, lock_timeout: float = 10.0) -> None:
        self.network = network
        self.top = os.path.join(state_dir, "ipam")
        self.root = os.path.join(self.top, network.key)
        self.lock_timeout = lock_timeout

    def _path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def _address_path(self, address: IPAddress) -> str:
        return self._path("addr", str(address))

    def _index_path(self, owner: Identity) -> str:
        return self._path("owner", hashlib.sha256(owner.key.encode()).hexdigest())

    def exclusive(self) -> AbstractContextManager[object]:
        if not os.path.isdir(self._path("owner")):
            os.makedirs(os.path.dirname(self.top), 0o700, exist_ok=True)
            for path in (self.top, self.root, self._path("addr"), self._path("owner")):
                ensure_dir(path)
        return locked(self._path("lock"), self.lock_timeout)

    def held(self, owner: Identity) -> Held:
        """The owner's record through its index (one read and one stat), and the rotation point."""
        return Held(self._held(owner), 0, self._last_reserved())

    def claim(self, record: Record, held: Held, rotate: bool,
              probe: Sequence[IPAddress] = ()) -> Claimed:
        address = record.address.ip
        path = self._address_path(address)
        if os.path.lexists(path):
            return Claimed("taken")
        temp = self._path("record.tmp")
        write_new(temp, encode(record))
        try:
            link_replace(temp, self._index_path(record.owner))
            if not link_exclusive(temp, path):
                return Claimed("taken")
        finally:
            remove(temp)
        if rotate:
            overwrite(self._path("last_reserved"), str(address).encode())
        if held.record is not None and held.record.address.ip != address:
            remove(self._address_path(held.record.address.ip))  # a pin moved this owner
        return Claimed("won")

    def read(self, address: IPAddress) -> Record | None:
        data = read_bytes(self._address_path(address))
        if data is None:
            return None
        try:
            return decode(data, self.network.name, address)
        except ValueError as exc:
            log.warning("%s: %s; its address stays out of use", self._address_path(address), exc)
            return None

    def taken(self) -> list[str]:
        return os.listdir(self._path("addr"))

    def release(self, owner: Identity) -> bool:
        if not os.path.isdir(self._path("owner")):
            return False
        with locked(self._path("lock"), self.lock_timeout):
            held = self._held(owner)
            if held is not None:
                remove(self._address_path(held.address.ip))
            remove(self._index_path(owner))
            return held is not None

    def conflict(self, owner: Identity, address: IPAddress, mac: str) -> bool:
        """The conflicted record replaces the lease under the address's name (a new inode:
        the owner index no longer matches it, so the owner holds nothing), then the index
        goes."""
        if not os.path.isdir(self._path("owner")):
            return False
        with locked(self._path("lock"), self.lock_timeout):
            held = self._held(owner)
            if held is None or held.address.ip != address:
                return False
            temp = self._path("record.tmp")
            write_new(temp, encode(new_record(self.network.name, held.address, owner, mac)))
            try:
                link_replace(temp, self._address_path(address))
            finally:
                remove(temp)
            remove(self._index_path(owner))
            return True

    def clear(self, address: IPAddress) -> Record | None:
        if not os.path.isdir(self._path("addr")):
            return None
        with locked(self._path("lock"), self.lock_timeout):
            record = self.read(address)
            if record is not None and record.conflict:
                remove(self._address_path(address))
            return record

    def scan(self) -> tuple[list[Record], list[Damaged]]:
        """Every record, read without the lock: each file appears whole or not at all."""
        from plugin.ipam.model import Damaged

        if not os.path.isdir(self._path("addr")):
            return [], []
        damaged = [Damaged(self.network.name, self._path(name), "foreign file in the state directory")
                   for name in sorted(os.listdir(self.root)) if name not in OWN_NAMES]
        found: list[tuple[int, Record]] = []
        for name in sorted(os.listdir(self._path("addr"))):
            path = self._path("addr", name)
            try:
                address = ipaddress.ip_address(name)
                if address not in self.network.subnet:  # type: ignore[operator]
                    raise ValueError(f"address outside subnet {self.network.subnet}")
                data = read_bytes(path)
                if data is None:
                    continue  # released since the listing
                record = decode(data, self.network.name, address)
            except ValueError as exc:
                damaged.append(Damaged(self.network.name, path, str(exc)))
                continue
            found.append((int(address), record))
        return [record for _, record in sorted(found, key=lambda f: f[0])], damaged

    def _held(self, owner: Identity) -> Record | None:
        found = read_with_inode(self._index_path(owner))
        if found is None:
            return None
        try:
            record = decode(found[0], self.network.name)
        except ValueError as exc:
            log.warning("%s: %s; ignored", self._index_path(owner), exc)
            return None
        if inode(self._address_path(record.address.ip)) != found[1]:
            return None  # the claim did not complete, or the address was freed
        return record if record.owner.key == owner.key else None

    def _last_reserved(self) -> IPAddress | None:
        data = read_bytes(self._path("last_reserved"))
        try:
            return ipaddress.ip_address(data.decode().strip()) if data else None
        except (UnicodeDecodeError, ValueError):
            log.warning("ignoring unreadable %s", self._path("last_reserved"))
            return None
