"""`init`: make this node ready for pods, once, when the kubelet starts.

The kubelet treats a failed init as fatal, so only what pods cannot do
without (the bridges, and the uplink that joins them to the other nodes)
makes it fail; the sweep of `gc_on_init` is best
effort, and what it could not do is logged.
"""

from __future__ import annotations

from pipework_wrapper.ovs import Ovs
from plugin.calllog import CallLog
from plugin.config.schema import Config
from plugin.errors import Failure
from plugin.ops import uplink


def init(config: Config, log: CallLog) -> None:
    ovs = Ovs(config.ovs_timeout)
    for bridge in sorted({a.bridge for a in config.attachments}
                         | ({config.uplink.bridge} if config.uplink else set())):
        ovs.ensure_bridge(bridge, config.datapath_type)
    if config.uplink is not None:
        uplink.ensure(ovs, config.uplink, config.node_name)
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
