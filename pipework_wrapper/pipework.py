"""pipework, called with the argument shape both its generations accept.

`pipework BRIDGE -i IF -l HOSTIF [-a 6] GUEST ADDR/PREFIX [MAC]@VLAN`: options
in that order only, the VLAN in the MAC slot (`ADDR/24@22` would silently make 22
a gateway), the host-side name chosen by us rather than derived from the PID. Never
`ADDR@GATEWAY`: pipework then runs `ip route delete default` in the pod, removing
Docker's default route (the pod's cluster network) for good.

Two generations are in use: the copy in PyPI's docker-executor (upstream as of
2014-11, "the 2014 copy", which scripts/host-setup installs) and upstream's current
one, which runs `ip -4` unless told `-a 6` (the older copy takes `-a` for a container
name). Their usage texts tell them apart.
"""

from __future__ import annotations

import os
import shlex
import shutil

from pipework_wrapper.command import Result, run
from pipework_wrapper.ovs import vsctl_waits


UPSTREAM_MARK = "[-a addressfamily]"  # in the usage of upstream's current pipework only


def argv(bridge: str, container_id: str, ifname: str, host_ifname: str, address: str,
         vlan: int, mac: str | None = None, family: int | None = None) -> list[str]:
    """`family` 6 adds `-a 6`: only for upstream's current pipework (see `generation`)."""
    options = ["-a", "6"] if family == 6 else []
    return [bridge, "-i", ifname, "-l", host_ifname, *options, container_id, address,
            f"{mac or ''}@{vlan}"]


def usage(program: str, timeout: float = 10.0) -> str:
    """What pipework prints when run with no arguments (its syntax; exit 1, in both)."""
    return run(program, [], timeout=timeout, ok=(0, 1)).output


# The one name of each generation, as doctor, `version` and the README give it.
GENERATIONS = {"2014": "the 2014 copy (docker-executor's; no -a)",
               "upstream": "upstream's current generation (-a 6 for IPv6)"}


def generation(program: str, timeout: float = 10.0) -> str:
    return generation_of(usage(program, timeout))


def generation_of(text: str) -> str:
    """"upstream" (takes -a) or "2014" (the docker-executor copy), from its usage text."""
    return "upstream" if UPSTREAM_MARK in text else "2014"


def describe(found: str) -> str:
    return GENERATIONS[found]


def attach(program: str, args: list[str], timeout: float, quiet_dir: str) -> Result:
    """Run pipework without its gratuitous ARP, its ovs-vsctl waiting for a busy ovsdb-server.

    pipework ends with `arping -c 1 -A`, which waits a full second after its one
    packet: most of a setup's time. The plugin announces the pod itself, at once
    (`pipework_wrapper.announce`). Both come from `quiet_path(quiet_dir)`, first on
    pipework's PATH.
    """
    env = {"PATH": f"{quiet_path(quiet_dir, timeout)}{os.pathsep}"
                   f"{os.environ.get('PATH', os.defpath)}"}
    return run(program, args, timeout=timeout, env=env,
               hint="see the plugin log for pipework's output; check the bridge and the container")


def quiet_path(directory: str, timeout: float) -> str:
    """A folder (root-only) for the front of pipework's PATH: its `arping` is `true`, and
    its `ovs-vsctl` runs the real one with the plugin's waits (`ovs.vsctl_waits`, at most
    `timeout`). Without them, a node starting its pods at once had pipework's own
    `ovs-vsctl list-br` refused by a busy ovsdb-server, and pipework, taking the bridge
    for a physical interface, fail with "Unknown device type" (issue 23)."""
    link = os.path.join(directory, "arping")
    if not os.path.islink(link):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        true = next(p for p in ("/bin/true", "/usr/bin/true") if os.path.exists(p))
        try:
            os.symlink(true, link)
        except FileExistsError:
            pass
    real = shutil.which("ovs-vsctl")
    if real:  # else pipework finds no ovs-vsctl either, and says so
        _write_if_changed(os.path.join(directory, "ovs-vsctl"),
                          f"#!/bin/sh\nexec {shlex.join([real, *vsctl_waits(timeout)])} \"$@\"\n")
    return directory


def _write_if_changed(path: str, text: str) -> None:
    """An executable `path` holding `text`, replaced whole (calls at once may race here)."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return
    except FileNotFoundError:
        pass
    tmp = f"{path}.{os.getpid()}"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700), "w",
              encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
