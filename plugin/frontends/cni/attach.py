"""ADD, DEL and CHECK of one attachment, (CNI_CONTAINERID, CNI_IFNAME), through the shared core.

The core does the work and its rollback; this module adds what CNI needs
around it: the sandbox the runtime named, the VLAN and address a pod asks
for, a delegated IPAM plugin in the place of vlanpipe's allocators, and the
result.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from pipework_wrapper import iproute
from plugin.core.attach import Core
from plugin.core.policy import PodRef, Want, plan
from plugin.frontends.cni import result
from plugin.frontends.cni.call import Call
from plugin.frontends.cni.delegate import Delegate, DelegatedAddresses
from plugin.frontends.cni.env import PodIdentity, identity
from plugin.frontends.cni.errors import CHECK_FAILED, INVALID_ENVIRONMENT, CniError
from plugin.frontends.cni.sandbox import host_link, locate
from plugin.ipam.allocators import Allocators
from plugin.ipam.model import IPInterface, Lease


def add(call: Call) -> dict[str, Any]:
    env, conf = call.env, call.conf
    who = _identity(call)
    delegated = DelegatedAddresses(Delegate(conf, env)) if conf.ipam_type else None
    core = Core(call.config, call.log, allocators=delegated)
    sandbox = locate(call.config, env.container_id, env.netns)
    ref = PodRef(who.namespace, who.pod, sandbox.container)
    want = _want(call, ref)
    if conf.request.address is not None and delegated is None:
        want = replace(want, lease=_requested(call, conf.request.address))
    record = core.attach(ref, [want], sandbox)[0]
    answer = delegated.answer if delegated else None
    if answer and answer.routes:
        call.warn(f"routes from IPAM plugin {conf.ipam_type} not installed: "
                  f"{json.dumps(list(answer.routes))}")
    gateway = str(answer.gateway or "") if answer else record.gateway
    return result.success(conf.cni_version, record, env.netns, host_link(record.port), gateway,
                          (answer.dns if answer else None) or conf.dns, conf.prev_result)


def delete(call: Call) -> None:
    """Everything of the attachment that is still there goes; nothing there is success."""
    env, conf = call.env, call.conf
    delegated = DelegatedAddresses(Delegate(conf, env)) if conf.ipam_type else None
    Core(call.config, call.log, allocators=delegated).detach(
        PodRef("", "", env.container_id), {env.ifname})


def check(call: Call) -> None:
    env, conf = call.env, call.conf
    expected = result.expected(conf.prev_result, env.ifname)
    who = _identity(call)
    core = Core(call.config, call.log)
    sandbox = locate(call.config, env.container_id, env.netns)
    ref = PodRef(who.namespace, who.pod, sandbox.container)
    want = _want(call, ref)
    problems = core.differences(ref, want)
    record = next((r for r in core.records.load(ref.infra_id) if r.interface == env.ifname), None)
    if record is not None:
        found = iproute.container_addresses(sandbox.pid, env.ifname)
        if record.address not in found:
            problems.append(f"{env.ifname} in the container has {found or 'no address'}, "
                            f"not {record.address}")
        if record.address not in expected.addresses:
            problems.append(f"prevResult gives {env.ifname} {list(expected.addresses)}, "
                            f"the attachment has {record.address}")
        if expected.mac and expected.mac != record.mac:
            problems.append(f"prevResult gives MAC {expected.mac}, the attachment has "
                            f"{record.mac}")
    if problems:
        raise CniError(CHECK_FAILED, f"{env.ifname} of container {env.container_id[:12]} is not "
                       "as added: " + "; ".join(problems), "DEL the attachment and ADD it again")
    if conf.ipam_type:
        Delegate(conf, env).check()


def _identity(call: Call) -> PodIdentity:
    who = identity(call.env.args)
    if who.infra_id and who.infra_id != call.env.container_id:
        raise CniError(INVALID_ENVIRONMENT, "CNI_ARGS K8S_POD_INFRA_CONTAINER_ID "
                       f"{who.infra_id[:12]} is not CNI_CONTAINERID {call.env.container_id[:12]}",
                       "with Docker (cri-dockerd) both name the pod's sandbox container")
    call.log.set(namespace=who.namespace, pod=who.pod)
    return who


def _want(call: Call, ref: PodRef) -> Want:
    """The pod's own VLAN if it asks for one, else the network's rule (or an etcd pin)."""
    conf = call.conf
    if conf.request.vlan is not None:
        want = Want(call.env.ifname, call.config.bridge, conf.request.vlan)
    else:
        # Pins come from vlanpipe's allocators even when an IPAM plugin gives the address.
        want = plan(call.config, ref, Allocators.for_config(call.config).pinned)[0]
    return replace(want, mac=conf.request.mac, cni_network=conf.name)


def _requested(call: Call, address: IPInterface) -> Lease:
    """An address the pod asked for: with its network's gateway, routes and MTU if one of
    vlanpipe's networks holds it. It is used as given, not reserved in that network's pool."""
    held = next((n for n in call.config.networks
                 if n.subnet is not None and address.network == n.subnet), None)
    if held is not None:
        return held.lease(address)
    return Lease(network=call.conf.name, address=address, mtu=call.conf.mtu)
