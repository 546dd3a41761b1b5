"""`init`: make this node ready for pods, once, when the kubelet starts.

The kubelet treats a failed init as fatal, so only what pods cannot do
without (the bridges, and the uplink that joins them to the other nodes)
makes it fail; fixing pods left with checksum offload on and the sweep of
`gc_on_init` are best effort, and what they could not do is logged.
"""

from __future__ import annotations

from pipework_wrapper.ovs import Ovs
from plugin.calllog import CallLog
from plugin.config.schema import Config
from plugin.errors import Failure
from plugin.ops import checksums, uplink


def init(config: Config, log: CallLog) -> None:
    ovs = Ovs(config.ovs_timeout)
    for bridge in sorted({a.bridge for a in config.attachments}
                         | ({config.uplink.bridge} if config.uplink else set())):
        ovs.ensure_bridge(bridge, config.datapath_type)
    if config.uplink is not None:
        uplink.ensure(ovs, config.uplink, config.node_name)
    else:  # `uplink:` removed: the trunk this node plugged goes, as a changed one would
        gone = uplink.unplug_all(ovs, config.node_name)
        if gone:
            log.set(unplugged_uplinks=gone)
    fixed, problems = checksums.fix(config)  # pods an earlier release left offloaded
    if fixed:
        log.set(checksum_offload_turned_off=fixed)
    for problem in problems:
        log.warn(f"checksum offload not judged or not fixed: {problem}")
    if config.gc_on_init:
        from plugin.ops.gc import sweep

        try:
            log.set(gc=sweep(config, log))
        except Failure as exc:
            log.warn(f"gc at init skipped: {exc.line()}")
