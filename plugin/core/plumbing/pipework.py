"""The pipework plumber: a Docker container's interface made by pipework, as the card asks.

pipework creates the veth, moves it into the container found by id, names
it, addresses it and adds the OVS port with its tag; the plugin chooses the
host-side name (hashed from the container and interface, so a reused PID or
pipework's substring match of port names cannot hand the pod a stale port),
then marks the port in one OVSDB transaction and checks the result.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pipework_wrapper import iproute, pipework
from pipework_wrapper.ovs import Ovs, Port
from plugin.core.plumbing.base import Plumber, Sandbox, Undo
from plugin.core.records import Attachment

if TYPE_CHECKING:
    from plugin.config.schema import Config
    from plugin.ipam.model import Lease


class PipeworkPlumber(Plumber):
    name = "pipework"

    def __init__(self, config: "Config", ovs: Ovs | None = None, ip: Any = iproute,
                 runner: Any = pipework, **wrappers: Any) -> None:
        super().__init__(config, ovs, ip, **wrappers)
        self.pipework = runner

    def plug(self, sandbox: Sandbox, record: Attachment, lease: "Lease", push: Undo,
             stale: bool) -> None:
        port = record.port
        if stale or self.ip.link_exists(port):
            # Named from this container's id: nothing else can own it. Left in place it
            # would make pipework refuse ("exists and is up") or skip add-port.
            self.ovs.delete_ports([port])
            self.ip.delete_link(port)
        netns_existed = self.ip.has_netns_link(sandbox.pid)
        push(lambda: self.ovs.delete_ports([port]))
        push(lambda: self.ip.delete_link(port))
        if not netns_existed:
            push(lambda: self.ip.remove_netns_link(sandbox.pid))
        self.pipework.attach(self.config.pipework, pipework.argv(
            record.bridge, sandbox.container, record.interface, port, record.address,
            record.vlan, gateway=record.gateway or None, mac=record.mac),
            self.config.pipework_timeout,
            quiet_dir=os.path.join(self.config.state_dir, "quiet-arping"))
        self.ovs.plug(record.bridge, port, record.vlan,
                      record.marks(self.config.node_name).external_ids())
        if lease.mtu:  # what pipework does not do: MTU, the network's routes
            self.ip.set_mtu(sandbox.netns, record.interface, port, lease.mtu)
        for route in lease.routes:
            self.ip.add_route(sandbox.netns, record.interface, str(route.destination),
                              str(route.gateway) if route.gateway else None)
        self._check(sandbox, record, lease)
        self.announce(sandbox.netns, record.interface, [record.address])

    def unplug(self, infra_id: str, ports: list[str], only: set[str] | None) -> list[Port]:
        return self._remove(infra_id, ports, only)
