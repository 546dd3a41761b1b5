"""Do pods talk? TCP and UDP streams with checked bytes, full-size packets that must not
fragment, and a packet listener that proves another VLAN hears nothing.

Ping alone proved nothing here: on the userspace datapath, ARP and ICMP crossed
while every TCP segment and UDP datagram was dropped for a checksum left to
transmit offload. So "pods talk" means `talk(a, b)` passes: a TCP exchange of
1 MiB each way started from either side, UDP datagrams each way with their
answers checked, and a "don't fragment" ping of the interface's full MTU each
way. `unheard(sender, other)` is the other half: after the sender passed its own
VLAN's checks, a listener on another VLAN's pod counts the frames from the
sender's MAC while the sender tries every kind of traffic at it; it must count 0.

The ends run in the pods' network namespaces through `nsenter --net` with the
host's Python (tests/support/traffic_agent.py) and iputils' ping.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Sequence

AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "traffic_agent.py")
MIB = 1 << 20
DEADLINE = 60.0


@dataclass(frozen=True)
class End:
    """A pod as traffic sees it: its network namespace (a path) and its address on `ifname`."""

    netns: str
    address: str
    ifname: str = "eth1"
    via: tuple[str, ...] = ()  # a prefix that reaches `netns`'s path (a bed node's nsenter)

    @classmethod
    def of_pid(cls, pid: int, address: str, ifname: str = "eth1") -> "End":
        return cls(f"/proc/{pid}/ns/net", address.split("/")[0], ifname)

    def argv(self, *argv: str) -> list[str]:
        return [*self.via, "nsenter", f"--net={self.netns}", *argv]

    def link(self) -> dict[str, Any]:
        out = subprocess.run(self.argv("ip", "-j", "link", "show", "dev", self.ifname),
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return json.loads(out)[0]


class _Agent:
    """One agent process; a server's port once it said "ready"."""

    def __init__(self, end: End, *args: str) -> None:
        self.proc = subprocess.Popen(end.argv(sys.executable, AGENT, *args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.port = 0

    def ready(self) -> "_Agent":
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], DEADLINE)
        line = self.proc.stdout.readline() if readable else ""
        if not line.startswith("ready"):
            self.proc.kill()
            raise AssertionError(f"traffic agent did not start: {line!r} "
                                 f"{self.proc.communicate(timeout=10)[1][-2000:]}")
        self.port = int(line.split()[1])
        return self

    def result(self) -> dict[str, Any]:
        try:
            out, err = self.proc.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=10)
        lines = out.strip().splitlines()
        try:
            return json.loads(lines[-1])
        except (IndexError, ValueError):
            return {"error": (err or out)[-2000:]}


def _run(end: End, *args: str) -> dict[str, Any]:
    return _Agent(end, *args).result()


def tcp(server: End, client: End, size: int = MIB, seed: int = 1) -> None:
    """A connection from `client` to `server`; `size` bytes each way, every byte checked."""
    listening = _Agent(server, "serve-tcp", server.address, str(size), str(seed)).ready()
    sent = _run(client, "tcp", server.address, str(listening.port), str(size), str(seed))
    heard = listening.result()
    assert heard.get("received") == size and heard.get("intact"), \
        f"TCP {client.address} -> {server.address}: server saw {heard}, client {sent}"
    assert sent.get("received") == size and sent.get("intact"), \
        f"TCP {server.address} -> {client.address}: client saw {sent}"


def udp(server: End, client: End, count: int = 5, seed: int = 7) -> None:
    """`count` datagrams from `client`, each answered by `server` with its bytes reversed."""
    listening = _Agent(server, "serve-udp", server.address, str(count), str(seed)).ready()
    sent = _run(client, "udp", server.address, str(listening.port), str(count), str(seed))
    heard = listening.result()
    assert heard.get("received") == count and heard.get("intact"), \
        f"UDP {client.address} -> {server.address}: server saw {heard}, client {sent}"
    assert sent.get("answered") == count, f"UDP answers to {client.address}: {sent}"


def full_size_ping(source: End, target: End) -> bool:
    """One ping of the source interface's full MTU with "don't fragment" set."""
    overhead = 48 if ":" in target.address else 28
    payload = source.link()["mtu"] - overhead
    done = subprocess.run(source.argv("ping", "-M", "do", "-c", "1", "-W", "3", "-s",
                                      str(payload), target.address),
                          capture_output=True, text=True, timeout=20)
    return done.returncode == 0


def talk(a: End, b: End) -> None:
    """Applications on `a` and `b` connect, both ways: TCP, UDP and full-size packets."""
    for server, client in ((a, b), (b, a)):
        tcp(server, client)
        udp(server, client)
        assert full_size_ping(client, server), \
            f"no full-MTU unfragmented ping from {client.address} to {server.address}"


def udp_rate(source: End, target: End, offered: float, seconds: float = 4.0) -> float:
    """The UDP rate (bit/s of payload) `target` receives while `source` offers `offered`
    bit/s for `seconds` (measured from half a second after the first datagram)."""
    sink = _Agent(target, "udp-sink", target.address, str(seconds - 0.5)).ready()
    sent = _run(source, "udp-flood", target.address, str(sink.port), str(offered),
                str(seconds))
    heard = sink.result()
    assert "bps" in heard and "bps" in sent, f"UDP {source.address} -> {target.address}: " \
        f"sender {sent}, receiver {heard}"
    return float(heard["bps"])


def tcp_rate(source: End, target: End, size: int = 8 * MIB) -> float:
    """The rate (bit/s) of one TCP stream of `size` bytes from `source` to `target`."""
    sink = _Agent(target, "sink", target.address).ready()
    sent = _run(source, "bulk", target.address, str(sink.port), str(size))
    heard = sink.result()
    assert heard.get("bytes") == size, f"TCP {source.address} -> {target.address}: " \
        f"sender {sent}, receiver {heard}"
    return heard["bytes"] * 8 / heard["seconds"]


_UDP_TRIES = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
with socket.socket(family, socket.SOCK_DGRAM) as sock:
    for _ in range(3):
        sock.sendto(b"x" * 100, (sys.argv[1], 9))
"""
_TCP_TRY = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 80), timeout=1).close()
except OSError:
    pass
"""


def unheard(sender: End, other: End, seconds: float = 5.0) -> int:
    """Frames from `sender`'s MAC that `other` (on another VLAN) receives while `sender`
    pings it, connects to it and sends it datagrams."""
    mac = sender.link()["address"]
    listener = _Agent(other, "listen", other.ifname, mac, str(seconds)).ready()
    attempts: Sequence[list[str]] = (
        ["ping", "-c", "1", "-W", "1", other.address],
        [sys.executable, "-c", _UDP_TRIES, other.address],
        [sys.executable, "-c", _TCP_TRY, other.address],
    )
    for argv in attempts:
        subprocess.run(sender.argv(*argv), capture_output=True, timeout=30)
    heard = listener.result()
    assert "frames" in heard, heard
    return int(heard["frames"])
