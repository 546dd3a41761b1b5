"""The node's uplink: the host interface that carries the bridge's VLANs to the switches.

A VLAN spans nodes through the physical network: each node's bridge has one
trunk port to it. `init` plugs it in (idempotent, corrected when the VLAN list
changes), marked as the plugin's; a port of that name the plugin did not mark
is never touched. An interface that carries the host's own address is
refused: once it is a bridge port, the host would lose that address's traffic.
"""

from __future__ import annotations

from pipework_wrapper import iproute
from pipework_wrapper.ovs import Ovs, Port
from plugin.config.uplink import Uplink
from plugin.core import marks
from plugin.errors import BackendError, NotReady


def ensure(ovs: Ovs, uplink: Uplink, node: str) -> None:
    """Plug the uplink into its bridge as a trunk of its VLANs, or say why not; unplug an
    uplink this node had before (two trunks into one network could make a loop)."""
    name = uplink.interface
    if not iproute.link_exists(name):
        raise NotReady(f"uplink {name} does not exist on this node",
                       "fix uplink.interface in the config, or bring the interface up first")
    used = iproute.host_addresses(name)
    if used:
        raise BackendError(_carries(name, used), _move_address(name))
    found = ovs.port(name)
    if found is not None and not marks.is_uplink(found.external_ids):
        raise BackendError(f"port {name} on bridge {found.bridge or '(none)'} is not "
                           "vlanpipe's uplink; the plugin leaves it alone", _foreign(name))
    if found is not None and found.bridge != uplink.bridge:
        raise BackendError(f"uplink {name} is on bridge {found.bridge}, not {uplink.bridge}",
                           _elsewhere(name))
    ovs.plug_trunk(uplink.bridge, name, sorted(uplink.vlans or ()), marks.uplink(node))
    if not iproute.is_up(name):
        iproute.set_up(name)
    ovs.delete_ports([p.name for p in former(ovs, uplink, node)])


def former(ovs: Ovs, uplink: Uplink, node: str) -> list[Port]:
    """This node's marked uplinks other than the configured one (the config changed)."""
    return [p for p in ovs.ports(**marks.uplink(node)) if p.name != uplink.interface]


def unplug_all(ovs: Ovs, node: str) -> list[str]:
    """With no uplink in the config: take every trunk this node marked as its uplink off
    its bridge (left plugged, it would go on carrying the VLANs unseen by doctor, list and
    gc); the names of those removed."""
    names = sorted(p.name for p in ovs.ports(**marks.uplink(node)))
    ovs.delete_ports(names)
    return names


INIT = "run init: it corrects this"


def problems(ovs: Ovs, uplink: Uplink, node: str) -> list[tuple[str, str]]:
    """How the uplink differs from the config, each with its fix (empty: as configured).
    Only what `init` corrects says "run init"; what it refuses says what init needs."""
    name = uplink.interface
    found = [(f"former uplink {p.name} is still on bridge {p.bridge}", INIT)
             for p in former(ovs, uplink, node)]
    if not iproute.link_exists(name):
        return found + [(f"uplink {name} does not exist",
                         "fix uplink.interface in the config, or create the interface")]
    if not iproute.is_up(name):
        found.append((f"uplink {name} is down", INIT))
    used = iproute.host_addresses(name)
    if used:
        found.append((_carries(name, used), _move_address(name)))
    port = ovs.port(name)
    if port is None:
        return found + [(f"uplink {name} is not on bridge {uplink.bridge}",
                         INIT if not used else "init plugs it in once the address is moved")]
    if not marks.is_uplink(port.external_ids):
        found.append((f"port {name} is not marked as vlanpipe's uplink", _foreign(name)))
    if port.bridge != uplink.bridge:
        found.append((f"uplink {name} is on bridge {port.bridge}, not {uplink.bridge}",
                      _elsewhere(name)))
    if set(port.trunks) != set(uplink.vlans or ()):
        found.append((f"uplink {name} trunks {describe(port)}, the config says "
                      f"{_vlans(sorted(uplink.vlans or ()))}", INIT))
    return found


def _move_address(name: str) -> str:
    return (f"init refuses it: move the address off {name} (to another interface, or to the "
            "bridge's own port) or choose another uplink")


def _foreign(name: str) -> str:
    return f"init leaves it alone: remove it (ovs-vsctl del-port {name}) or choose another uplink"


def _elsewhere(name: str) -> str:
    return f"init refuses it: run ovs-vsctl del-port {name}, then init again"


def _carries(name: str, used: list[str]) -> str:
    return (f"uplink {name} carries the host's address {', '.join(used)}: as a bridge port "
            "it would cut the host off that network")


def describe(port: Port) -> str:
    return _vlans(list(port.trunks))


def _vlans(vlans: list[int]) -> str:
    return "every VLAN" if not vlans else "VLANs " + ",".join(map(str, vlans))
