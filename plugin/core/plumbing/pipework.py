"""The pipework plumber: a Docker container's interface made by pipework, as the card asks.

The plugin makes the OVS port, with its tag and marks, in one OVSDB
transaction; pipework, finding it listed, skips its own add-port, and creates
the veth, moves it into the container found by id, names and addresses it.
The plugin chooses the host-side name (hashed from the container and
interface, so a reused PID or pipework's substring match of port names cannot
hand the pod a stale port), checks the result and announces the pod once the
datapath has the port.

pipework gives an interface one address. A dual-stack pod's IPv4 address goes
to pipework and the plugin adds the IPv6 one itself (IPv6 turned on for that
interface, without duplicate address detection); for an IPv6-only pod the
plugin turns IPv6 on, and detection off, as the pod's defaults for the pipework
call only (Docker turns IPv6 off in its containers), and puts them back.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pipework_wrapper import iproute, pipework
from plugin.core.plumbing.base import Plumber, Sandbox, Undo, addressing, default_routes, routing
from plugin.core.records import Attachment

if TYPE_CHECKING:
    from plugin.config.schema import Config
    from plugin.ipam.model import Lease


class PipeworkPlumber(Plumber):
    name = "pipework"

    def __init__(self, config: "Config", ip: Any = iproute, runner: Any = pipework) -> None:
        super().__init__(config, ip)
        self.pipework = runner

    def make(self, sandbox: Sandbox, record: Attachment, leases: list["Lease"],
             push: Undo) -> None:
        port, ifname = record.port, record.interface
        if not self.ip.has_netns_link(sandbox.pid):  # pipework's, left when it fails
            push(lambda: self.ip.remove_netns_link(sandbox.pid))
        first = next((i for i, lease in enumerate(leases) if lease.address.version == 4), 0)
        self._pipework(sandbox, record, leases[first].address.version, push,
                       record.addresses[first])
        if leases[0].mtu:  # what pipework does not do: MTU, the other family, routes
            self.ip.set_mtu(sandbox.netns, ifname, port, leases[0].mtu)
        rest = [lease for i, lease in enumerate(leases) if i != first]
        if rest:
            self.ip.enable_ipv6(sandbox.netns, ifname)
        commands = (addressing(ifname, rest) + default_routes(ifname, record.gateways)
                    + routing(ifname, leases))
        if commands:
            self.ip.in_pod(sandbox.netns, commands)

    def _pipework(self, sandbox: Sandbox, record: Attachment, family: int, push: Undo,
                  address: str) -> None:
        """pipework with one address and never a gateway (its `ADDR@GATEWAY` deletes the
        pod's default route); for an IPv6 one, under the pod's IPv6 defaults turned on for
        the call (and `-a 6` for upstream's pipework, which otherwise runs ip -4)."""
        args = pipework.argv(
            record.bridge, sandbox.container, record.interface, record.port, address,
            record.vlan, mac=record.mac,
            family=6 if family == 6 and self.pipework.generation(
                self.config.pipework) == "upstream" else None)
        quiet = os.path.join(self.config.state_dir, "quiet-arping")
        if family == 4:
            self.pipework.attach(self.config.pipework, args, self.config.pipework_timeout,
                                 quiet_dir=quiet)
            return
        before = self.ip.ipv6_defaults(sandbox.netns, ("0", "0"))
        push(lambda: self.ip.ipv6_defaults(sandbox.netns, before))
        try:
            self.pipework.attach(self.config.pipework, args, self.config.pipework_timeout,
                                 quiet_dir=quiet)
        finally:
            self.ip.ipv6_defaults(sandbox.netns, before)
