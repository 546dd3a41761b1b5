"""A tenant's network config held to the node's `cni` allow-lists: the call's Config.

A network config is written by whoever may create a NetworkAttachmentDefinition
(with Multus), so it may choose only what the node's config lets it. Its keys are
judged in `netconf.py`; the judgement against the node's config is made here, beside
the node config's own parsing, so one place judges every config source. A refusal is
a ConfigError (CNI code 7) naming the key, the value and who may change it.
"""

from __future__ import annotations

from dataclasses import replace

from plugin.config.netconf import NetConf, refused
from plugin.config.reader import Section
from plugin.config.cnipolicy import CniPolicy
from plugin.config.schema import Config, InterfaceSpec, vlan_rule
from plugin.config.security import inside
from plugin.policy import trunk as trunks
from plugin.policy.vlan import VlanRule


def bind(choice: NetConf, node: Config, ifname: str) -> Config:
    """The call's Config: the node's, with what this network chose, where the node allows it."""
    policy = node.cni
    bridge = choice.bridge or node.bridge
    if bridge not in policy.bridges:
        raise refused("bridge", bridge, "is not a bridge this node lets networks use "
                      f"(cni.bridges: {', '.join(sorted(policy.bridges))})")
    if isinstance(choice.vlan, int) and not policy.allows_vlan(choice.vlan):
        raise refused("vlan", choice.vlan, "is not a VLAN this node lets networks use (cni.vlans)")
    beyond = trunks.outside(choice.trunk, policy.vlans)
    if beyond is not None:
        raise refused("trunk", beyond, "is not a VLAN this node lets networks use (cni.vlans)")
    if choice.mtu is not None and not policy.allows_mtu(choice.mtu):
        raise refused("mtu", choice.mtu, "is not an MTU this node lets networks use (cni.mtu: "
                      f"{policy.mtus[0]}-{policy.mtus[1]})")
    if choice.ipam_type and choice.ipam_type not in policy.ipam_types:
        raise refused("ipam.type", choice.ipam_type, "is not an IPAM plugin this node lets "
                      f"networks use (cni.ipam: {', '.join(policy.ipam_types) or 'none'})")
    _judge_security(choice, policy)
    networks = node.networks
    if choice.network is not None:
        # Every family of the network (a dual-stack one is two NetworkConfigs of one name)
        # serves every VLAN of this network config. The node's other networks serve none
        # but stay known: DEL releases on the network an attachment's record names.
        if not any(n.name == choice.network for n in node.networks):
            raise refused("vlanpipe.network", choice.network, "is not a network of this node "
                          f"(networks: {', '.join(n.name for n in node.networks)})")
        networks = tuple(replace(n, vlans=None if n.name == choice.network else ())
                         for n in node.networks)
    rule = next(a.vlan for a in node.attachments if a.primary)
    if isinstance(choice.vlan, int):
        rule = VlanRule("fixed", tag=choice.vlan)
    elif choice.vlan is not None:
        rule = vlan_rule(Section(f"CNI network '{choice.name}'", choice.vlan, "vlan"))
    return replace(node, bridge=bridge, networks=networks,
                   attachments=(InterfaceSpec(ifname or "net1", bridge, rule,
                                              trunk=choice.trunk),))


def _judge_security(choice: NetConf, policy: CniPolicy) -> None:
    """Port security is the node's to relax: a network config may set it only where
    `cni.port_security_choice` allows, and claim extra addresses only inside
    `cni.address_pair_cidrs`."""
    if choice.port_security is not None and not policy.port_security_choice:
        raise refused("port_security", choice.port_security, "is a setting this node does "
                      "not let networks choose (cni.port_security_choice: false)")
    for i, (address, _) in enumerate(choice.pairs):
        if not inside(address, policy.address_pair_cidrs):
            cidrs = ", ".join(map(str, policy.address_pair_cidrs)) or "none"
            raise refused(f"allowed_address_pairs[{i}].ip", address, "is outside the "
                          f"addresses this node lets networks add (cni.address_pair_cidrs: "
                          f"{cidrs})")
