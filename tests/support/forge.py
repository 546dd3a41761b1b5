"""A pod that lies: sends frames with a forged source MAC and IPv4 address, continuously.

Run inside a pod's network namespace (`End.argv(sys.executable, FORGE, ...)`, like the
traffic agent): `forge.py IFNAME MAC SECONDS` sends a broadcast UDP datagram from MAC
and 10.66.0.250 (an address no pod of the tests has) every 5 ms until SECONDS pass,
then prints {"sent": N}. Broadcast, so a switch that admitted it would flood it to
every port of the VLAN, where a listener (`traffic_agent.py listen IFNAME MAC`)
counts it. Raw sockets only: no new image, no tool in the pod.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time

FORGED_IP = bytes([10, 66, 0, 250])
PERIOD = 0.005


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(mac: str) -> bytes:
    """Ethernet broadcast, IPv4 from FORGED_IP to 255.255.255.255, UDP 9 -> 9 (discard)."""
    payload = b"forged by tests/support/forge.py"
    udp = struct.pack("!HHHH", 9, 9, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                         FORGED_IP, b"\xff\xff\xff\xff")
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) + b"\x08\x00" + header + udp


def main(ifname: str, mac: str, seconds: float) -> None:
    packet, sent = frame(mac), 0
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
