"""STATUS: is this plugin ready to ADD pods on this network?"""

from __future__ import annotations

from plugin.core.ports import PodPorts
from plugin.errors import BackendError, NotReady, ToolFailed
from plugin.frontends.cni.call import Call
from plugin.frontends.cni.errors import NOT_AVAILABLE, CniError


def status(call: Call) -> None:
    """Ready when Open vSwitch answers and the bridge is there to plug into."""
    try:
        PodPorts(call.config).bridges_ready([call.config.bridge])
    except NotReady as exc:
        raise CniError(NOT_AVAILABLE, exc.message, exc.hint) from None
    except (BackendError, ToolFailed) as exc:
        raise CniError(NOT_AVAILABLE, f"Open vSwitch does not answer: {exc.message}",
                       exc.hint) from None
    delegate = call.delegate()
    if delegate:
        delegate.status()
