"""What enforces a port's bandwidth limits, and its removal: a meter and a QoS per port.

Checked on the userspace datapath, where the usual tools do nothing: OVS's
`ingress_policing_rate` needs a tc police action this kernel lacks (OVS only
logs it), and a tc limiter on the host veth's ingress (the CNI bandwidth
plugin's ifb) is bypassed, since OVS reads the frames before tc ingress. What
holds a rate on both datapaths:

- egress (from the pod): an OpenFlow meter with a drop band, used by a rule in
  table FORWARD for the port's traffic, under the attachment's cookie
  (`flows.cookie`), so removal by cookie takes the rule too. A meter has no
  cookie, so its id says whose it is: `METER_BASE` + the port's OpenFlow number,
  which no other port of the bridge holds while this one exists (so concurrent
  setups never collide), and which is read before the port is deleted.
- ingress (towards the pod): a `linux-htb` QoS with `max-rate` and one Queue on
  the port, created in the port's own OVSDB transaction (`qos`) and marked like
  it; QoS and Queue rows outlive their port in OVSDB, so removal destroys them.

A limit the datapath cannot enforce (no meters) fails setup, never a silent no-op.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from pipework_wrapper import iproute
from pipework_wrapper.ofctl import Ofctl
from pipework_wrapper.ovs import Ovs, Qos
from plugin.core import flows, marks
from plugin.errors import BackendError, ConfigError
from plugin.policy.bandwidth import Bandwidth

if TYPE_CHECKING:
    from plugin.config.schema import Config
    from plugin.core.records import Attachment

# Meter ids of the plugin: above any a person numbers by hand, and with room for every
# OpenFlow port number (1-0xff00) below the userspace datapath's 262144 meters.
METER_BASE = 0x30000
PRIORITY = 10  # in FORWARD, above the bridge's default NORMAL
HINT = ("use a bridge whose datapath has OpenFlow meters (datapath_type netdev has them; "
        "the kernel's need Linux 4.15+), or set no egressRate")


def resolve(config: "Config", asked: Bandwidth, network: str) -> Bandwidth:
    """A pod's limits: what it (or its CNI network config) asked for, per direction, over
    its network's defaults in config.yaml, each within the node's `bandwidth_max`."""
    default = next((n.bandwidth for n in config.networks if n.name == network), Bandwidth())
    limits = asked.over(default)
    for key, value, most in limits.exceeding(config.bandwidth_max):
        raise ConfigError(f"bandwidth {key} = {value} is above this node's maximum, "
                          f"bandwidth_max.{key} = {most}",
                          "ask for less, or raise bandwidth_max in the node's config.yaml")
    return limits


def meter_id(ofport: int) -> int:
    return METER_BASE + ofport


def qos(record: "Attachment", node: str) -> Qos | None:
    """The QoS that holds the port's ingress limit (None without one)."""
    limits = record.bandwidth
    if not limits.ingress:
        return None
    return Qos(limits.ingress_rate, limits.ingress_burst,
               record.marks(node).external_ids())


class Limits:
    """Makes and removes a port's meter and rule, checks its QoS took hold."""

    def __init__(self, ovs: Ovs, timeout: float, ofctl: Ofctl | None = None) -> None:
        self.ovs = ovs
        self.timeout = timeout
        self.ofctl = ofctl or Ofctl(timeout)

    def check(self, record: "Attachment") -> None:
        """Before anything is made: the bridge can enforce the record's egress limit."""
        if record.bandwidth.egress and not self.ofctl.meter_features(record.bridge).can_limit():
            raise BackendError(f"bridge {record.bridge} cannot enforce egressRate: its "
                               "datapath has no OpenFlow meters that drop at a rate", HINT)

    def apply(self, record: "Attachment", ofport: int,
              push: Callable[[Callable[[], object]], None]) -> None:
        """Once the port (OpenFlow number `ofport`, fixed with it) is in the datapath: its
        meter and rule (egress), and its QoS in force on the device (ingress); each undo
        pushed before its step."""
        limits = record.bandwidth
        if limits.egress:
            meter = meter_id(ofport)
            push(lambda: self.ofctl.delete_meter(record.bridge, meter))
            # A meter of that id can only be a dead port's (the number is this port's now).
            self.ofctl.delete_meter(record.bridge, meter)
            self.ofctl.add_meter(record.bridge, meter, limits.egress_rate // 1000,
                                 max(1, -(-limits.egress_burst // 1000)))
            self.ofctl.bundle(record.bridge, [*flows.bridge_rules(), rule(record, ofport)])
        if limits.ingress:
            self._wait_for_htb(record.port)

    def restore(self, record: "Attachment", ofport: int) -> None:
        """The egress meter and its rule again (an ovs-vswitchd restart drops both; reconcile
        calls this when the rule is missing): the meter replaced, then the rule."""
        limits, meter = record.bandwidth, meter_id(ofport)
        self.ofctl.delete_meter(record.bridge, meter)
        self.ofctl.add_meter(record.bridge, meter, limits.egress_rate // 1000,
                             max(1, -(-limits.egress_burst // 1000)))
        self.ofctl.bundle(record.bridge, [rule(record, ofport)])

    def remove_meter(self, record: "Attachment") -> None:
        """The port's meter, while the port still holds its OpenFlow number (after, a new
        port could be given it, and its meter the same id). Deleting a meter deletes the
        rule that uses it, and only that: the port's GUARD rules (same cookie) stay until
        the port is gone, so the port never sends unguarded."""
        ofport = self.ovs.ofport(record.port)
        if ofport > 0:  # else the port is gone already: gc sweeps its meter
            self.ofctl.delete_meter(record.bridge, meter_id(ofport))

    def remove_qos(self, record: "Attachment") -> None:
        """The QoS and Queue rows of the record's port, once the port is deleted."""
        self.ovs.destroy_qos(*self.ovs.qos_rows(**marks.of_container(record.infra_id),
                                                **{marks.KEYS["interface"]: record.interface}))

    def stale_meters(self, bridge: str) -> list[int]:
        """The plugin's meters on `bridge` whose OpenFlow number no port of the plugin
        holds. Listed before the ports: setup adds a meter only once its port holds the
        number, so a meter listed here whose port is alive is always found holding it."""
        found = [m for m in self.ofctl.meters(bridge) if METER_BASE < m <= METER_BASE + 0xFF00]
        if not found:
            return []
        held = {meter_id(p.ofport) for p in self.ovs.ports(**marks.owned())
                if p.bridge == bridge and p.ofport}
        return [m for m in found if m not in held]

    def _wait_for_htb(self, port: str) -> None:
        """Until ovs-vswitchd put the htb qdisc on the port's device: a QoS in OVSDB that
        never took hold would be a limit only on paper."""
        deadline = time.monotonic() + self.timeout
        while "htb" not in iproute.root_qdiscs(port):
            if time.monotonic() > deadline:
                raise BackendError(f"Open vSwitch did not put the ingress limit (linux-htb "
                                   f"QoS) on port {port} within {self.timeout:g} s",
                                   "check ovs-vswitchd's log for QoS errors on the port")
            time.sleep(0.01)


def rule(record: "Attachment", ofport: int) -> str:
    """The `add` line that sends the port's traffic through its meter, then on as usual."""
    return (f"add table={flows.FORWARD},priority={PRIORITY},"
            f"cookie={flows.cookie(record.port):#x},in_port={ofport},"
            f"actions=meter:{meter_id(ofport)},NORMAL")
