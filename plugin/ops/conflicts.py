"""Addresses another host answered for: listed by doctor, kept by gc, freed by an operator.

Setup probes the pod's VLAN (plugin/core/ports.py); when another MAC answers
for the pod's address, the lease becomes a conflicted record that holds the
address for nobody. Nothing frees it on its own: the other host is still there
until someone removes it, and a pod given the address meanwhile would fight it
for its traffic. `vlanpipe lease clear ADDRESS` is the operator's word that it
is gone.
"""

from __future__ import annotations

import ipaddress

from plugin.config.schema import Config
from plugin.errors import Failure, InputError
from plugin.ipam.model import Conflicted
from plugin.ops.actions import KEPT, Action

CLEAR = "vlanpipe lease clear"


def line(item: Conflicted) -> str:
    """One conflicted address, for doctor and gc."""
    who = item.found_by
    return (f"{item.address} on {item.network}: MAC {item.mac} answered for it when "
            f"{who.namespace}/{who.pod} {who.interface} was set up on node {who.node} "
            f"({item.since})")


def kept(config: Config) -> list[Action]:
    """gc's report of what it leaves: each conflicted address, with the command that frees
    it (never freed in silence, never freed at all by gc)."""
    return [Action(KEPT, f"lease {item.address} on {item.network}",
                   f"{item.found_by.namespace}/{item.found_by.pod}",
                   f"conflicted: MAC {item.mac} answered for it on the VLAN; once that host "
                   f"is gone, {CLEAR} {item.address.split('/')[0]}")
            for item in config.allocators().conflicted()]


def check(config: Config) -> str:
    """doctor's row: no address is kept out of use on the wire's word."""
    found = config.allocators().conflicted()
    if found:
        raise Failure(f"{len(found)} address(es) kept out of use, another host answered for "
                      "them: " + "; ".join(line(item) for item in found[:3]))
    return "no address kept out of use"


def clear(config: Config, address: str) -> str:
    """Free a conflicted address; refuse a live lease, say so when there is nothing."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise InputError(f"lease clear: {address!r} is not an IP address",
                         f"give the address as doctor lists it, e.g. {CLEAR} 10.22.0.5") from None
    found = config.allocators().clear(str(ip))
    live = [r for r in found if not r.conflict]
    if live:
        owner = live[0].owner
        raise InputError(f"{ip} on {live[0].network} is the lease of "
                         f"{owner.namespace}/{owner.pod} {owner.interface} on node {owner.node}, "
                         "not a conflicted one: left alone",
                         "a pod's lease goes with its teardown (or gc)")
    if not found:
        raise InputError(f"no network of {config.source} holds a record of {ip}",
                         "`vlanpipe doctor` lists the conflicted addresses")
    return f"cleared {ip} on {', '.join(r.network for r in found)}: it can be handed out again"
