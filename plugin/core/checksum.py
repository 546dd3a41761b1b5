"""Transmit checksum offload inside the pod: off where the bridge's datapath needs it.

The userspace datapath forwards a veth's frames as the pod's kernel left them,
with TCP/UDP checksums unwritten when transmit offload is on, and the receiver
drops them (see pipework_wrapper/ethtool.py). `pod_tx_checksum` decides per
bridge datapath; setup turns the offload off, CHECK and doctor judge it, and a
repeated setup repairs pods of releases that left it on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plugin.errors import BackendError, ToolFailed

if TYPE_CHECKING:
    from plugin.config.schema import Config

OFFLOADED = "offloaded"
HINT = ("run setup (CNI: ADD) again or `vlanpipe init`, which turn it off; see "
        "pod_tx_checksum in config.yaml")


def off_wanted(config: "Config", datapath: str) -> bool:
    """Whether pods on a bridge of this datapath_type need transmit checksum offload
    off (`pod_tx_checksum`; `auto`: on the userspace datapath)."""
    policy = config.pod_tx_checksum
    return policy == "off" or (policy == "auto" and datapath == "netdev")


class PodChecksums:
    """Reads and sets one pod interface's transmit checksum offload through `ip`."""

    def __init__(self, config: "Config", ip: Any) -> None:
        self.config = config
        self.ip = ip

    def settle(self, netns: str, ifname: str, datapath: str) -> None:
        """The pod's new interface computes its own TCP/UDP checksums where the bridge
        needs it, or setup fails (and rolls back): a pod that pings but cannot talk is
        worse than no pod."""
        if off_wanted(self.config, datapath):
            self.turn_off(netns, ifname)

    def turn_off(self, netns: str, ifname: str) -> None:
        if self.ip.set_tx_checksum(netns, ifname, False):
            raise BackendError(
                f"transmit checksum offload of {ifname} in the pod stays on after it was "
                "turned off; on a userspace-datapath bridge its TCP and UDP would be dropped",
                "check the interface's driver (ethtool -k), or set pod_tx_checksum: on "
                "where OVS has userspace-tso-enable=true")

    def state(self, datapath: str, netns: str, ifname: str) -> str:
        """"" when the interface's offload is as its bridge needs, OFFLOADED when it is on
        where it must be off, else why it could not be read."""
        if not off_wanted(self.config, datapath):
            return ""
        try:
            return OFFLOADED if self.ip.tx_checksum(netns, ifname) else ""
        except ToolFailed as exc:
            return exc.line()

    @staticmethod
    def problem(interface: str, bridge: str) -> str:
        return (f"{interface} in the pod leaves TCP/UDP checksums to transmit offload on "
                f"{bridge}, a userspace-datapath bridge, so its TCP and UDP are dropped; {HINT}")
