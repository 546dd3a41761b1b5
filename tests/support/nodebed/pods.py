"""Traffic from the pods of the bed: ping from a pod's network namespace, kept to the
subnets of the pod's test interfaces.

(A pod's announcement is the product's own: ``pipework_wrapper.announce``.)
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass

from tests.support import hostnet


@dataclass(frozen=True)
class PingResult:
    ok: bool  # at least one reply
    rtt_ms: list[float]  # one per reply
    output: str


def pod_subnets(pid: int) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Subnets on the interfaces of ``pid``'s network namespace other than lo and
    Docker's eth0: the only places test traffic may go."""
    out = hostnet.run(["nsenter", "-t", str(pid), "-n", "ip", "-j", "addr", "show"]).stdout
    nets = []
    for link in json.loads(out or "[]"):
        if link.get("ifname") in ("lo", "eth0"):
            continue
        for info in link.get("addr_info", []):
            if info.get("family") in ("inet", "inet6") and info.get("scope") != "link":
                nets.append(ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}").network)
    return nets


def ping(pid: int, address: str, *, count: int = 1, timeout: float = 2,
         interval: float | None = None) -> PingResult:
    """iputils ``ping`` from the network namespace of ``pid`` (a container's PID).

    Refuses (ValueError) an address outside the subnets of that namespace's test
    interfaces: traffic stays inside namespaces the tests made.
    """
    target = ipaddress.ip_address(address.split("/", 1)[0])
    if not any(target in net for net in pod_subnets(pid)):
        raise ValueError(f"{target} is not on a test interface of the netns of PID {pid}")
    argv = ["nsenter", "-t", str(pid), "-n", "ping", "-n", "-c", str(count), "-W", str(timeout)]
    if interval is not None:
        argv += ["-i", str(interval)]
    proc = hostnet.run([*argv, str(target)], check=False,
                       timeout=count * ((interval or 1) + timeout) + 10)
    rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", proc.stdout)]
    return PingResult(ok=proc.returncode == 0 and bool(rtts), rtt_ms=rtts, output=proc.stdout)
