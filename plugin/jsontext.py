"""JSON read and a string quoted as `json` would, without importing `json`.

Why: `status` runs on every pod sync and reads two small JSON files (its config
cache entry and the pod's record). `import json` imports `re`, and `re` imports
`enum`: about 4 ms, half the interpreter's own start, for files of a few hundred
bytes (issue 23). `json`'s own C accelerator, `_json`, parses and quotes alike
and imports nothing; this module drives it the way `json.decoder` does, and falls
back to `json` itself on an interpreter that lacks it. Results are the same as
`json.loads` / `json.dumps` (tests/unit/test_jsontext.py compares them).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

WHITESPACE = " \t\n\r"  # what JSON allows around a value

try:
    from _json import encode_basestring_ascii as _quote
    from _json import make_scanner as _make_scanner
except ImportError:  # not CPython's json accelerator: json itself, at its cost
    _quote = _make_scanner = None


class _Options:
    """What `_json.make_scanner` reads of a decoder: json.loads's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                      "NaN": float("nan")}.__getitem__


_scan = _make_scanner(_Options()) if _make_scanner else None


def loads(text: str) -> Any:
    """`json.loads(text)`; ValueError for anything that is not one JSON document."""
    if _scan is None:
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not JSON") from None
    if text[end:].strip(WHITESPACE):
        raise ValueError("extra data after the JSON document")
    return value


def quote(text: str) -> str:
    """`json.dumps(text)`: the string as a JSON string, non-ASCII escaped."""
    if _quote is None:
        import json

        return json.dumps(text)
    return _quote(text)
