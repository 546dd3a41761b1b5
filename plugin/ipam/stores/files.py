"""The node-local allocator: one file per address on disk, in the spirit of CNI host-local.

Layout, all 0700 directories and 0600 files, under `<state_dir>/ipam/<network>/`:

    lock            flock held across every read-modify-write (released if we die)
    last_reserved   the address handed out last: the next search starts after it
    addr/<address>  the lease record (JSON, records.py); the name is the reservation
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

from plugin.errors import AllocationError
from plugin.ipam.model import Damaged, IPAddress, Lease, Owner
from plugin.ipam.stores.fileops import (ensure_dir, inode, link_exclusive, link_replace, overwrite,
                               read_bytes, read_with_inode, remove, write_new)
from plugin.locks import locked
from plugin.ipam.networks import NetworkConfig
from plugin.ipam.pool import Pool
from plugin.ipam.leaserecord import Record, decode, encode, new_record

log = logging.getLogger(__name__)

PROBES = 8  # addresses found taken before listing the records once
OWN_NAMES = frozenset({"lock", "last_reserved", "addr", "owner", "record.tmp"})


class LocalSource:
    def __init__(self, network: NetworkConfig, state_dir: str, lock_timeout: float = 10.0) -> None:
        self.network = network
        self.pool = Pool.of(network)
        self.top = os.path.join(state_dir, "ipam")
        self.root = os.path.join(self.top, network.name)
        self.lock_timeout = lock_timeout

    def _path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def _address_path(self, address: IPAddress) -> str:
        return self._path("addr", str(address))

    def _index_path(self, owner: Owner) -> str:
        return self._path("owner", hashlib.sha256(owner.key.encode()).hexdigest())

    def allocate(self, owner: Owner, requested: IPAddress | None = None) -> Lease:
        if not os.path.isdir(self._path("owner")):
            os.makedirs(os.path.dirname(self.top), 0o700, exist_ok=True)
            for path in (self.top, self.root, self._path("addr"), self._path("owner")):
                ensure_dir(path)
        with locked(self._path("lock"), self.lock_timeout):
            held = self._held(owner)
            if held is not None and requested in (None, held.address.ip):
                return self.network.lease(held.address)
            if requested is None:
                record = self._claim_next(owner)
            else:
                record = self._claim_requested(owner, requested)
            if held is not None:  # a pin moved this owner to another address
                remove(self._address_path(held.address.ip))
            return self.network.lease(record.address)

    def _claim_next(self, owner: Owner) -> Record:
        """Probe from the rotation point; after PROBES misses, list the records once.

        Under the lock the listing is exact, and skipping a name in a set is
        cheaper than a stat: a pool whose used addresses all follow the
        rotation point (after a wrap-around) costs one listing, not a stat each.
        """
        taken: frozenset[str] = frozenset()
        misses = 0
        for candidate in self.pool.rotation(self._last_reserved()):
            if str(candidate) in taken:
                continue
            record = self._claim(owner, candidate)
            if record is not None:
                overwrite(self._path("last_reserved"), str(candidate).encode())
                return record
            misses += 1
            if misses == PROBES:
                taken = frozenset(os.listdir(self._path("addr")))
        in_use = self.pool.count_addresses(os.listdir(self._path("addr")))
        raise AllocationError(
            f"network {self.network.name} exhausted: {in_use} addresses in use",
            f"its pool holds {self.pool.size}; free the leases of dead pods (gc) "
            "or widen the network's range",
        )

    def _claim_requested(self, owner: Owner, requested: IPAddress) -> Record:
        why = self.pool.refusal(requested)
        if why is not None:
            raise AllocationError(
                f"pinned address {requested} cannot be used on network {self.network.name}: "
                f"it {why}", "change the pin")
        record = self._claim(owner, requested)
        if record is None:
            holder = self._read(requested)
            who = (f"pod {holder.owner.namespace}/{holder.owner.pod}" if holder
                   else "a record that cannot be read")
            raise AllocationError(
                f"pinned address {requested} of network {self.network.name} is held by {who}",
                "release it first or change the pin")
        return record

    def _claim(self, owner: Owner, address: IPAddress) -> Record | None:
        """Take `address` for `owner` unless a file holds it already."""
        path = self._address_path(address)
        if os.path.lexists(path):
            return None
        record = new_record(self.network.name, self.pool.interface(address), owner)
        temp = self._path("record.tmp")
        write_new(temp, encode(record))
        try:
            link_replace(temp, self._index_path(owner))
            if not link_exclusive(temp, path):
                return None
        finally:
            remove(temp)
        return record

    def _last_reserved(self) -> IPAddress | None:
        data = read_bytes(self._path("last_reserved"))
        try:
            return ipaddress.ip_address(data.decode().strip()) if data else None
        except (UnicodeDecodeError, ValueError):
            log.warning("ignoring unreadable %s", self._path("last_reserved"))
            return None

    def _held(self, owner: Owner) -> Record | None:
        """The owner's record, through its index: one read and one stat."""
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

    def _read(self, address: IPAddress) -> Record | None:
        data = read_bytes(self._address_path(address))
        if data is None:
            return None
        try:
            return decode(data, self.network.name, address)
        except ValueError as exc:
            log.warning("%s: %s; its address stays out of use",
                        self._address_path(address), exc)
            return None

    def lookup(self, owner: Owner) -> Lease | None:
        held = self._held(owner)
        return self.network.lease(held.address) if held is not None else None

    def release(self, owner: Owner) -> bool:
        if not os.path.isdir(self._path("owner")):
            return False
        with locked(self._path("lock"), self.lock_timeout):
            held = self._held(owner)
            if held is not None:
                remove(self._address_path(held.address.ip))
            remove(self._index_path(owner))
            return held is not None

    def leases(self) -> list[tuple[Owner, Lease]]:
        found, damaged = self._scan()
        for item in damaged:
            log.warning("%s: %s; left alone, its address is not reused", item.where, item.reason)
        return found

    def damaged(self) -> list[Damaged]:
        return self._scan()[1]

    def _scan(self) -> tuple[list[tuple[Owner, Lease]], list[Damaged]]:
        """Every record, read without the lock: each file appears whole or not at all."""
        if not os.path.isdir(self._path("addr")):
            return [], []
        damaged = [Damaged(self.network.name, self._path(name), "foreign file in the state directory")
                   for name in sorted(os.listdir(self.root)) if name not in OWN_NAMES]
        found: list[tuple[int, Owner, Lease]] = []
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
            found.append((int(address), record.owner, self.network.lease(record.address)))
        return [(owner, lease) for _, owner, lease in sorted(found, key=lambda f: f[0])], damaged
