"""OVSDB's JSON, as `ovs-vsctl --format=json` prints it, decoded into plain values.

ovs-vsctl prints one table per command, concatenated; a row's optional column is
`["set", []]` when empty, a set of one is the bare atom, a map is `["map", pairs]`.
"""

from __future__ import annotations

import json
from typing import Any


def documents(text: str) -> list[list[dict[str, Any]]]:
    """Split ovs-vsctl's concatenated JSON tables into lists of row dicts."""
    decoder, docs, pos = json.JSONDecoder(), [], 0
    text = text.strip()
    while pos < len(text):
        table, end = decoder.raw_decode(text, pos)
        docs.append([dict(zip(table["headings"], row)) for row in table["data"]])
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


def rows(text: str) -> list[dict[str, Any]]:
    docs = documents(text)
    return docs[0] if docs else []


def uuids(value: Any) -> list[str]:
    if value[0] == "uuid":
        return [value[1]]
    return [item[1] for item in value[1]]


def optional_uuids(value: Any) -> list[str]:
    """An optional reference column: ["uuid", U] or ["set", []]."""
    return [] if value[0] == "set" and not value[1] else uuids(value)


def scalar(value: Any) -> Any:
    """OVSDB encodes an empty optional column as ["set", []]."""
    if isinstance(value, list) and value and value[0] == "set":
        return value[1][0] if value[1] else None
    return value


def ofport(value: Any) -> int | None:
    """An interface's ofport: empty until ovs-vswitchd assigns it, -1 when it could not."""
    number = scalar(value)
    return number if isinstance(number, int) and number > 0 else None


def as_set(value: Any) -> list[Any]:
    """OVSDB encodes a set of one as the atom, of several as ["set", [...]]."""
    if isinstance(value, list) and value and value[0] == "set":
        return list(value[1])
    return [value]


def as_map(value: Any) -> dict[str, str]:
    return {k: v for k, v in value[1]}
