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
import ssl
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


@dataclass(frozen=True)
class Tls:
    """A throw-away CA and one certificate (server and client) for 127.0.0.1."""

    ca_cert: str
    cert: str
    key: str


@dataclass
class EtcdServer:
    process: subprocess.Popen
    data_dir: str
    client_port: int
    peer_port: int
    log_path: str
    tls: Tls | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"


def make_tls(directory: str) -> Tls:
    """Generate the CA and certificate with openssl (EC keys: fast)."""
    tls = Tls(*(os.path.join(directory, name) for name in ("ca.pem", "node.pem", "node.key")))
    ca_key, csr = os.path.join(directory, "ca.key"), os.path.join(directory, "node.csr")
    ext = os.path.join(directory, "node.ext")
    with open(ext, "w") as handle:
        handle.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for command in (
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", tls.ca_cert, "-days", "2",
         "-subj", "/CN=vlanpipe-test-ca"],
        ["req", *ec, "-keyout", tls.key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", tls.ca_cert, "-CAkey", ca_key, "-CAcreateserial",
         "-out", tls.cert, "-days", "2", "-extfile", ext],
    ):
        subprocess.run(["openssl", *command], check=True, capture_output=True)
    return tls


def available() -> bool:
    return os.access(ETCD, os.X_OK)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(data_dir: str, client_port: int | None = None, peer_port: int | None = None,
          timeout: float = 20.0, tls: Tls | None = None) -> EtcdServer:
    """Run etcd with its data in `data_dir` and wait until it is healthy.

    With `tls`, clients must speak https and show a certificate of its CA.
    """
    client_port = client_port or free_port()
    peer_port = peer_port or free_port()
    client = f"{'https' if tls else 'http'}://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    secure = ["--cert-file", tls.cert, "--key-file", tls.key, "--trusted-ca-file", tls.ca_cert,
              "--client-cert-auth"] if tls else []
    log_path = os.path.join(os.path.dirname(data_dir.rstrip("/")) or ".",
                            f"etcd-{client_port}.log")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [ETCD, "--name", "test", "--data-dir", data_dir,
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"test={peer}", *secure],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = EtcdServer(process, data_dir, client_port, peer_port, log_path, tls)
    try:
        wait_healthy(server, timeout)
    except BaseException:
        stop(server)
        raise
    return server


def healthy(url: str, tls: Tls | None = None) -> bool:
    context = None
    if tls:
        context = ssl.create_default_context(cafile=tls.ca_cert)
        context.load_cert_chain(tls.cert, tls.key)
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1, context=context) as response:
            return json.load(response).get("health") == "true"
    except (OSError, ValueError):
        return False


def wait_healthy(server: EtcdServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not healthy(server.url, server.tls):
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
    server.process = start(server.data_dir, server.client_port, server.peer_port,
                           tls=server.tls).process


class DroppingProxy:
    """An HTTP proxy in front of etcd that forwards every request, but for the first one
    whose body holds `marker` it closes the connection after etcd applied it, before the
    reply: the lost reply of a transaction that did happen."""

    def __init__(self, upstream_port: int, marker: bytes) -> None:
        self.upstream_port, self.marker = upstream_port, marker
        self.dropped = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        import http.client

        reader = client.makefile("rb")
        with client:
            while True:
                request = reader.readline()
                if not request:
                    return
                headers, length = [], 0
                while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
                    headers.append(line)
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = reader.read(length)
                method, path = request.split()[:2]
                upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=10)
                upstream.request(method.decode(), path.decode(), body,
                                 {"Content-Type": "application/json"})
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                if self.marker in body and not self.dropped:
                    self.dropped += 1
                    return  # applied upstream; the reply is lost
                client.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                               b"Content-Length: %d\r\n\r\n%s" % (
                                   answer.status, answer.reason.encode(), len(data), data))

    def close(self) -> None:
        self.server.close()
