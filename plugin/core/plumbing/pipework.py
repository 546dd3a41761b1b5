"""The pipework plumber: a Docker container's interface made by pipework, as the card asks.

pipework creates the veth, moves it into the container found by id, names
it, addresses it and adds the OVS port with its tag; the plugin chooses the
host-side name (hashed from the container and interface, so a reused PID or
pipework's substring match of port names cannot hand the pod a stale port),
then marks the port in one OVSDB transaction and checks the result.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pipework_wrapper import iproute, pipework
from pipework_wrapper.ovs import Port
from plugin.core.plumbing.base import Plumber, Sandbox, Undo
from plugin.core.records import Attachment
from plugin.ipam.mac import mac_for

if TYPE_CHECKING:
    from plugin.ipam.model import Lease


class PipeworkPlumber(Plumber):
    name = "pipework"

    def plug(self, sandbox: Sandbox, record: Attachment, lease: "Lease", push: Undo,
             stale: bool) -> None:
        port = record.port
        if stale or iproute.link_exists(port):
            # Named from this container's id: nothing else can own it. Left in place it
            # would make pipework refuse ("exists and is up") or skip add-port.
            self.ovs.delete_ports([port])
            iproute.delete_link(port)
        netns_existed = os.path.lexists(iproute.netns_link(sandbox.pid))
        push(lambda: self.ovs.delete_ports([port]))
        push(lambda: iproute.delete_link(port))
        if not netns_existed:
            push(lambda: iproute.remove_netns_link(sandbox.pid))
        derived_mac = record.mac == mac_for(lease.address.ip)
        quiet = os.path.join(self.config.state_dir, "quiet-arping")
        pipework.attach(self.config.pipework, pipework.argv(
            record.bridge, sandbox.container, record.interface, port, record.address,
            record.vlan, gateway=record.gateway or None, mac=record.mac),
            self.config.pipework_timeout,
            quiet_dir=quiet if derived_mac and not self.config.announce_arp else None)
        self.ovs.plug(record.bridge, port, record.vlan,
                      record.marks(self.config.node_name).external_ids())
        self._finish(sandbox, record, lease)

    def unplug(self, infra_id: str, ports: list[str], only: set[str] | None) -> list[Port]:
        return self._remove(infra_id, ports, only)
