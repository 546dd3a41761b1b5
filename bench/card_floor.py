"""The card floor: the least one plugin call can cost under the design card.

    python -I card_floor.py setup QUIET_DIR CONTAINER IFNAME ADDRESS BRIDGE PORT VLAN PIPEWORK ARG...
    python -I card_floor.py teardown BRIDGE PORT

The card makes setup find the container through the Docker SDK and run
pipework and ovs-vsctl through plumbum, and teardown run ovs-vsctl through
plumbum. So no setup costs less than a fresh interpreter importing those two
packages, one inspect, pipework (its arping resolving to `true` and its ovs-vsctl
waiting for a busy ovsdb-server, from QUIET_DIR, as the plugin arranges), one
announcement (the project's own, in-process) and one OVSDB transaction that sets the
tag and the marks; no teardown less than importing plumbum, one del-port (not waiting
for ovs-vswitchd, as the plugin's) and one `ip link del`. Every ovs-vsctl waits for a
busy ovsdb-server to accept it, as the plugin's do. Nothing is checked, logged or
locked: whatever the plugin spends beyond this is its own.

Run with the installed plugin's interpreter and `-I`, as its launcher is.

Whatever external work a default-on feature adds to the plugin's calls, the floor adds
too, in one place: FEATURE_CALLS (issue 23: every card floor does the same external
work the features add).
"""

import json
import sys

from plumbum import local

DOCKER_URL, DOCKER_API = "unix:///var/run/docker.sock", "1.41"  # the plugin's defaults
# Waiting for a busy ovsdb-server as the plugin's calls do (ovs-vsctl's own --retry, as
# pipework_wrapper.ovs.vsctl_waits gives pipework: a floor need not tell a stopped server
# from a busy one), with a longer bound: a floor must not give up before its work is done,
# and 110 at once waited over 5 s (issue 23). A timeout bounds a hang; it is no work.
OVS_WAITS = ("--retry", "--timeout=60")
# The programs a default-on feature adds to setup or teardown, one argv each, formatted
# with bridge, port and address and run through plumbum after the floor's own calls
# (port security's OpenFlow rules: one `ovs-ofctl` each way, added here with the feature).
FEATURE_CALLS: dict[str, list[list[str]]] = {"setup": [], "teardown": []}


def setup(quiet_dir: str, container: str, ifname: str, address: str, bridge: str, port: str,
          vlan: str, program: str, *args: str) -> None:
    import docker

    from pipework_wrapper.announce import announce

    with docker.APIClient(base_url=DOCKER_URL, version=DOCKER_API, timeout=10) as client:
        pid = client.inspect_container(container)["State"]["Pid"]
    local[program].with_env(PATH=f"{quiet_dir}:{local.env['PATH']}")(*args)
    announce(f"/proc/{pid}/ns/net", ifname, [address])
    marks = {"owner": "vlanpipe-card-floor", "vlanpipe-infra-id": container,
             "vlanpipe-interface": ifname, "vlanpipe-address": address}
    local["ovs-vsctl"](*OVS_WAITS, "--no-wait", "--", "--may-exist", "add-port", bridge, port,
                       "--", "set", "Port", port, f"tag={vlan}",
                       *(f"external_ids:{k}={json.dumps(v)}" for k, v in marks.items()))
    _features("setup", bridge=bridge, port=port, address=address)


def teardown(bridge: str, port: str) -> None:
    # --no-wait, as the plugin deletes: waiting for ovs-vswitchd is no part of the card,
    # and 110 teardowns at once each waiting for it outlast any timeout (issue 23)
    local["ovs-vsctl"](*OVS_WAITS, "--no-wait", "del-port", bridge, port)
    local["ip"]("link", "del", port)
    _features("teardown", bridge=bridge, port=port, address="")


def _features(call: str, **values: str) -> None:
    for argv in FEATURE_CALLS[call]:
        local[argv[0]](*(arg.format(**values) for arg in argv[1:]))


if __name__ == "__main__":
    {"setup": setup, "teardown": teardown}[sys.argv[1]](*sys.argv[2:])
