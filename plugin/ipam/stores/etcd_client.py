"""One connection to an etcd cluster through etcd3gw (the v3 JSON gateway).

It adds what the allocator needs around the library: endpoints tried in turn,
every request bounded by the configured timeout (a down cluster costs at most
timeout x endpoints, never a hang), and every failure, whatever the layer that
raised it, turned into one EtcdError naming the endpoint and the cause.
Imported only when an etcd network or pins are configured: etcd3gw pulls in
requests, which costs tens of milliseconds that `status` must not pay.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import requests
from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import ConnectionFailedError, ConnectionTimeoutError, Etcd3Exception

from pipework_wrapper.timing import timed
from plugin.errors import EtcdError
from plugin.ipam.stores.etcd_config import EtcdConfig

PAGE = 1000  # keys per range request of a listing: ~300 KB of leases, never the whole prefix
AHEAD = 2  # requests of a listing in flight while the caller reads a page
API_PATH = "/v3/"  # etcd >= 3.4; fixed, so no discovery round trip per process
HINT = "check that etcd runs, and the endpoints and TLS files of the etcd section"


@dataclass(frozen=True)
class Entry:
    """A key read from etcd, with the revision a compare-and-swap checks."""

    key: str
    value: bytes
    mod_revision: int


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def entries(response: dict[str, Any]) -> list[Entry]:
    """The key-values of a range response (the gateway omits empty fields)."""
    return [Entry(base64.b64decode(kv["key"]).decode(errors="replace"),
                  base64.b64decode(kv.get("value", "")), int(kv.get("mod_revision", 0)))
            for kv in response.get("kvs", [])]


def prefix_end(prefix: str) -> str:
    """The range end that selects every key starting with `prefix`."""
    return b64(_successor(prefix.encode()))


class EtcdConnection:
    def __init__(self, config: EtcdConfig) -> None:
        self.config = config
        self._clients = [self._client(url) for url in config.endpoints]
        self._current = 0

    def _client(self, url: str) -> Etcd3Client:
        """A client with its own session that ignores proxy and netrc settings.

        The plugin inherits the kubelet's environment: an HTTP(S)_PROXY meant
        for image pulls must not carry etcd traffic (and looking it up on every
        request costs more than the request on localhost).
        """
        session = requests.Session()
        session.trust_env = False
        if self.config.ca_cert:
            session.verify = self.config.ca_cert
        if self.config.cert and self.config.key:
            session.cert = (self.config.cert, self.config.key)
        parts = urlsplit(url)
        client = Etcd3Client(host=parts.hostname or "", port=parts.port or 2379,
                             protocol=parts.scheme, timeout=self.config.timeout,
                             api_path=API_PATH)
        # Set after construction: etcd3gw 2.5, the newest for Python 3.9, takes no
        # `session` argument; every release keeps the one it uses in `.session`.
        client.session = session
        return client

    def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST one request to the first endpoint that answers."""
        failures = []
        for step in range(len(self._clients)):
            index = (self._current + step) % len(self._clients)
            client = self._clients[index]
            try:
                with timed("etcd"):
                    result = client.post(client.get_url(path), json=payload)
            except (ConnectionFailedError, ConnectionTimeoutError) as exc:
                failures.append(f"{self.config.endpoints[index]}: {self._reason(exc)}")
                continue
            except (Etcd3Exception, requests.RequestException, ValueError) as exc:
                detail = getattr(exc, "detail_text", None) or str(exc) or type(exc).__name__
                raise EtcdError(f"etcd at {self.config.endpoints[index]} failed "
                                   f"{path}: {' '.join(detail.split())[:300]}", HINT) from None
            self._current = index
            return result
        raise EtcdError(f"etcd unreachable: {'; '.join(failures)}", HINT)

    def _reason(self, exc: Etcd3Exception) -> str:
        if isinstance(exc, ConnectionTimeoutError):
            return f"no answer within {self.config.timeout:g}s"
        text = exc.detail_text or str(exc)
        found = re.findall(r"\[(?:Errno -?\d+|SSL: \w+)\] [^'\"()]+", text)
        if found:
            return found[-1].rstrip(" ;")
        if "SSLError" in text:
            return "TLS handshake refused (does etcd want a client certificate?)"
        return " ".join(text.split())[:200]

    def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
            failure: list[dict[str, Any]] | None = None) -> tuple[bool, list[dict[str, Any]]]:
        """One transaction: (whether the compares held, the responses of the branch run)."""
        result = self.call("kv/txn", {"compare": compare, "success": success,
                                      "failure": failure or []})
        return bool(result.get("succeeded", False)), result.get("responses", [])

    def get(self, key: str) -> Entry | None:
        found = entries(self.call("kv/range", {"key": b64(key)}))
        return found[0] if found else None

    def scan(self, prefix: str, keys_only: bool = False) -> list[Entry]:
        return entries(self.call("kv/range", {"key": b64(prefix), "range_end": prefix_end(prefix),
                                              "keys_only": keys_only}))

    def pages(self, prefix: str, keys_only: bool = False, size: int = PAGE) -> Iterator[Entry]:
        """Every key under `prefix` in key order, at most `size` per request: a listing of
        100,000 leases holds three pages at a time, not one reply of them all (issue 23).

        etcd (3.4) counts every key from a request's start to its range end, whatever the
        limit: pages of one range over all the keys cost it O(n^2). So each request asks a
        window, the keys sharing its start's first `depth` bytes: past 4 pages, a window
        is narrowed at once to the bytes its page's first and last keys share, plus one
        (one byte at a time, 100,000 leases cost etcd 1.16 million keys counted, so 0.62
        million), and widened below a quarter of a page. The next AHEAD windows are asked
        while the caller works through this one (etcd serves them side by side). Not a
        snapshot: a key written meanwhile shows or not, as it would a moment later. The
        caller sends nothing else to etcd until it has them all."""
        def ask(start: bytes, end: bytes) -> dict[str, Any]:
            payload: dict[str, Any] = {"key": b64(start), "range_end": b64(end), "limit": size}
            if keys_only:
                payload["keys_only"] = True
            return self.call("kv/range", payload)

        first, stop = prefix.encode(), _successor(prefix.encode())
        depth = widest = len(first)  # at first the whole prefix: one window
        todo = deque([_Range(first, stop)])  # the keys left, in order; the first AHEAD asked
        _ask_first(todo, depth, ask)
        while todo:
            done = todo.popleft()
            answer = done.asked.result()  # type: ignore[union-attr]
            kvs, count = answer.get("kvs", []), int(answer.get("count", 0))
            if answer.get("more") and kvs:  # the rest of this window, first
                last = base64.b64decode(kvs[-1]["key"])
                todo.appendleft(_Range(last + b"\0", done.end))
                if count > 4 * size:  # at once as narrow as this page's own spread
                    spread = os.path.commonprefix([base64.b64decode(kvs[0]["key"]), last])
                    depth = max(depth + 1, len(spread) + 1)
            elif count < size // 4 and depth > widest:
                depth -= 1
            _ask_first(todo, depth, ask)
            yield from entries(answer)


