"""JSON from a tenant (a network config on stdin, with what the runtime added to it):
decoded within bounds (its keys are judged in `plugin.config.netconf`).

Limits, checked before anything walks the document: stdin holds at most MAX_BYTES
(more is not read), and no object or list nests deeper than MAX_DEPTH (the top-level
object is level 1), anywhere: ipam, args, runtimeConfig, prevResult, annotations.
Real configs nest about 6 deep; the walkers that follow (the ipam check, podargs,
the result) then never meet a structure that could exhaust Python's stack, and a
1.3 KB document nested 600 deep is one short error instead of a traceback.

Keys are compared as the delegated IPAM plugin (Go) compares them, without regard to
case, so an object holding one key twice, in the same case or another, is refused: Go
reads the last (or merges two objects), and one of them would pass unchecked.
"""

from __future__ import annotations

import json
from typing import Any

from plugin.errors import shown
from plugin.frontends.cni.errors import DECODE_FAILURE, INVALID_CONFIG, CniError

MAX_BYTES = 1 << 20  # stdin: a network config is a few KB, a chained prevResult a few more
MAX_DEPTH = 32  # levels of objects and lists


class Unbounded(CniError):
    """The network config is past the limits: ADD, CHECK (and the rest) refuse it with code 7;
    DEL goes by the attachment record instead (it must not fail)."""

    def __init__(self, what: str) -> None:
        super().__init__(INVALID_CONFIG, f"network config on stdin {what}",
                         f"keep it within {MAX_BYTES} bytes and {MAX_DEPTH} levels of nesting")


def decode(stdin: bytes) -> dict[str, Any]:
    if len(stdin) > MAX_BYTES:
        raise Unbounded(f"is larger than {MAX_BYTES} bytes")
    try:
        document = json.loads(stdin, object_pairs_hook=_object)
    except RecursionError:  # the C decoder's own bound, far past MAX_DEPTH
        raise Unbounded(f"nests deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise CniError(DECODE_FAILURE, f"network config on stdin is not JSON ({exc})",
                       "the runtime must send the network config as one JSON object") from None
    if not isinstance(document, dict):
        raise CniError(DECODE_FAILURE, "network config on stdin is not a JSON object",
                       "the runtime must send the network config as one JSON object")
    _bounded(document)
    return document


def _bounded(document: dict[str, Any]) -> None:
    """Refuse a document nested deeper than MAX_DEPTH, naming the top-level key it is under;
    measured with a list, not recursion, so the measure itself cannot overflow."""
    pending: list[tuple[Any, int, str]] = [(v, 2, k) for k, v in document.items()]
    while pending:
        value, depth, top = pending.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise Unbounded(f"nests deeper than {MAX_DEPTH} levels (in {shown(top)})")
            items = value.values() if isinstance(value, dict) else value
            pending.extend((item, depth + 1, top) for item in items)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """One JSON object, refused if two of its keys are equal without regard to case: Go reads
    the last (or merges two objects), so one of them would pass unchecked."""
    seen: dict[str, str] = {}
    for count, (key, _) in enumerate(pairs, 1):
        first = seen.setdefault(key.casefold(), key)
        if len(seen) < count:
            twice = f"the key {shown(key)} twice" if first == key else \
                f"the keys {shown(first)} and {shown(key)}"
            raise CniError(INVALID_CONFIG, f"network config has {twice}: a Go plugin reads keys "
                           "without regard to case, so one would pass unchecked",
                           "write each key once, in the case the spec gives it")
    return dict(pairs)

