"""A pod that lies: sends one forged frame, continuously.

Run inside a pod's network namespace (`nsenter -t PID -n PYTHON forge.py ...`, like the
traffic agent): `forge.py IFNAME FRAME SECONDS` sends FRAME (hex: `lie(MAC)`, called in
the test's process, makes a broadcast UDP datagram from MAC and FORGED_IP with
tests/support/frames.py) every 5 ms until SECONDS pass, then prints {"sent": N}.
Broadcast, so a switch that admitted it would flood it to every port of the VLAN, where a
listener (`traffic_agent.py listen IFNAME MAC`) counts it. Paced, unlike frame_agent.py's
`spam`, so that lying for half a minute leaves the machine's CPU to the daemons under
test. Raw sockets only: no new image, no tool in the pod.
"""

from __future__ import annotations

import json
import socket
import sys
import time

PERIOD = 0.005
FORGED_IP = "10.66.0.250"  # no pod of the tests has it


def lie(mac: str) -> str:
    """The forged frame from `mac`, in hex for the argv (the script itself runs where
    the tests' packages are not importable)."""
    from tests.support.frames import udp_from

    return udp_from(mac, FORGED_IP, b"forged by tests/support/forge.py").hex()


def main(ifname: str, frame: str, seconds: float) -> None:
    packet, sent = bytes.fromhex(frame), 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((ifname, 0))
        print("ready 0", flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                sock.send(packet)
                sent += 1
            except OSError:  # the link may be down for a moment: keep lying
                pass
            time.sleep(PERIOD)
    print(json.dumps({"sent": sent}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
