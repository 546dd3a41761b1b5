"""The card floor: the least one plugin call can cost under the design card.

    python -I card_floor.py setup QUIET_DIR CONTAINER IFNAME ADDRESS BRIDGE PORT VLAN PIPEWORK ARG...
    python -I card_floor.py teardown BRIDGE PORT

The card makes setup find the container through the Docker SDK and run
pipework and ovs-vsctl through plumbum, and teardown run ovs-vsctl through
plumbum. So no setup costs less than a fresh interpreter importing those two
packages, one inspect, pipework (its arping resolving to `true` and its ovs-vsctl
waiting for a busy ovsdb-server, from QUIET_DIR, as the plugin arranges), one
announcement (the project's own, in-process), one OVSDB transaction that sets the
tag, the marks and the port's OpenFlow number (`ofport_request`), and one `ovs-ofctl
--bundle add-flows` of the port's port security rules (issue 20: the rules
`plugin/core/flows.py` makes for its MAC and address); no teardown less than
importing plumbum, one del-port (not waiting for ovs-vswitchd, as the plugin's), the
port's rules deleted by their cookie (one `ovs-ofctl del-flows`) and one `ip link
del`. Every ovs-vsctl waits for a busy ovsdb-server to accept it, and every ovs-ofctl for a
busy ovs-vswitchd, as the plugin's do.
Nothing is checked, logged or locked: whatever the plugin spends beyond this is its own.

Run with the installed plugin's interpreter and `-I`, as its launcher is.

Whatever external work a default-on feature adds to the plugin's calls, the floor adds
too (issue 23: every card floor does the same external work the features add): today
port security's number and rules, above.
"""

import json
import sys
import time

from plumbum import local
from plumbum.commands.processes import ProcessExecutionError

DOCKER_URL, DOCKER_API = "unix:///var/run/docker.sock", "1.41"  # the plugin's defaults
# Waiting for a busy ovsdb-server as the plugin's calls do (ovs-vsctl's own --retry, as
# pipework_wrapper.ovs.vsctl_waits gives pipework: a floor need not tell a stopped server
# from a busy one), with a longer bound: a floor must not give up before its work is done,
# and 110 at once waited over 5 s (issue 23). A timeout bounds a hang; it is no work.
OVS_WAITS = ("--retry", "--timeout=60")
OFCTL_TIMEOUT = "--timeout=60"


def setup(quiet_dir: str, container: str, ifname: str, address: str, bridge: str, port: str,
          vlan: str, program: str, *args: str) -> None:
    import docker

    from pipework_wrapper.announce import announce
    from plugin.core import flows
    from plugin.ipam.mac import mac_for

    with docker.APIClient(base_url=DOCKER_URL, version=DOCKER_API, timeout=10) as client:
        pid = client.inspect_container(container)["State"]["Pid"]
    local[program].with_env(PATH=f"{quiet_dir}:{local.env['PATH']}")(*args)
    announce(f"/proc/{pid}/ns/net", ifname, [address])
    marks = {"owner": "vlanpipe-card-floor", "vlanpipe-infra-id": container,
             "vlanpipe-interface": ifname, "vlanpipe-address": address}
    ofport = 1000 + int(flows.cookie(port) & 0xFFFF) % 60000
    local["ovs-vsctl"](*OVS_WAITS, "--no-wait", "--", "--may-exist", "add-port", bridge, port,
                       "--", "set", "Port", port, f"tag={vlan}",
                       *(f"external_ids:{k}={json.dumps(v)}" for k, v in marks.items()),
                       "--", "set", "Interface", port, f"ofport_request={ofport}")
    guard = flows.Guard(port, ofport, mac_for(address), (address,))
    _ofctl("--bundle", "add-flows", bridge, "-", stdin="\n".join(flows.replace(guard)) + "\n")


def teardown(bridge: str, port: str) -> None:
    from plugin.core import flows

    # --no-wait, as the plugin deletes: waiting for ovs-vswitchd is no part of the card,
    # and 110 teardowns at once each waiting for it outlast any timeout (issue 23)
    local["ovs-vsctl"](*OVS_WAITS, "--no-wait", "del-port", bridge, port)
    _ofctl("del-flows", bridge, f"cookie={flows.cookie(port):#x}/-1")
    local["ip"]("link", "del", port)


def _ofctl(*args: str, stdin: "str | None" = None) -> None:
    """ovs-ofctl, run again while ovs-vswitchd refuses it as busy ("Protocol error": its
    management socket's backlog is full), as the plugin's (pipework_wrapper.ovs.waiting)."""
    deadline = time.monotonic() + 60
    while True:
        command = local["ovs-ofctl"][(OFCTL_TIMEOUT, *args)]
        try:
            (command << stdin)() if stdin is not None else command()
            return
        except ProcessExecutionError as exc:
            if "(Protocol error)" not in exc.stderr or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


if __name__ == "__main__":
    {"setup": setup, "teardown": teardown}[sys.argv[1]](*sys.argv[2:])
