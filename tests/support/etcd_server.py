"""Start and stop a throw-away etcd on 127.0.0.1 (tests and benchmark share it).

Plain functions, no pytest: `start()` picks free ports, waits until /health
says true, and `stop()` kills the process. `restart()` keeps the data dir, as
a crashed or upgraded etcd would come back.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


@dataclass
class EtcdServer:
    process: subprocess.Popen
    data_dir: str
    client_port: int
    peer_port: int
    log_path: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"


def available() -> bool:
    return os.access(ETCD, os.X_OK)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(data_dir: str, client_port: int | None = None, peer_port: int | None = None,
          timeout: float = 20.0) -> EtcdServer:
    """Run etcd with its data in `data_dir` and wait until it is healthy."""
    client_port = client_port or free_port()
    peer_port = peer_port or free_port()
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    log_path = os.path.join(os.path.dirname(data_dir.rstrip("/")) or ".",
                            f"etcd-{client_port}.log")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [ETCD, "--name", "test", "--data-dir", data_dir,
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"test={peer}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = EtcdServer(process, data_dir, client_port, peer_port, log_path)
    try:
        wait_healthy(server, timeout)
    except BaseException:
        stop(server)
        raise
    return server


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return json.load(response).get("health") == "true"
    except (OSError, ValueError):
        return False


def wait_healthy(server: EtcdServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not healthy(server.url):
        if server.process.poll() is not None:
            raise RuntimeError(f"etcd exited with {server.process.returncode}; "
                               f"see {server.log_path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"etcd not healthy after {timeout}s; see {server.log_path}")
        time.sleep(0.1)


def stop(server: EtcdServer) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGKILL)
    server.process.wait()


def restart(server: EtcdServer) -> None:
    """Kill etcd and start it again on the same ports and data dir (same object)."""
    stop(server)
    server.process = start(server.data_dir, server.client_port, server.peer_port).process
