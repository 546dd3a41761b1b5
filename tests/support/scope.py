"""What one test made, and what of it is left: leak checks that mind their own business.

A test registers its containers, bridges, namespaces and links here (the
fixtures do it for what they make). The check then looks only at names that
follow from those: the plugin's host veth of each container and interface, pipework's
default name for its PID, ports, QoS and Queue rows marked with its container ids,
ports sitting on its bridges (and their meters: `hostnet.bridge_leaks`), the OpenFlow
rules carrying its ports' cookies on bridges it did not make (its own bridges are
checked whole before they go: `hostnet.bridge_leaks`), the /var/run/netns entry of
its PIDs. Anything else on the host
belongs to someone else, so the suite can run beside anything.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field

from plugin import names
from plugin.core import flows, marks
from tests.support import hostnet

# Interface names tests give pods: the exec plugin's, Multus's and containerd's.
IFNAMES = tuple(f"{prefix}{i}" for prefix in ("eth", "net") for i in range(4))
SCOPE_LABEL = "vlanpipe-scope"


@dataclass
class Scope:
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    containers: dict[str, int] = field(default_factory=dict)  # Docker id -> PID
    bridges: set[str] = field(default_factory=set)
    netns: set[str] = field(default_factory=set)  # paths
    links: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        return f"{SCOPE_LABEL}={self.token}"

    def add_container(self, container: hostnet.Container) -> hostnet.Container:
        self.containers[container.id] = container.pid
        return container

    def leaks(self) -> list[str]:
        """What this test made that is still there."""
        links, ports = hostnet.host_links(), hostnet.ovs_ports()
        derived = self._derived_links()
        found = [f"host link {n}" for n in sorted(derived & links)]
        found += [f"host link {n}" for n in sorted(links) if self._pipework_default(n)]
        for name, port in sorted(ports.items()):
            if self._ours(name, port, derived):
                found.append(f"OVS port {name} (bridge {port['bridge']}, tag {port['tag']}, "
                             f"external_ids {port['external_ids']})")
        found += self._rules()
        found += [f"{path}" for path in sorted(self._netns_paths()) if os.path.lexists(path)]
        found += [row for table in ("QoS", "Queue")  # an ingress limit's rows outlive the port
                  for row in hostnet.qos_rows(table, self.containers)]
        found += [f"container {c[:12]} of this test"
                  for c in sorted(hostnet.containers(self.label))]
        return found

    def clean(self) -> None:
        """Best effort: remove what leaks() reports, so one leaky test does not spoil the next."""
        for cid in hostnet.containers(self.label):
            hostnet.run(["docker", "rm", "-f", "-v", cid], check=False)
        derived = self._derived_links()
        for name, port in hostnet.ovs_ports().items():
            if self._ours(name, port, derived):
                hostnet.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-port", name],
                            check=False)
        cookies = {flows.cookie(name) for name in derived}
        for bridge in hostnet.bridges() - self.bridges:
            for cookie in {rule.cookie for rule in hostnet.plugin_rules(bridge)} & cookies:
                hostnet.run(["ovs-ofctl", "--timeout=5", "del-flows", bridge,
                             f"cookie={cookie:#x}/-1"], check=False)
        for name in hostnet.host_links():
            if name in derived or self._pipework_default(name):
                hostnet.run(["ip", "link", "del", name], check=False)
        for row in hostnet.qos_rows("QoS", self.containers):
            hostnet.run(["ovs-vsctl", "--timeout=5", "--if-exists", "destroy", "QoS",
                         row.split()[1]], check=False)
        for row in hostnet.qos_rows("Queue", self.containers):
            hostnet.run(["ovs-vsctl", "--timeout=5", "--if-exists", "destroy", "Queue",
                         row.split()[1]], check=False)
        for path in self._netns_paths():
            if hostnet.run(["ip", "netns", "delete", os.path.basename(path)],
                           check=False).returncode != 0 and os.path.lexists(path):
                os.unlink(path)

    def _rules(self) -> list[str]:
        """The OpenFlow rules of this test's ports on bridges it did not make (shared with
        others: judged by its own ports' cookies). Its own bridges are checked, whole,
        before they go (`hostnet.bridge_leaks`)."""
        cookies = {flows.cookie(name): name for name in self._derived_links()}
        found = []
        for bridge in sorted(hostnet.bridges() - self.bridges):
            found += [f"OpenFlow rule of {cookies[rule.cookie]} on bridge {bridge}: "
                      f"{rule.match} actions={rule.actions}"
                      for rule in hostnet.plugin_rules(bridge) if rule.cookie in cookies]
        return found

    def _derived_links(self) -> set[str]:
        return {names.host_veth(cid, ifname) for cid in self.containers for ifname in IFNAMES} \
            | self.links

    def _pipework_default(self, link: str) -> bool:
        """pipework's own host-side name, `v<IF>pl<PID>`, for one of this test's PIDs."""
        found = re.fullmatch(r"v\w+pl(\d+)", link)
        return bool(found) and int(found.group(1)) in self.containers.values()

    def _ours(self, name: str, port: dict, derived: set[str]) -> bool:
        owner = port["external_ids"].get(marks.KEYS["infra_id"])
        return (name in derived or owner in self.containers or self._pipework_default(name)
                or (port["bridge"] in self.bridges and name != port["bridge"]))

    def _netns_paths(self) -> set[str]:
        return self.netns | {os.path.join(hostnet.NETNS_DIR, str(pid))
                             for pid in self.containers.values()}
