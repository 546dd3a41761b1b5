"""ADD, DEL and CHECK of one attachment, (CNI_CONTAINERID, CNI_IFNAME), through the shared core.

The core does the work and its rollback; this module adds what CNI needs
around it: the sandbox the runtime named, the VLAN and address a pod asks for
(within what the node allows), a delegated IPAM plugin in the place of
vlanpipe's allocators, and the result.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import replace
from typing import Any

from pipework_wrapper import iproute
from plugin.core.attach import Core
from plugin.core.plumbing import Sandbox
from plugin.core.records import Attachment
from plugin.core.policy import Want, plan
from plugin.frontends.cni import result
from plugin.frontends.cni.call import Call
from plugin.frontends.cni.delegate import Delegate, DelegatedAddresses
from plugin.frontends.cni.env import identity
from plugin.frontends.cni.errors import CHECK_FAILED, INVALID_CONFIG, INVALID_ENVIRONMENT, CniError
from plugin.frontends.cni.sandbox import host_link, locate
from plugin.identity import Identity
from plugin.ipam.model import Addresses


def add(call: Call) -> dict[str, Any]:
    env, conf = call.env, call.conf
    who = _identity(call)
    delegate = call.delegate()
    delegated = DelegatedAddresses(delegate) if delegate else None
    core = Core(call.config, call.log, allocators=delegated)
    sandbox = _sandbox(call)
    ref = replace(who, infra_id=env.container_id)
    record = core.attach(ref, [_want(call, ref)], sandbox)[0]
    answer = delegated.answer if delegated else None
    return result.success(conf.cni_version, record, env.netns, host_link(record.port),
                          answer.gateways() if answer else _gateways(call, record),
                          (answer.dns if answer else None) or conf.dns, conf.prev_result)


def _gateways(call: Call, record: Attachment) -> tuple[str, ...]:
    """Each address's subnet gateway in the node's network (the result reports it whether
    or not the pod's default traffic goes through it)."""
    found = {(n.name, n.version): n.gateway for n in call.config.networks}
    return tuple(str(found.get((record.network, ipaddress.ip_interface(a).version)) or "")
                 for a in record.addresses)


def delete(call: Call) -> None:
    """Everything of the attachment that is still there goes; nothing there is success.

    A lease is released where its record says ADD claimed it (vlanpipe's allocators on its
    network, or the delegated plugin with the ipam config ADD gave it), even if the network
    config has changed since; a record from before records said so follows today's config."""
    delegate = call.delegate()
    Core(call.config, call.log, allocators=DelegatedAddresses(delegate) if delegate else None,
         recorded=lambda record: _recorded(call, record)
         ).detach(Identity(infra_id=call.env.container_id), {call.env.ifname})


def _recorded(call: Call, record: Attachment) -> Addresses:
    if record.allocator != "delegated":
        return call.config.allocators()  # every network of the node (config.tenant.bind)
    try:
        ipam = json.loads(record.ipam)
    except ValueError:
        ipam = None
    if isinstance(ipam, dict) and isinstance(ipam.get("type"), str) and ipam["type"]:
        return DelegatedAddresses(Delegate.recorded(call.conf, call.env, record.cni_network,
                                                    ipam))
    call.warn(f"the record of {record.interface} names no usable ipam config; released as "
              "the network config says now")
    delegate = call.delegate()
    return DelegatedAddresses(delegate) if delegate else call.config.allocators()


def check(call: Call) -> None:
    env, conf = call.env, call.conf
    expected = result.expected(conf.prev_result, env.ifname)
    who = _identity(call)
    core = Core(call.config, call.log)
    sandbox = _sandbox(call)
    ref = replace(who, infra_id=env.container_id)
    problems = core.differences(ref, _want(call, ref), sandbox.netns)
    record = next((r for r in core.records.load(ref.infra_id) if r.interface == env.ifname), None)
    if record is not None:
        inside = iproute.pod_link(sandbox.netns, env.ifname)
        if inside is None:
            problems.append(f"{sandbox.netns} has no interface {env.ifname}")
        elif not set(record.addresses) <= set(inside.addresses) or inside.mac != record.mac:
            problems.append(f"{env.ifname} in the pod has {list(inside.addresses) or 'no address'}"
                            f" and MAC {inside.mac}, not {', '.join(record.addresses)} and "
                            f"{record.mac}")
        if record.plumber != sandbox.plumber:
            problems.append(f"ADD used the {record.plumber} plumber, this namespace the "
                            f"{sandbox.plumber} one")
        if set(record.addresses) != set(expected.addresses):
            problems.append(f"prevResult gives {env.ifname} {list(expected.addresses)}, "
                            f"the attachment has {list(record.addresses)}")
        if expected.mac and expected.mac != record.mac:
            problems.append(f"prevResult gives MAC {expected.mac}, the attachment has "
                            f"{record.mac}")
    if problems:
        raise CniError(CHECK_FAILED, f"{env.ifname} of container {env.container_id[:12]} is not "
                       "as added: " + "; ".join(problems), "DEL the attachment and ADD it again")
    delegate = call.delegate()
    if delegate:
        delegate.check()


def _sandbox(call: Call) -> Sandbox:
    sandbox, why = locate(call.config, call.env.container_id, call.env.netns)
    call.log.set(plumber=why)
    return sandbox


def _identity(call: Call) -> Identity:
    who = identity(call.env.args)
    if who.infra_id and who.infra_id != call.env.container_id:
        raise CniError(INVALID_ENVIRONMENT, "CNI_ARGS K8S_POD_INFRA_CONTAINER_ID "
                       f"{who.infra_id[:12]} is not CNI_CONTAINERID {call.env.container_id[:12]}",
                       "with Docker (cri-dockerd) both name the pod's sandbox container")
    call.log.set(namespace=who.namespace, pod=who.pod)
    return who


def _want(call: Call, ref: Identity) -> Want:
    """The pod's own VLAN if it asks for one, else the network's rule (or an operator's pin).

    A VLAN the network or the pod chose must be one the node allows; an address the pod
    asks for is reserved in the network's pool (a delegated IPAM plugin sees the request
    itself, in the same runtimeConfig); a MAC it asks for must be locally administered
    unless the node allows others (`cni.universal_macs`), and is checked unused on its
    bridge and VLAN by the core.
    """
    conf = call.conf
    if conf.request.vlan is not None:
        want = Want(call.env.ifname, call.config.bridge, conf.request.vlan)
    else:
        # Pins come from vlanpipe's allocators even when an IPAM plugin gives the address.
        want = plan(call.config, ref, call.config.allocators().pinned)[0]
    if not want.pinned and not call.config.cni.allows_vlan(want.vlan):
        raise CniError(INVALID_CONFIG, f"VLAN {want.vlan} (from the "
                       f"{'pod' if conf.request.vlan is not None else 'network config'}) is not "
                       "one this node lets networks use",
                       "use another VLAN, or ask the node's administrator (cni.vlans)")
    addresses = want.addresses or (() if conf.ipam_type else conf.request.addresses)
    mac = conf.request.mac
    if mac and not call.config.cni.allows_mac(mac):
        raise CniError(INVALID_CONFIG, f"{conf.request.mac_from} = {mac} is a universally "
                       "administered MAC (bit 1 of its first byte is clear): a vendor's, "
                       "which a NIC or a router on the VLAN may have",
                       "ask for a locally administered one (first byte x2, x6, xa or xe, as "
                       "in 0a:58:...), or ask the node's administrator (cni.universal_macs)")
    return replace(want, addresses=addresses, mac=conf.request.mac, mtu=conf.mtu,
                   cni_network=conf.name)
