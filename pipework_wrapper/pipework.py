"""pipework, called with the argument shape both its 2014 and 2024 versions accept.

`pipework BRIDGE -i IF -l HOSTIF GUEST ADDR/PREFIX[@GW] [MAC]@VLAN`: options in
that order only, the VLAN in the MAC slot (`ADDR/24@22` would silently make 22
a gateway), the host-side name chosen by us rather than derived from the PID.
"""

from __future__ import annotations

from pipework_wrapper.command import Result, run


def argv(bridge: str, container_id: str, ifname: str, host_ifname: str, address: str,
         vlan: int, gateway: str | None = None, mac: str | None = None) -> list[str]:
    ip = f"{address}@{gateway}" if gateway else address
    return [bridge, "-i", ifname, "-l", host_ifname, container_id, ip, f"{mac or ''}@{vlan}"]


def attach(program: str, args: list[str], timeout: float) -> Result:
    return run(program, args, timeout=timeout,
               hint="see the plugin log for pipework's output; check the bridge and the container")
