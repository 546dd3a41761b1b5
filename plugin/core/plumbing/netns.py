"""The namespace-path plumber: a pod whose network namespace a CRI runtime made and named.

containerd and CRI-O pass `CNI_NETNS=/var/run/netns/cni-<uuid>`, a namespace
bind-mounted before the sandbox has any process, and a container id Docker has
never seen; pipework needs a container name or a PID, so it cannot serve them.
This plumber builds the same result through the same wrappers: the veth pair
with the same host-side name, its peer made directly inside the namespace with
the pod's interface name and MAC, the addresses (IPv6 without duplicate address
detection), routes and link up in one `ip` process inside, the OVS port with its
tag and marks in one transaction (made first, as for pipework), the announcement
once the datapath has the port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipework_wrapper.ovs import Port
from plugin.core.plumbing.base import Plumber, Sandbox, Undo, addressing, default_routes, routing
from plugin.core.records import Attachment

if TYPE_CHECKING:
    from plugin.ipam.model import Lease


class NetnsPlumber(Plumber):
    name = "netns"

    def plug(self, sandbox: Sandbox, record: Attachment, leases: list["Lease"], push: Undo,
             stale: bool) -> None:
        port, ifname = record.port, record.interface
        if stale or self.ip.link_exists(port):  # named from this container: ours to clear
            self.ovs.delete_ports([port])
            self.ip.delete_link(port)
        push(lambda: self.ovs.delete_ports([port]))
        push(lambda: self.ip.delete_link(port))  # the peer inside goes with it
        datapath = self._plug_port(record)
        self.ip.add_veth(port, sandbox.netns, ifname, record.mac, leases[0].mtu)
        if any(lease.address.version == 6 for lease in leases):
            self.ip.enable_ipv6(sandbox.netns, ifname)
        self.ip.in_pod(sandbox.netns, [f"link set dev {ifname} up",
                                       *addressing(ifname, leases),
                                       *default_routes(ifname, record.gateways),
                                       *routing(ifname, leases)])
        self._settle_checksum(sandbox.netns, ifname, datapath)
        self._check(sandbox, record)
        self._wait_in_datapath(port)
        self.announce(sandbox.netns, ifname, list(record.addresses))

    def unplug(self, infra_id: str, ports: list[str], only: set[str] | None) -> list[Port]:
        return self._remove(infra_id, ports, only)
