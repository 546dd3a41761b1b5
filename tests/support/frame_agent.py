"""Raw frames in and out of a pod's interface, run inside its network namespace
(`nsenter --net`) by tests/support/frames.py with the host's Python.

  listen IFNAME SECONDS MARKERS    count, per name, the frames carrying its marker (hex)
  send IFNAME REPEAT FRAMES        send each frame (hex, by name) REPEAT times
  spam IFNAME SECONDS FRAMES       say "ready", wait for IFNAME to exist and be up, then
                                   send the frames in a loop until SECONDS have passed;
                                   a frame named self-* goes with the interface's own MAC
                                   as its source (and ARP sender), read as it sends

Each prints one JSON line at the end: {"counts": {...}} or {"sent": {...}}.
"""

from __future__ import annotations

import json
import socket
import sys
import time

ETH_P_ALL = 0x0003


def listen(ifname: str, seconds: float, markers: dict[str, str]) -> dict:
    wanted = {name: bytes.fromhex(mark) for name, mark in markers.items()}
    counts = {name: 0 for name in wanted}
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.bind((ifname, 0))
        sock.settimeout(0.1)
        print("ready", flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                frame, where = sock.recvfrom(65536)
            except socket.timeout:
                continue
            if where[2] == socket.PACKET_OUTGOING:
                continue
            for name, mark in wanted.items():
                counts[name] += mark in frame
    return {"counts": counts}


def send(ifname: str, repeat: int, frames: dict[str, str]) -> dict:
    sent = {name: 0 for name in frames}
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((ifname, 0))
        for _ in range(repeat):
            for name, frame in frames.items():
                sent[name] += sock.send(bytes.fromhex(frame)) > 0
            time.sleep(0.05)
    return {"sent": sent}


def _as(mac: bytes, frame: bytes) -> bytes:
    """`frame` sent from `mac` (the ARP sender too)."""
    frame = frame[:6] + mac + frame[12:]
    if frame[12:14] == b"\x08\x06":
        frame = frame[:22] + mac + frame[28:]
    return frame


def spam(ifname: str, seconds: float, frames: dict[str, str]) -> dict:
    """From the moment `ifname` can send, every frame in turn, as fast as it goes. The
    socket is made again every 50 ms, so a MAC set after the interface appeared (pipework
    sets it after the rename) is the one `self-*` frames carry."""
    print("ready", flush=True)
    raw = {name: bytes.fromhex(frame) for name, frame in frames.items()}
    sent = {name: 0 for name in raw}
    deadline = time.monotonic() + seconds
    first = None
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
                sock.bind((ifname, 0))
                mac = sock.getsockname()[4]
                data = {name: _as(mac, frame) if name.startswith("self-") else frame
                        for name, frame in raw.items()}
                renew = time.monotonic() + 0.05
                while time.monotonic() < min(deadline, renew):
                    went = False
                    for name, frame in data.items():
                        try:
                            sock.send(frame)
                        except OSError:  # down (ENETDOWN) or gone: try again
                            continue
                        sent[name] += 1
                        went = True
                        first = first or time.monotonic()
                    if not went:
                        time.sleep(0.0002)
        except OSError:  # no such interface yet (ENODEV)
            time.sleep(0.0005)
    return {"sent": sent, "sending_seconds": (deadline - first) if first else 0,
            "stopped_at": time.time()}


def main(argv: list[str]) -> None:
    mode, ifname, number, table = argv
    if mode == "listen":
        found = listen(ifname, float(number), json.loads(table))
    elif mode == "send":
        found = send(ifname, int(number), json.loads(table))
    elif mode == "spam":
        found = spam(ifname, float(number), json.loads(table))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
