"""This plugin's attachments to one CNI network as a whole: their mark, GC and STATUS.

A port's `external_ids` already say it is vlanpipe's and whose it is; the
network-name mark added here says which CNI network it belongs to, so GC of
one network never touches another network's ports, nor the exec front-end's
(which carry no such mark).
"""

from __future__ import annotations

from pipework_wrapper.ovs import Ovs, Port
from plugin.frontends.cni import host
from plugin.frontends.cni.call import Call
from plugin.frontends.cni.delegate import Delegate
from plugin.frontends.cni.env import valid_container_id
from plugin.frontends.cni.errors import NOT_AVAILABLE, CniError, code_for
from plugin.core.attach import Core, PodRef
from plugin.errors import BackendError, PluginError
from plugin.core.records import OWNER

MARK = "vlanpipe-cni-network"


def stale(ports: list[Port], valid: frozenset[tuple[str, str]]) -> list[Port]:
    """The ports whose (container id, interface) the runtime no longer lists."""
    return [p for p in ports
            if (p.external_ids.get("vlanpipe-infra-id", ""),
                p.external_ids.get("vlanpipe-interface", "")) not in valid]


def gc(call: Call) -> None:
    """Remove every attachment of this network not in `cni.dev/valid-attachments`.

    Keeps going past a failure, as the spec asks, and reports them all at the end.
    """
    core = Core(call.config, call.log)
    with call.log.phase("ovs-find"):
        ports = core.ovs.ports(owner=OWNER, **{MARK: call.conf.name})
    failures: list[PluginError] = []
    removed = []
    for port in stale(ports, call.conf.valid_attachments):
        ids = port.external_ids
        infra, ifname = ids.get("vlanpipe-infra-id", ""), ids.get("vlanpipe-interface", "")
        if not valid_container_id(infra) or not ifname:
            call.warn(f"port {port.name} skipped: its marks name no attachment")
            continue
        try:
            core.detach(PodRef(ids.get("vlanpipe-namespace", ""), ids.get("vlanpipe-pod", ""),
                               infra), {ifname})
            removed.append((infra, ifname))
        except PluginError as exc:
            failures.append(exc)
    call.log.set(collected=[f"{infra[:12]}/{ifname}" for infra, ifname in removed] or None)
    if call.conf.ipam_type:
        try:
            Delegate(call.conf, call.env).collect(removed)
        except PluginError as exc:
            failures.append(exc)
    if failures:
        raise CniError(code_for(failures[0]), f"GC left {len(failures)} problem(s): "
                       f"{failures[0].message}", "; ".join(f.line() for f in failures))


def status(call: Call) -> None:
    """Ready when Open vSwitch answers and the bridge is there to plug into."""
    try:
        problem = host.bridge_problem(Ovs(call.config.ovs_timeout), call.config.bridge)
    except BackendError as exc:
        raise CniError(NOT_AVAILABLE, f"Open vSwitch does not answer: {exc.message}",
                       exc.hint) from None
    if problem:
        raise CniError(NOT_AVAILABLE, problem, host.BRIDGE_HINT)
    if call.conf.ipam_type:
        Delegate(call.conf, call.env).status()
