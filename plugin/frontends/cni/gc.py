"""GC: remove this CNI network's attachments that the runtime no longer lists.

A port's marks say it is vlanpipe's, whose it is, and which CNI network it
belongs to, so GC of one network never touches another network's ports, nor
the exec front-end's (which name no CNI network).
"""

from __future__ import annotations

from pipework_wrapper.ovs import Ovs, Port
from plugin import names
from plugin.core import marks
from plugin.core.attach import Core
from plugin.errors import Failure
from plugin.frontends.cni.call import Call
from plugin.frontends.cni.delegate import DelegatedAddresses
from plugin.frontends.cni.errors import CniError, code_for


def stale(ports: list[Port], valid: frozenset[tuple[str, str]]) -> list[Port]:
    """The ports whose (container id, interface) the runtime no longer lists."""
    found = []
    for port in ports:
        owner = marks.Marks.read(port.external_ids)
        if owner is not None and (owner.infra_id, owner.interface) not in valid:
            found.append(port)
    return found


def gc(call: Call) -> None:
    """Remove every attachment of this network not in `cni.dev/valid-attachments`.

    Keeps going past a failure, as the spec asks, and reports them all at the end.
    """
    conf = call.conf
    delegate = call.delegate()
    core = Core(call.config, call.log,
                allocators=DelegatedAddresses(delegate) if delegate else None)
    ports = Ovs(call.config.ovs_timeout).ports(**marks.of_cni_network(conf.name))
    failures: list[Failure] = []
    removed = []
    for port in stale(ports, conf.valid_attachments):
        owner = marks.Marks.read(port.external_ids)
        assert owner is not None  # stale() keeps owned ports only
        if not names.plaintext(owner.infra_id) or not owner.interface:
            call.warn(f"port {port.name} skipped: its marks name no attachment")
            continue
        try:
            core.detach(owner.who.pod_part(), {owner.interface})
            removed.append(f"{owner.infra_id[:12]}/{owner.interface}")
        except Failure as exc:
            failures.append(exc)
    call.log.set(collected=removed or None)
    if delegate:
        try:
            delegate.collect()
        except Failure as exc:
            failures.append(exc)
    if failures:
        raise CniError(code_for(failures[0]), f"GC left {len(failures)} problem(s): "
                       f"{failures[0].message}", "; ".join(f.line() for f in failures))
