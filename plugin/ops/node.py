"""`init`: make this node ready for pods, once, when the kubelet starts.

The kubelet treats a failed init as fatal, so only what pods cannot do
without (the bridges, failing closed with their rules, and the uplink that
joins them to the other nodes) makes it fail; a pod's rules that reconcile
could not put back (its lock held by a stuck call), fixing pods left with
checksum offload on, indexing etcd leases of an earlier release by node, and the
sweep of `gc_on_init` are best effort, and what they could not do is logged.
"""

from __future__ import annotations

from pipework_wrapper.ovs import Ovs
from plugin.calllog import CallLog
from plugin.config.schema import Config
from plugin.errors import Failure
from plugin.ops import checksums, uplink


def init(config: Config, log: CallLog) -> None:
    """Bridges made (with `bridge_mtu` as their own interface's mtu_request, so no port, a
    network config's MTU included, can lower it), the uplink plugged, gc if asked. A bridge
    a network config may name (cni.bridges) that exists gets the same MTU."""
    ovs = Ovs(config.ovs_timeout)
    ours = {a.bridge for a in config.attachments} | ({config.uplink.bridge} if config.uplink
                                                      else set())
    for bridge in sorted(ours):
        ovs.ensure_bridge(bridge, config.datapath_type, config.bridge_mtu)
    for bridge in sorted((config.cni.bridges - ours) & ovs.bridges()):
        ovs.fix_mtu(bridge, config.bridge_mtu)
    if config.uplink is not None:
        uplink.ensure(ovs, config.uplink, config.node_name)
    else:  # `uplink:` removed: the trunk this node plugged goes, as a changed one would
        gone = uplink.unplug_all(ovs, config.node_name)
        if gone:
            log.set(unplugged_uplinks=gone)
    _reconcile(config, log)
    fixed, problems = checksums.fix(config)  # pods an earlier release left offloaded
    if fixed:
        log.set(checksum_offload_turned_off=fixed)
    for problem in problems:
        log.warn(f"checksum offload not judged or not fixed: {problem}")
    if any(network.allocator == "etcd" for network in config.networks):
        _index_leases(config, log)
    if config.gc_on_init:
        from plugin.ops.actions import NOT_JUDGED
        from plugin.ops.gc import sweep

        try:
            swept = sweep(config, log)
        except Failure as exc:
            log.warn(f"gc at init skipped: {exc.line()}")
        else:
            log.set(gc=[a.line() for a in swept])
            unjudged = [a for a in swept if a.outcome == NOT_JUDGED]
            if unjudged:
                log.warn(f"gc at init could not judge {len(unjudged)} ({unjudged[0].why}): "
                         "they are kept")


def _reconcile(config: Config, log: CallLog) -> None:
    """Every bridge in use fails closed with the plugin's rules, and every attachment has
    its rules (pods of earlier releases get theirs here: the upgrade). A bridge that could
    not be secured fails init; a pod that could not be reconciled is logged."""
    from plugin.ops.reconcile import reconcile

    outcome = reconcile(config)
    if outcome.changed:
        log.set(reconciled=outcome.changed)
    if outcome.bridges_failed:
        first = outcome.failures[0]
        raise type(first)(f"bridge {outcome.bridges_failed[0]} could not be made to fail "
                          f"closed: {first.message}", first.hint)
    for failure in outcome.failures:
        log.warn(f"reconcile: {failure.line()}")


def _index_leases(config: Config, log: CallLog) -> None:
    """Move leases written before the index by node under it (a one-off per network, then
    one read), so `gc --node` reads one node's leases; best effort: etcd down must not
    fail init, and `gc --node` reads every lease until the index is complete."""
    try:
        done = config.allocators().index_leases()
    except Failure as exc:
        log.warn(f"etcd leases not indexed by node: {exc.line()}")
        return
    if done:
        log.set(etcd_index=done)
