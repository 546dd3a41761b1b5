"""Attachment records: what the plugin attached to each pod, kept on local disk.

OVSDB `external_ids` is the authority on ports (teardown and gc read it); this
small JSON file per infra container exists so that `status`, which the kubelet
calls on every pod sync, answers from one file read, with no Docker, no
ovs-vsctl and no subprocess at all.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass

from plugin.core.marks import Marks


@dataclass(frozen=True)
class Attachment:
    namespace: str
    pod: str
    infra_id: str
    interface: str
    bridge: str
    port: str
    vlan: int
    address: str
    network: str
    mac: str = ""
    gateway: str = ""
    primary: bool = True
    cni_network: str = ""  # set for CNI attachments: the network config's name


    @property
    def ip(self) -> str:
        return self.address.split("/")[0]

    def marks(self, node: str) -> Marks:
        """The marks on this attachment's OVS port."""
        return Marks(namespace=self.namespace, pod=self.pod, infra_id=self.infra_id,
                     interface=self.interface, address=self.address, network=self.network,
                     node=node, cni_network=self.cni_network)


class RecordStore:
    """One file per infra container under `<state_dir>/attachments`, replaced atomically."""

    def __init__(self, state_dir: str) -> None:
        self.directory = os.path.join(state_dir, "attachments")

    def path(self, infra_id: str) -> str:
        return os.path.join(self.directory, f"{infra_id}.json")

    def load(self, infra_id: str) -> list[Attachment]:
        try:
            with open(self.path(infra_id), encoding="utf-8") as handle:
                return [Attachment(**item) for item in json.load(handle)]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError):
            return []

    def save(self, infra_id: str, attachments: list[Attachment]) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump([asdict(a) for a in attachments], handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path(infra_id))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def delete(self, infra_id: str) -> None:
        try:
            os.unlink(self.path(infra_id))
        except FileNotFoundError:
            pass

    def infra_ids(self) -> list[str]:
        try:
            return [n[:-5] for n in os.listdir(self.directory) if n.endswith(".json")]
        except FileNotFoundError:
            return []