def _ask_first(todo: deque[_Range], depth: int,
               ask: Callable[[bytes, bytes], dict[str, Any]]) -> None:
    """Ask the first AHEAD ranges of `todo` that are not asked yet, each cut to its window
    (the rest of it left after it, to ask later)."""
    for index in range(AHEAD):
        if index == len(todo):
            return
        part = todo[index]
        if part.asked is None:
            end = _window(part.start, depth, part.end)
            if end < part.end:
                todo.insert(index + 1, _Range(end, part.end))
            part.end, part.asked = end, _Ahead(ask, part.start, end)


@dataclass
class _Range:
    """Keys from `start` to `end` (excluded) that a listing has still to yield, and the
    request that asks exactly them, once asked."""

    start: bytes
    end: bytes
    asked: _Ahead | None = None


def _successor(prefix: bytes) -> bytes:
    """The first key after every key that starts with `prefix`."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _window(start: bytes, depth: int, stop: bytes) -> bytes:
    """The end of the window from `start`: after the keys sharing its first `depth` bytes."""
    head = start[:depth]
    return min(_successor(head), stop) if head[-1] < 0xFF else stop


class _Ahead:
    """One request run on a thread of its own; `result()` waits for it and raises what it
    raised. Bounded like every request (the client's timeout per endpoint)."""

    def __init__(self, ask: Callable[[bytes, bytes], dict[str, Any]], start: bytes,
                 end: bytes) -> None:
        self._answer: dict[str, Any] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(ask, start, end), daemon=True)
        self._thread.start()

    def _run(self, ask: Callable[[bytes, bytes], dict[str, Any]], start: bytes,
             end: bytes) -> None:
        try:
            self._answer = ask(start, end)
        except BaseException as exc:  # handed to the caller's thread by result()
            self._error = exc

    def result(self) -> dict[str, Any]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._answer


def range_op(key: str, keys_only: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"key": b64(key)}
    if keys_only:
        body["keys_only"] = True
    return {"request_range": body}


def put_op(key: str, value: bytes) -> dict[str, Any]:
    return {"request_put": {"key": b64(key), "value": b64(value)}}


def delete_op(key: str) -> dict[str, Any]:
    return {"request_delete_range": {"key": b64(key)}}


def absent(key: str) -> dict[str, Any]:
    """Compare: the key does not exist (never created, or deleted since)."""
    return {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": 0}


def unchanged(key: str, revision: int) -> dict[str, Any]:
    """Compare: the key was last written at `revision`."""
    return {"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": revision}


def branch_entries(responses: list[dict[str, Any]], index: int) -> list[Entry]:
    """The key-values of the `index`th range request of a transaction branch."""
    return entries(responses[index].get("response_range", {}))
