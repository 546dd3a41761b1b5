#!/usr/bin/env bash
# The floor: the least work that gives a container an addressed, tagged OVS port.
#   floor.sh up BRIDGE PORT PID ADDR/PREFIX VLAN
#   floor.sh down BRIDGE PORT
# Five processes up (the peer is created directly as eth1 inside the netns, and one `ip`
# inside the netns sets address and link state), two down. Nothing is checked, nothing
# recorded: every contender pays at least this.
set -euo pipefail
case "${1:-}" in
  up)
    bridge=$2 port=$3 pid=$4 addr=$5 vlan=$6
    ip link add "$port" type veth peer name eth1 netns "$pid"
    nsenter -t "$pid" -n ip -batch - <<<"addr add $addr dev eth1
link set eth1 up"
    ip link set "$port" up
    ovs-vsctl --timeout=5 add-port "$bridge" "$port" "tag=$vlan"
    ;;
  down)
    bridge=$2 port=$3
    ovs-vsctl --timeout=5 del-port "$bridge" "$port"
    ip link del "$port"
    ;;
  *)
    echo "usage: floor.sh up BRIDGE PORT PID ADDR/PREFIX VLAN | down BRIDGE PORT" >&2
    exit 2
    ;;
esac
