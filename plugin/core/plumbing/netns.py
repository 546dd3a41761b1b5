"""The namespace-path plumber: a pod whose network namespace a CRI runtime made and named.

containerd and CRI-O pass `CNI_NETNS=/var/run/netns/cni-<uuid>`, a namespace
bind-mounted before the sandbox has any process, and a container id Docker has
never seen; pipework needs a container name or a PID, so it cannot serve them.
This plumber builds the same result through the same wrappers: the veth pair
with the same host-side name, its peer made directly inside the namespace with
the pod's interface name and MAC, the address, routes and link up in one `ip`
process inside, the OVS port with its tag and marks in one transaction, the
announcement.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from pipework_wrapper.ovs import Port
from plugin.core.plumbing.base import Plumber, Sandbox, Undo
from plugin.core.records import Attachment

if TYPE_CHECKING:
    from plugin.ipam.model import Lease


class NetnsPlumber(Plumber):
    name = "netns"

    def plug(self, sandbox: Sandbox, record: Attachment, lease: "Lease", push: Undo,
             stale: bool) -> None:
        port, ifname = record.port, record.interface
        if stale or self.ip.link_exists(port):  # named from this container: ours to clear
            self.ovs.delete_ports([port])
            self.ip.delete_link(port)
        push(lambda: self.ovs.delete_ports([port]))
        push(lambda: self.ip.delete_link(port))  # the peer inside goes with it
        self.ip.add_veth(port, sandbox.netns, ifname, record.mac, lease.mtu)
        self.ip.in_pod(sandbox.netns, _inside(record, lease))
        self.ovs.plug(record.bridge, port, record.vlan,
                      record.marks(self.config.node_name).external_ids())
        self._check(sandbox, record, lease)
        self.announce(sandbox.netns, ifname, [record.address])

    def unplug(self, infra_id: str, ports: list[str], only: set[str] | None) -> list[Port]:
        return self._remove(infra_id, ports, only)


def _inside(record: Attachment, lease: "Lease") -> list[str]:
    """The `ip` commands that finish the pod's side: address, link up, routes. A gateway
    makes the default route, as pipework's ADDR@GATEWAY does."""
    ifname = record.interface
    nodad = " nodad" if ipaddress.ip_interface(record.address).version == 6 else ""
    commands = [f"addr add {record.address} dev {ifname}{nodad}", f"link set dev {ifname} up"]
    if record.gateway:
        commands.append(f"route replace default via {record.gateway} dev {ifname}")
    for route in lease.routes:
        via = f" via {route.gateway}" if route.gateway else ""
        commands.append(f"route replace {route.destination}{via} dev {ifname}")
    return commands
