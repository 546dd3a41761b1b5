"""One end of a traffic check, run inside a pod's network namespace (`nsenter --net`).

Started by tests/support/traffic.py with the host's Python, so it needs nothing
from the pod's image (busybox's nc has no UDP mode). Every mode prints one JSON
line with what it saw; a server prints "ready PORT" first. The payloads are
seeded pseudo-random bytes, so the receiver checks every byte, not a count.

  serve-tcp ADDR SIZE SEED   accept one connection, read SIZE bytes, send SIZE back
  tcp ADDR PORT SIZE SEED    connect, send SIZE bytes, read SIZE back
  serve-udp ADDR COUNT SEED  answer COUNT datagrams, each with its bytes reversed
  udp ADDR PORT COUNT SEED   send COUNT datagrams, check each answer
  listen IFNAME MAC SECONDS  count the frames on IFNAME whose source MAC is MAC
  sink ADDR                  accept one connection, count its bytes and seconds to EOF
  bulk ADDR PORT SIZE        send SIZE bytes as fast as it can (the benchmark's load)
  udp-sink ADDR SECONDS      count the UDP bytes that arrive, until SECONDS after the first
  udp-flood ADDR PORT BPS SECONDS   send UDP paced at BPS bits/s of payload for SECONDS
"""

from __future__ import annotations

import json
import os
import random
import socket
import sys
import time

TIMEOUT = float(os.environ.get("TRAFFIC_TIMEOUT", "20"))
ETH_P_ALL = 0x0003


def payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def receive(conn: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = conn.recv(min(65536, size - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def accept_one(address: str) -> tuple[socket.socket, str]:
    """The one connection a TCP server takes (with the timeout set), after it said
    "ready PORT"; and its peer's address."""
    with socket.socket(family(address), socket.SOCK_STREAM) as server:
        server.bind((address, 0))
        server.listen(1)
        server.settimeout(TIMEOUT)
        print("ready", server.getsockname()[1], flush=True)
        conn, peer = server.accept()
    conn.settimeout(TIMEOUT)
    return conn, peer[0]


def serve_tcp(address: str, size: int, seed: int) -> dict:
    conn, peer = accept_one(address)
    with conn:
        data = receive(conn, size)
        conn.sendall(payload(seed + 1, size))
        conn.shutdown(socket.SHUT_WR)
        receive(conn, 1)  # until the client closes: every byte was read
    return {"received": len(data), "intact": data == payload(seed, size), "peer": peer}


def tcp(address: str, port: int, size: int, seed: int) -> dict:
    with socket.create_connection((address, port), timeout=TIMEOUT) as conn:
        conn.sendall(payload(seed, size))
        data = receive(conn, size)
    return {"received": len(data), "intact": data == payload(seed + 1, size)}


def serve_udp(address: str, count: int, seed: int) -> dict:
    seen: set[int] = set()
    intact = True
    with socket.socket(family(address), socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))
        sock.settimeout(TIMEOUT)
        print("ready", sock.getsockname()[1], flush=True)
        while len(seen) < count:
            data, peer = sock.recvfrom(65536)
            index = int.from_bytes(data[:4], "big")
            intact &= data[4:] == payload(seed + index, len(data) - 4)
            seen.add(index)
            sock.sendto(data[::-1], peer)
    return {"received": len(seen), "intact": intact}


def udp(address: str, port: int, count: int, seed: int) -> dict:
    answered = 0
    with socket.socket(family(address), socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        for index in range(count):
            data = index.to_bytes(4, "big") + payload(seed + index, 1000 + 100 * index)
            for _ in range(5):  # a datagram may be lost while a neighbour is resolved
                sock.sendto(data, (address, port))
                try:
                    if sock.recv(65536) == data[::-1]:
                        answered += 1
                        break
                except socket.timeout:
                    continue
    return {"sent": count, "answered": answered}


def listen(ifname: str, mac: str, seconds: float) -> dict:
    source = bytes.fromhex(mac.replace(":", ""))
    frames = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.bind((ifname, 0))
        sock.settimeout(0.1)
        print("ready 0", flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                frame = sock.recv(65536)
            except socket.timeout:
                continue
            frames += frame[6:12] == source
    return {"frames": frames}


def sink(address: str) -> dict:
    conn, _ = accept_one(address)
    started, total = time.monotonic(), 0
    with conn:
        while True:
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
    return {"bytes": total, "seconds": time.monotonic() - started}


def bulk(address: str, port: int, size: int) -> dict:
    block = bytes(1 << 20)
    with socket.create_connection((address, port), timeout=TIMEOUT) as conn:
        sent = 0
        while sent < size:
            conn.sendall(block[:min(len(block), size - sent)])
            sent += min(len(block), size - sent)
    return {"bytes": sent}


DATAGRAM = 1400  # payload bytes: a full frame, well under the 1500 MTU
SETTLE = 0.5  # seconds after the first datagram a rate is measured from (the burst passes)


def udp_sink(address: str, seconds: float) -> dict:
    """The bytes received from SETTLE to `seconds` after the first datagram, and that
    window's rate: what a limit lets through, its burst aside."""
    with socket.socket(family(address), socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sock.bind((address, 0))
        sock.settimeout(TIMEOUT)
        print("ready", sock.getsockname()[1], flush=True)
        sock.recv(65536)
        first = time.monotonic()
        total, counted = 0, 0
        sock.settimeout(0.2)
        while time.monotonic() < first + seconds:
            try:
                size = len(sock.recv(65536))
            except socket.timeout:
                continue
            total += size
            if time.monotonic() >= first + SETTLE:
                counted += size
    window = seconds - SETTLE
    return {"bytes": total, "window_bytes": counted, "seconds": window,
            "bps": counted * 8 / window}


def udp_flood(address: str, port: int, bps: float, seconds: float) -> dict:
    """Datagrams of DATAGRAM bytes paced at `bps` bits/s of payload (sent in small batches
    when the loop falls behind), for `seconds`."""
    block = bytes(DATAGRAM)
    interval = DATAGRAM * 8 / bps
    sent = 0
    with socket.socket(family(address), socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
        start = time.monotonic()
        end = start + seconds
        while True:
            now = time.monotonic()
            if now >= end:
                break
            due = int((now - start) / interval) + 1
            while sent < due:
                try:
                    sock.sendto(block, (address, port))
                except OSError:  # a full queue: the datagram is lost, as on a wire
                    pass
                sent += 1
            time.sleep(max(0.0, start + sent * interval - time.monotonic()))
    elapsed = time.monotonic() - start
    return {"datagrams": sent, "bps": sent * DATAGRAM * 8 / elapsed}


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "serve-tcp":
        found = serve_tcp(args[0], int(args[1]), int(args[2]))
    elif mode == "tcp":
        found = tcp(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif mode == "serve-udp":
        found = serve_udp(args[0], int(args[1]), int(args[2]))
    elif mode == "udp":
        found = udp(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif mode == "listen":
        found = listen(args[0], args[1], float(args[2]))
    elif mode == "sink":
        found = sink(args[0])
    elif mode == "bulk":
        found = bulk(args[0], int(args[1]), int(args[2]))
    elif mode == "udp-sink":
        found = udp_sink(args[0], float(args[1]))
    elif mode == "udp-flood":
        found = udp_flood(args[0], int(args[1]), float(args[2]), float(args[3]))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
