"""Pods whose interface leaves TCP/UDP checksums to offload on a bridge that drops them:
named by `doctor`, fixed by `init`.

Setup turns the offload off as it plugs (plugin/core/plumbing). What it cannot
cover: pods attached by a release that left it on, and an interface someone
turned back on. Those ping but never connect, so they are found here from the
marked ports of this node whose bridge needs it off (`pod_tx_checksum`), each
reached in its namespace: the recorded path for the netns plumber, the infra
container's PID (Docker) for pipework.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipework_wrapper import iproute
from pipework_wrapper.ovs import Ovs
from plugin.config.schema import Config
from plugin.core import marks
from plugin.core.plumbing import docker_sandbox
from plugin.core.checksum import off_wanted
from plugin.errors import Failure


@dataclass(frozen=True)
class Offloaded:
    """One pod interface found with transmit checksum offload on where it must be off."""

    pod: str  # namespace/pod
    interface: str
    bridge: str
    netns: str

    def __str__(self) -> str:
        return f"{self.pod} {self.interface} (bridge {self.bridge})"


def survey(config: Config) -> tuple[list[Offloaded], list[str]]:
    """This node's offloaded pod interfaces, and the ones that could not be judged (why)."""
    found, unjudged = [], []
    for port in Ovs(config.ovs_timeout).ports(**marks.owned()):
        mark = marks.Marks.read(port.external_ids)
        if mark is None or mark.node != config.node_name \
                or not off_wanted(config, port.datapath):
            continue
        pod = f"{mark.namespace or '-'}/{mark.pod or mark.infra_id[:12]}"
        try:
            netns = _namespace(config, mark)
            if iproute.tx_checksum(netns, mark.interface):
                found.append(Offloaded(pod, mark.interface, port.bridge, netns))
        except Failure as exc:
            unjudged.append(f"{pod} {mark.interface}: {exc.message}")
    return found, unjudged


def fix(config: Config) -> tuple[list[str], list[str]]:
    """Turn the offload off wherever `survey` finds it on: what was fixed, what was not."""
    found, problems = survey(config)
    fixed = []
    for item in found:
        try:
            if iproute.set_tx_checksum(item.netns, item.interface, False):
                problems.append(f"{item}: the offload stays on")
            else:
                fixed.append(str(item))
        except Failure as exc:
            problems.append(f"{item}: {exc.message}")
    return fixed, problems


def _namespace(config: Config, mark: marks.Marks) -> str:
    """The recorded path for the netns plumber; setup's own Docker lookup for pipework."""
    if mark.plumber == "netns":
        return mark.netns
    return docker_sandbox(config, mark.infra_id).netns


def check(config: Config) -> str:
    """doctor's row: fails naming every offloaded interface."""
    found, unjudged = survey(config)
    if found:
        raise Failure(f"{len(found)} pod interface(s) leave TCP/UDP checksums to transmit "
                      "offload on a userspace-datapath bridge, so their TCP and UDP are "
                      "dropped: " + "; ".join(map(str, found[:5])))
    note = f"; not judged: {'; '.join(unjudged[:3])}" if unjudged else ""
    return f"no pod interface leaves checksums to offload where they are dropped{note}"
