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

from plugin.core.plumbing.base import Plumber, Sandbox, Undo, addressing, default_routes, routing
from plugin.core.records import Attachment

if TYPE_CHECKING:
    from plugin.ipam.model import Lease


class NetnsPlumber(Plumber):
    name = "netns"

    def make(self, sandbox: Sandbox, record: Attachment, leases: list["Lease"],
             push: Undo) -> None:
        ifname = record.interface
        self.ip.add_veth(record.port, sandbox.netns, ifname, record.mac, leases[0].mtu)
        if any(lease.address.version == 6 for lease in leases):
            self.ip.enable_ipv6(sandbox.netns, ifname)
        self.ip.in_pod(sandbox.netns, [f"link set dev {ifname} up",
                                       *addressing(ifname, leases),
                                       *default_routes(ifname, record.gateways),
                                       *routing(ifname, leases)])
