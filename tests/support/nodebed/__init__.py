"""A multi-node test bed on one machine: nodes, a switch and one etcd, each in its own namespaces.

Plain Python, no pytest: the node tests and the benchmark both use it.

Why: the plugin's interesting behaviour is between nodes (cluster-wide IPAM in
etcd, the same VLAN on two nodes, a pod that moves), and this project has one
machine. A "node" here is what the plugin can see of a node: a network
namespace and a mount namespace (plus a UTS namespace for its host name) with
its own Open vSwitch daemons, bridge, /var/run/netns, sysfs and state dir.
The nodes are cabled to a "switch", a namespace with a userspace OVS bridge
that learns MACs like a physical switch, and reach one etcd over a management
network, as racks do::

      node a                        switch                       node b
    +-----------------+           +-----------+           +-----------------+
    | OVS k8s_br      |  uplink0  | OVS sw0   |  uplink0  | OVS k8s_br      |
    |  (netdev)       |-----------| trunks    |-----------|  (netdev)       |
    | mgmt0 .100.11   |       a-up+-----------+b-up       | mgmt0 .100.12   |
    +--------|--------+                                   +--------|--------+
             |           mgmt: Linux bridge mgmtbr                 |
             +--- m-a ---  169.254.100.1, etcd :2379  --- m-b -----+

Rules this module keeps, because another test suite runs on the same host
at the same time and counts every new host link, host OVS port and
/var/run/netns entry as a leak of its own:

- Nothing is ever created in the host's network namespace, host OVS or host
  /var/run/netns, not even for a moment. Every veth pair is created from
  inside one of the bed's namespaces with its peer placed directly in
  another (``ip link add X type veth peer name Y netns PID``).
- Mounts are made in private mount namespaces (propagation private), so the
  tmpfs over /var/run/openvswitch hides the node's OVS from the host and the
  host's OVS from the node.
- Containers made through the bed use ``--network none`` (Docker's default
  bridge would add a host veth) and their own label, not the e2e suite's.

Processes: every long-lived process (namespace holders, ovsdb-server,
ovs-vswitchd, etcd) is forked by one thread that lives as long as the
Python process, with PR_SET_PDEATHSIG=SIGKILL, so they die with the test
process however it ends (PDEATHSIG follows the *thread* that forked, so a
worker thread must not be the parent). ``NodeBed.close()`` stops them
gracefully, kills anything else still running in the bed's namespaces, and
removes the temp folder; when the last process of a namespace is gone, the
kernel destroys it and every veth, tap and mount in it.

Use::

    with NodeBed(nodes=("a", "b"), bridge="k8s_br", plug_uplinks=True) as bed:
        a = bed.node("a")                       # .pid .name .state_dir .bridge .uplink
        a.run(["ovs-vsctl", "show"])            # nsenter -t PID -n -m -u -- ...
        a.ovs("list-ports", a.bridge)           # this node's own ovsdb-server
        c = bed.start_container("x")            # removed by close()
        a.pipework(c.id, "10.66.0.5/24", vlan=22, hostif="vpx")
        ping(c.pid, "10.66.0.6")                # from the pod's netns, test subnets only
        bed.etcd_url(a)                         # http://169.254.100.1:2379, for the node
        bed.etcd_client().put("/k", "v")        # this process, via bed.etcd_host_url

On the host the bed leaves only its temp folder, its labelled containers and,
while it lives, a TCP listener on 127.0.0.1 (the etcd forwarder).

The parts, one concern each: ``processes`` (children that die with this process),
``sockets`` (sockets in the bed's namespaces, the etcd forwarder), ``namespaces``
(a namespace, a node, the switch, the mgmt network), ``bed`` (building and removing
it all, preflight, the sweep of dead beds) and ``pods`` (ping from a pod). A pod's
announcement is the product's own, ``pipework_wrapper.announce``.
"""

from __future__ import annotations

from tests.support.nodebed.bed import (IMAGE, LABEL_KEY, PID_LABEL, TMP_PREFIX, NodeBed,
                                       preflight, sweep_stale)
from tests.support.nodebed.namespaces import NETNS_RUN, Mgmt, Namespace, Node, Switch
from tests.support.nodebed.pods import PingResult, ping, pod_subnets
from tests.support.nodebed.processes import BedError, daemon_env
from tests.support.nodebed.sockets import NetnsForwarder, netns_socket

__all__ = ["IMAGE", "LABEL_KEY", "NETNS_RUN", "PID_LABEL", "TMP_PREFIX", "BedError", "Mgmt",
           "Namespace", "NetnsForwarder", "Node", "NodeBed", "PingResult", "Switch",
           "daemon_env", "netns_socket", "ping", "pod_subnets", "preflight", "sweep_stale"]
