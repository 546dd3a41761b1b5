"""etcd's v3 key-value API in memory, as its JSON gateway answers: the unit tier's etcd.

The store's correctness rests on etcd's compare-and-set rules, so the fake
implements them rather than the store's expectations: one revision counter for
the whole keyspace, raised once by every transaction or request that changes a key;
each key's create revision, mod revision and version; a transaction's compares
all evaluated against the state before it (a missing key compares as create
revision 0, mod revision 0, version 0, and fails any VALUE compare), then the
success or failure branch run in order; ranges with `range_end` (a prefix end,
or "\\0" for every key from `key`), `keys_only` and `limit` (with `more`). Empty
fields are left out of replies, as the gateway leaves them out. Anything else it is
sent is an error, so the fake never answers a request etcd would treat differently.
`FakeConnection` is the plugin's `EtcdConnection` with its one I/O method, `call`,
answered by a `FakeEtcd` (through a JSON round trip, like the wire).
"""

from __future__ import annotations

import base64
import json
import operator
from dataclasses import dataclass
from typing import Any, Callable

from plugin.ipam.stores.etcd_config import EtcdConfig
from plugin.ipam.stores.etcd_client import EtcdConnection

RESULTS: dict[str, Callable[[Any, Any], bool]] = {
    "EQUAL": operator.eq, "NOT_EQUAL": operator.ne, "GREATER": operator.gt,
    "LESS": operator.lt}
TARGETS = {"CREATE": "create_revision", "MOD": "mod_revision", "VERSION": "version",
           "VALUE": "value"}


@dataclass
class KeyValue:
    value: bytes
    create_revision: int
    mod_revision: int
    version: int


def _bytes(text: str) -> bytes:
    return base64.b64decode(text)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class FakeEtcd:
    def __init__(self) -> None:
        self.revision = 1  # a fresh etcd's
        self.keys: dict[bytes, KeyValue] = {}
        self.requests: list[str] = []
        # Called with the API path before each request is applied (a test's interleaving).
        self.before: Callable[[str, dict[str, Any]], None] = lambda path, payload: None

    def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(path)
        self.before(path, payload)
        handlers = {"kv/txn": self._txn, "kv/range": self._range_request,
                    "kv/put": self._put_request, "kv/deleterange": self._delete_request}
        if path not in handlers:
            raise AssertionError(f"fake etcd: no {path}")
        return {"header": {"revision": str(self.revision)}, **handlers[path](payload)}

    # --- requests ------------------------------------------------------------------

    def _txn(self, payload: dict[str, Any]) -> dict[str, Any]:
        _only(payload, {"compare", "success", "failure"})
        succeeded = all(self._compare(c) for c in payload.get("compare", []))
        ops = payload.get("success" if succeeded else "failure", []) or []
        keys = [_bytes(next(iter(op.values()))["key"]) for op in ops
                if "request_put" in op or "request_delete_range" in op]
        if len(keys) != len(set(keys)):
            raise AssertionError("fake etcd: duplicate key given in txn request")
        revision = self.revision + 1  # the transaction's, if it changes anything
        changed = False
        responses = []
        for op in ops:
            ((kind, body),) = op.items()
            if kind == "request_range":
                responses.append({"response_range": self._range(body)})
            elif kind == "request_put":
                responses.append({"response_put": self._put(body, revision)})
                changed = True
            elif kind == "request_delete_range":
                deleted = self._delete(body)
                responses.append({"response_delete_range": deleted})
                changed = changed or bool(deleted)
            else:
                raise AssertionError(f"fake etcd: no {kind} in a txn")
        if changed:
            self.revision = revision
        answer: dict[str, Any] = {"responses": responses}
        if succeeded:
            answer["succeeded"] = True
        return answer

    def _range_request(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._range(payload)

    def _put_request(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.revision += 1
        return self._put(payload, self.revision)

    def _delete_request(self, payload: dict[str, Any]) -> dict[str, Any]:
        deleted = self._delete(payload)
        if deleted:
            self.revision += 1
        return deleted

    # --- operations ----------------------------------------------------------------

    def _compare(self, compare: dict[str, Any]) -> bool:
        _only(compare, {"key", "target", "result", *TARGETS.values()})
        target = TARGETS[compare.get("target", "VERSION")]  # the gateway omits enum zeros
        result = RESULTS[compare.get("result", "EQUAL")]
        found = self.keys.get(_bytes(compare["key"]))
        if target == "value":
            return found is not None and result(found.value, _bytes(compare.get("value", "")))
        actual = getattr(found, target) if found is not None else 0
        return result(actual, int(compare.get(target, 0)))

    def _selected(self, body: dict[str, Any]) -> list[bytes]:
        key = _bytes(body["key"])
        if "range_end" not in body:
            return [key] if key in self.keys else []
        end = _bytes(body["range_end"])
        return sorted(k for k in self.keys if k >= key and (end == b"\0" or k < end))

    def _range(self, body: dict[str, Any]) -> dict[str, Any]:
        _only(body, {"key", "range_end", "keys_only", "limit"})
        kvs = []
        selected = self._selected(body)
        limit = int(body.get("limit", 0))
        more = bool(limit) and len(selected) > limit
        for key in selected[:limit] if limit else selected:
            found = self.keys[key]
            kv: dict[str, Any] = {"key": _b64(key), "create_revision": str(found.create_revision),
                                  "mod_revision": str(found.mod_revision),
                                  "version": str(found.version)}
            if found.value and not body.get("keys_only"):
                kv["value"] = _b64(found.value)
            kvs.append(kv)
        answer: dict[str, Any] = {"kvs": kvs, "count": str(len(selected))} if kvs else {}
        if more:
            answer["more"] = True
        return answer

    def _put(self, body: dict[str, Any], revision: int) -> dict[str, Any]:
        _only(body, {"key", "value"})
        key = _bytes(body["key"])
        old = self.keys.get(key)
        self.keys[key] = KeyValue(_bytes(body.get("value", "")),
                                  old.create_revision if old else revision, revision,
                                  old.version + 1 if old else 1)
        return {"header": {"revision": str(revision)}}

    def _delete(self, body: dict[str, Any]) -> dict[str, Any]:
        _only(body, {"key", "range_end"})
        selected = self._selected(body)
        for key in selected:
            del self.keys[key]
        return {"deleted": str(len(selected))} if selected else {}


def _only(body: dict[str, Any], known: set[str]) -> None:
    unknown = set(body) - known
    if unknown:
        raise AssertionError(f"fake etcd: does not implement {sorted(unknown)}")


class FakeConnection(EtcdConnection):
    """The plugin's etcd connection, every request answered by `etcd` instead of the wire."""

    def __init__(self, etcd: FakeEtcd, config: EtcdConfig | None = None) -> None:
        self.config = config  # type: ignore[assignment]
        self.etcd = etcd

    def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps(self.etcd.call(path, json.loads(json.dumps(payload)))))
