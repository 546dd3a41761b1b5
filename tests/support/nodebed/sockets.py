"""Sockets in the bed's network namespaces, and the TCP forwarder through which this
(host-namespace) process reaches the bed's etcd without a link on the host."""

from __future__ import annotations

import selectors
import socket
import threading

from pipework_wrapper.errors import ToolFailed
from pipework_wrapper.inside import inside


def netns_socket(pid: int, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
                 proto: int = 0) -> socket.socket:
    """A socket created in the network namespace of ``pid``, usable from any thread.

    A socket belongs to the namespace it was created in, for good: routing, bind
    and interface names (AF_PACKET) are resolved there. setns(CLONE_NEWNET) only
    changes the calling thread, so a throwaway thread does it and nothing else in
    this process moves (a process cannot setns its mount namespace once it has
    threads, but the network namespace is per thread): the product's own
    `pipework_wrapper.inside`.
    """
    return inside(f"/proc/{pid}/ns/net", lambda: socket.socket(family, type, proto),
                  f"make a socket in the network namespace of {pid}")


class NetnsForwarder:
    """A TCP listener on this namespace's 127.0.0.1 that forwards every connection to
    ``target`` inside the network namespace of ``pid``.

    Why: the test process lives in the host namespace and cannot route to the
    bed's etcd, and a veth to the host is exactly what must not exist. A
    listening socket is not a link, port or netns entry, so the host's leak
    checks do not see it. Threads only; stops with close().
    """

    def __init__(self, pid: int, target: tuple[str, int]) -> None:
        self.pid, self.target = pid, target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, name=f"fwd-{self.port}", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._pump, args=(client,), daemon=True).start()

    def _pump(self, client: socket.socket) -> None:
        try:
            upstream = netns_socket(self.pid)
            upstream.settimeout(5)
            upstream.connect(self.target)
            upstream.settimeout(None)
        except (OSError, ToolFailed):
            client.close()
            return
        with self._lock:
            if self._closed:
                client.close()
                upstream.close()
                return
            self._open.update((client, upstream))
        peer = {client: upstream, upstream: client}
        sel = selectors.DefaultSelector()
        for sock in peer:
            sel.register(sock, selectors.EVENT_READ)
        try:
            while True:
                for key, _ in sel.select():
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    peer[key.fileobj].sendall(data)  # type: ignore[index]
        except OSError:
            return
        finally:
            sel.close()
            with self._lock:
                self._open.difference_update((client, upstream))
            client.close()
            upstream.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            socks = list(self._open)
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self._listener.close()
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
