"""Port security at setup and teardown: a pod's port is guarded before the pod can send.

pipework brings both veth ends up itself, so "before the link comes up" cannot be
ordered around it. Instead the port's OpenFlow number is fixed in the OVSDB
transaction that creates the port (`ofport_request`), before any link exists, and
the guard's rules (`plugin.core.flows`) are installed for that number, in one
atomic bundle, before pipework or the netns plumber makes the pod's end: when
ovs-vswitchd opens the device, the rules are already there, so the pod's first
frame meets them. After plugging, the pod's IPv6 link-local addresses are read
from the pod and added to the rules (a second bundle, only when it has some).

The number is one no Interface has or asks for. Two setups on one bridge must not
choose the same one, so the read and the port's transaction run under a short
per-bridge lock (a file under `<state_dir>/bridge-locks`, bounded by the lock
timeout): one `ovs-vsctl` read more per setup, and setups on one bridge wait for
each other only for those two calls. The search starts at a number hashed from
the port's name, so numbers are seldom reused; and each bundle also deletes any
rule of the plugin's left on that number (a port whose teardown was killed), so a
new port never inherits old rules.

Teardown deletes an attachment's rules by its cookie after its port and veth are
gone; a bridge that no longer exists (or an ovs-vswitchd that is down, which holds
no rules) does not fail it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Iterable

from pipework_wrapper import iproute
from pipework_wrapper.ofctl import Ofctl
from plugin.core import flows
from plugin.core.records import Attachment
from plugin.errors import ToolFailed
from plugin.locks import locked

log = logging.getLogger("vlanpipe.guard")

if TYPE_CHECKING:
    from plugin.config.schema import Config

LOWEST, HIGHEST = 1, 65279  # the numbers a port may ask for (0xff00 and up are reserved)


def choose(port: str, taken: set[int]) -> int:
    """A number no Interface has or asks for, searched from one hashed from `port`."""
    span = HIGHEST - LOWEST + 1
    start = int.from_bytes(hashlib.sha256(port.encode()).digest()[:4], "big") % span
    for step in range(span):
        number = LOWEST + (start + step) % span
        if number not in taken:
            return number
    raise ToolFailed("every OpenFlow port number is taken", "remove unused ports")


class PortGuard:
    """Numbers a pod's port, installs its rules before its link exists, removes them."""

    def __init__(self, config: "Config", ovs: Any, ofctl: Ofctl | None = None,
                 ip: Any = iproute) -> None:
        self.config = config
        self.ovs = ovs
        self.ofctl = ofctl or Ofctl(config.ovs_timeout)
        self.ip = ip

    def plug(self, record: Attachment, plug: Callable[[int], str]) -> tuple[str, int]:
        """`plug(number)` (the port's transaction) with a number free on the node, chosen
        and used under the bridge's lock; (what `plug` returned, the number)."""
        directory = os.path.join(self.config.state_dir, "bridge-locks")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with locked(os.path.join(directory, f"{record.bridge}.lock"), self.config.lock_timeout):
            number = choose(record.port, self.ovs.ofports())
            return plug(number), number

    def install(self, record: Attachment, ofport: int) -> None:
        """One bundle: the bridge's default forwarding (the FORWARD table's NORMAL, so a
        bridge nobody reconciled forwards what the guard admits), and the port's rules
        exactly as its record says (none when it is not guarded)."""
        self.ofctl.bundle(record.bridge, [*flows.bridge_rules(), *self._rules(record, ofport)])

    def settle(self, netns: str, record: Attachment, ofport: int) -> Attachment:
        """The record with the pod's IPv6 link-local addresses, read from the pod, and its
        rules replaced to admit them (a guarded port that has some)."""
        if record.port_security != "on":
            return record
        found = tuple(self.ip.link_locals(netns, record.interface))
        if not found:
            return record
        settled = replace(record, link_locals=found)
        self.ofctl.bundle(record.bridge, self._rules(settled, ofport, leftovers=False))
        return settled

    def undo(self, record: Attachment) -> Callable[[], None]:
        """The rollback of `install`: the port's rules go (the bridge's stay)."""
        return lambda: self.remove([(record.bridge, record.port)])

    def remove(self, ports: Iterable[tuple[str, str]]) -> None:
        """Delete the rules of each (bridge, port), one ovs-ofctl per bridge. The ports are gone
        by now, so a bridge that cannot take the deletion (no device, an ovs-vswitchd that is
        down or restarting, which holds no rules) does not fail teardown: what is left is
        rules of a gone port, which reconcile and gc sweep and a new port on that number
        never inherits (`_rules`' leftovers); it is logged."""
        by_bridge: dict[str, list[str]] = {}
        for bridge, port in sorted(set(ports)):
            if bridge:
                by_bridge.setdefault(bridge, []).append(flows.forget(flows.cookie(port)))
        for bridge, lines in by_bridge.items():
            try:
                self.ofctl.delete(bridge, lines)
            except ToolFailed as exc:
                log.warning("rules of %d removed port(s) left on bridge %s for reconcile and "
                            "gc to sweep: %s", len(lines), bridge, exc.line())

    def _rules(self, record: Attachment, ofport: int, leftovers: bool = True) -> list[str]:
        """The port's GUARD rules, replacing its own, and (`leftovers`: before the port has
        any other) any rule of the plugin's left on `ofport` by a port whose teardown was
        killed, in every table."""
        first = [f"delete cookie={flows.PREFIX:#x}/{flows.MASK:#x},in_port={ofport}"]
        guard = flows.guard_of(record, ofport, self.config.port_security)
        rules = flows.replace(guard) if guard else [flows.unguard(record.port)]
        return first + rules if leftovers else rules
