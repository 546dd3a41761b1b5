"""ADD, DEL and CHECK of one attachment, (CNI_CONTAINERID, CNI_IFNAME), through the shared core.

The core does the work and its rollback; this module adds what CNI needs
around it: the container and network namespace the runtime named, the VLAN
and address a pod asks for, a delegated IPAM plugin (released again if the
ADD fails after it), the network-name mark GC finds ports by, and the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Mapping

from pipework_wrapper import iproute
from plugin.frontends.cni import host, network, result
from plugin.frontends.cni.call import Call
from plugin.frontends.cni.delegate import Delegate
from plugin.frontends.cni.env import PodIdentity, identity
from plugin.frontends.cni.errors import CHECK_FAILED, INVALID_ENVIRONMENT, TRY_AGAIN_LATER, CniError
from plugin.frontends.cni.podargs import PodRequest
from plugin.core.attach import Core, PodRef, Undo, Want
from plugin.ipam.model import IPInterface, Lease
from plugin.core.records import Attachment


@dataclass(frozen=True)
class Plan:
    """The interface to ask the core for, and what the result reports beyond the record."""

    want: Want
    gateway: str | None = None  # the IPAM's gateway; None: the record's
    dns: Mapping[str, Any] | None = None


def add(call: Call) -> dict[str, Any]:
    env, conf = call.env, call.conf
    who = _identity(call)
    core = Core(call.config, call.log)
    with call.log.phase("bridge"):
        problem = host.bridge_problem(core.ovs, call.config.bridge)
    if problem:
        raise CniError(TRY_AGAIN_LATER, problem, host.BRIDGE_HINT)
    with call.log.phase("sandbox"):
        container = host.container(call.config, env.container_id, env.netns)
    ref = PodRef(who.namespace, who.pod, container.id)
    undo = Undo()
    try:
        plan = _plan(call, core, ref, undo)
        want = replace(plan.want, mac=conf.request.mac, marks=((network.MARK, conf.name),))
        record = core.attach(ref, [want])[0]
    except BaseException as exc:
        problems = undo.run()
        if problems and isinstance(exc, Exception):
            call.log.set(cni_rollback_errors=problems)
        raise
    return result.success(conf.cni_version, record, env.netns, host.host_link(record.port),
                          record.gateway if plan.gateway is None else plan.gateway,
                          plan.dns or conf.dns, conf.prev_result)


def delete(call: Call) -> None:
    """Everything of the attachment that is still there goes; nothing there is success."""
    env = call.env
    Core(call.config, call.log).detach(PodRef("", "", env.container_id), {env.ifname})
    if call.conf.ipam_type:
        with call.log.phase("ipam-del"):
            Delegate(call.conf, env).delete()


def check(call: Call) -> None:
    env, conf = call.env, call.conf
    expected = result.expected(conf.prev_result, env.ifname)
    who = _identity(call)
    core = Core(call.config, call.log)
    record = next((r for r in core.records.load(env.container_id)
                   if r.interface == env.ifname), None)
    if record is None:
        raise CniError(CHECK_FAILED, f"no attachment of {env.ifname} is recorded for container "
                       f"{env.container_id[:12]}", "ADD it (again)")
    container = host.container(call.config, env.container_id, env.netns)
    want = _want(core, PodRef(who.namespace, who.pod, container.id), conf.request, env.ifname)
    problems = _port_problems(core, record, want, conf.name)
    found = iproute.container_addresses(container.pid, env.ifname)
    if record.address not in found:
        problems.append(f"{env.ifname} in the container has {found or 'no address'}, "
                        f"not {record.address}")
    if record.address not in expected.addresses:
        problems.append(f"prevResult gives {env.ifname} {list(expected.addresses)}, "
                        f"the attachment has {record.address}")
    if expected.mac and expected.mac != record.mac:
        problems.append(f"prevResult gives MAC {expected.mac}, the attachment has {record.mac}")
    if problems:
        raise CniError(CHECK_FAILED, f"{env.ifname} of container {env.container_id[:12]} is not "
                       "as added: " + "; ".join(problems), "DEL the attachment and ADD it again")
    if conf.ipam_type:
        with call.log.phase("ipam-check"):
            Delegate(conf, env).check()


def _port_problems(core: Core, record: Attachment, want: Want, name: str) -> list[str]:
    ports = core.ovs.ports(**{"vlanpipe-infra-id": record.infra_id})
    port = next((p for p in ports if p.name == record.port), None)
    if port is None:
        return [f"port {record.port} is not in Open vSwitch"]
    problems = []
    if port.bridge != want.bridge:
        problems.append(f"port {port.name} is on bridge {port.bridge or '(none)'}, "
                        f"not {want.bridge}")
    if port.tag != record.vlan or record.vlan != want.vlan:
        problems.append(f"port {port.name} has VLAN {port.tag}, the network gives {want.vlan}")
    if port.error:
        problems.append(f"port {port.name} has an error: {port.error}")
    if port.external_ids.get(network.MARK) != name:
        problems.append(f"port {port.name} is not marked as network {name}'s")
    if not iproute.link_exists(port.name):
        problems.append(f"host veth {port.name} does not exist")
    return problems


def _identity(call: Call) -> PodIdentity:
    who = identity(call.env.args)
    if who.infra_id and who.infra_id != call.env.container_id:
        raise CniError(INVALID_ENVIRONMENT, "CNI_ARGS K8S_POD_INFRA_CONTAINER_ID "
                       f"{who.infra_id[:12]} is not CNI_CONTAINERID {call.env.container_id[:12]}",
                       "with Docker (cri-dockerd) both name the pod's sandbox container")
    call.log.set(namespace=who.namespace, pod=who.pod)
    return who


def _want(core: Core, ref: PodRef, request: PodRequest, ifname: str) -> Want:
    """The pod's own VLAN if it asks for one, else the network's rule (or an etcd pin)."""
    if request.vlan is not None:
        return Want(ifname, core.config.bridge, request.vlan)
    return core.planned(ref)[0]


def _plan(call: Call, core: Core, ref: PodRef, undo: Undo) -> Plan:
    conf = call.conf
    with call.log.phase("vlan"):
        want = _want(core, ref, conf.request, call.env.ifname)
    if conf.ipam_type:
        delegate = Delegate(conf, call.env)
        with call.log.phase("ipam-add"):
            answer = delegate.add()
        undo.push(delegate.delete)
        if answer.routes:
            call.warn(f"routes from IPAM plugin {conf.ipam_type} not installed: "
                      f"{json.dumps(list(answer.routes))}")
        return Plan(replace(want, lease=answer.lease(conf.name, conf.mtu, conf.default_gateway)),
                    str(answer.gateway or ""), answer.dns)
    if conf.request.address is not None:
        return Plan(replace(want, lease=_requested(call, conf.request.address)))
    return Plan(want)


def _requested(call: Call, address: IPInterface) -> Lease:
    """An address the pod asked for: with its network's gateway, routes and MTU if one of
    vlanpipe's networks holds it. It is used as given, not reserved in that network's pool."""
    held = next((n for n in call.config.networks
                 if n.subnet is not None and address.network == n.subnet), None)
    if held is not None:
        return held.lease(address)
    return Lease(network=call.conf.name, address=address, mtu=call.conf.mtu)
