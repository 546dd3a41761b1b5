"""JSON from a tenant (a network config on stdin, with what the runtime added to it):
decoded, and the messages that echo it.

Keys are compared as the delegated IPAM plugin (Go) compares them, without regard to
case, so an object holding one key twice, in the same case or another, is refused: Go
reads the last (or merges two objects), and one of them would pass unchecked.
"""

from __future__ import annotations

import json
from typing import Any

from plugin.errors import SHOWN, shown
from plugin.frontends.cni.errors import DECODE_FAILURE, INVALID_CONFIG, CniError


def decode(stdin: bytes) -> dict[str, Any]:
    try:
        document = json.loads(stdin, object_pairs_hook=_object)
    except RecursionError:
        raise CniError(DECODE_FAILURE, "network config on stdin is not JSON (nested too deep)",
                       "the runtime must send the network config as one JSON object") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise CniError(DECODE_FAILURE, f"network config on stdin is not JSON ({exc})",
                       "the runtime must send the network config as one JSON object") from None
    if not isinstance(document, dict):
        raise CniError(DECODE_FAILURE, "network config on stdin is not a JSON object",
                       "the runtime must send the network config as one JSON object")
    return document


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


def named(key: str) -> str:
    """A key as a message shows it inside its dotted path: escaped, cut short, unquoted."""
    text = ascii(key)[1:-1]
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def invalid(key: str, value: Any, why: str) -> CniError:
    return CniError(INVALID_CONFIG, f"network config key '{key}' = {shown(value)} {why}",
                    "fix the network config (the file in /etc/cni/net.d or the "
                    "NetworkAttachmentDefinition)")


def refused(key: str, value: Any, why: str) -> CniError:
    return CniError(INVALID_CONFIG, f"network config key '{key}' = {shown(value)} {why}",
                    "change the network config, or ask the node's administrator (the node "
                    "config's cni section)")
