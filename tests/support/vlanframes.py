"""Tagged frames without an 802.1Q module: sent and heard through AF_PACKET sockets inside
pods' network namespaces, for the trunk tests.

These machines have no 802.1Q module, so a pod cannot have `eth1.100`. The sender
writes the 802.1Q header into the bytes it hands an AF_PACKET socket. A receiver
never finds a tag in the bytes it reads: the kernel takes the header off every frame
it receives (`skb_vlan_untag`) and reports the tag beside the frame, in the socket's
`PACKET_AUXDATA`; that is where the listener reads it.

Run as a script in a namespace (`nsenter --net=... python vlanframes.py ...`, the
host's Python, like tests/support/traffic_agent.py):

  listen IFNAME SECONDS                   count received frames per marker, with the tags
  send IFNAME SRC_MAC VLAN MARKER [SRC_IP]  three broadcast frames (VLAN 0: untagged),
                                          an IPv4 packet from SRC_IP if given

Imported, it starts those from the test (`Listener`, `send`).
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
from typing import Any

SCRIPT = os.path.abspath(__file__)
ETH_P_ALL = 0x0003
SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID = 263, 8, 0x10
PACKET_OUTGOING = 4
EXPERIMENTAL = 0x88B5  # IEEE's ethertype for local experiments
MAGIC = b"VLANPIPE-TRUNK:"


def _frame(src_mac: str, vlan: int, marker: str, src_ip: str) -> bytes:
    head = b"\xff" * 6 + bytes.fromhex(src_mac.replace(":", ""))
    if vlan:
        head += struct.pack("!HH", 0x8100, vlan)
    body = MAGIC + marker.encode() + b";"
    if not src_ip:
        return head + struct.pack("!H", EXPERIMENTAL) + body.ljust(46, b".")
    total = 20 + len(body)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 253, 0,
                         socket.inet_aton(src_ip), socket.inet_aton("255.255.255.255"))
    words = struct.unpack("!10H", header)
    checksum = sum(words)
    checksum = (checksum & 0xFFFF) + (checksum >> 16)
    checksum = ~((checksum & 0xFFFF) + (checksum >> 16)) & 0xFFFF
    header = header[:10] + struct.pack("!H", checksum) + header[12:]
    return head + struct.pack("!H", 0x0800) + (header + body).ljust(46, b".")


def _send(ifname: str, src_mac: str, vlan: int, marker: str, src_ip: str = "") -> dict:
    frame = _frame(src_mac, vlan, marker, src_ip)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.bind((ifname, 0))
        for _ in range(3):
            sock.send(frame)
            time.sleep(0.05)
    return {"sent": 3}


def _listen(ifname: str, seconds: float) -> dict:
    """Each marker heard, with how often and under which tags (0: untagged)."""
    heard: dict[str, dict[str, Any]] = {}
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.bind((ifname, 0))
        sock.settimeout(0.1)
        print("ready", flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data, ancillary, _, address = sock.recvmsg(65536, socket.CMSG_SPACE(20))
            except socket.timeout:
                continue
            at = data.find(MAGIC)
            if at < 0 or address[2] == PACKET_OUTGOING:
                continue
            marker = data[at + len(MAGIC):].split(b";", 1)[0].decode()
            tag = 0
            for level, kind, value in ancillary:
                if level == SOL_PACKET and kind == PACKET_AUXDATA:
                    status, _, _, _, _, tci = struct.unpack("IIIHHH", value[:18])
                    tag = tci & 0xFFF if status & TP_STATUS_VLAN_VALID else 0
            found = heard.setdefault(marker, {"frames": 0, "tags": [], "inline": False})
            found["frames"] += 1
            found["tags"] = sorted(set(found["tags"]) | {tag})
            found["inline"] |= data[12:14] == b"\x81\x00"  # a tag left in the bytes
    return heard


class Listener:
    """A listener on `netns`'s `ifname` for `seconds`, ready when constructed."""

    def __init__(self, netns: str, ifname: str, seconds: float = 4.0) -> None:
        self.proc = subprocess.Popen(
            ["nsenter", f"--net={netns}", sys.executable, SCRIPT, "listen", ifname,
             str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if readable else ""
        if line.strip() != "ready":
            self.proc.kill()
            raise AssertionError(f"listener did not start: {line!r} "
                                 f"{self.proc.communicate(timeout=10)[1][-2000:]}")

    def heard(self) -> dict[str, dict[str, Any]]:
        """marker -> {"frames": n, "tags": [...], "inline": bool}, once the time is up."""
        out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err[-2000:]
        return json.loads(out.strip().splitlines()[-1])


def send(netns: str, ifname: str, src_mac: str, vlan: int, marker: str, src_ip: str = "") -> None:
    done = subprocess.run(["nsenter", f"--net={netns}", sys.executable, SCRIPT, "send", ifname,
                           src_mac, str(vlan), marker, src_ip], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, f"sending {marker} failed: {done.stderr[-2000:]}"


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "listen":
        result = _listen(args[0], float(args[1]))
    else:
        result = _send(args[0], args[1], int(args[2]), args[3], *args[4:5])
    print(json.dumps(result), flush=True)
