"""Where a container's attachment records live and how one file is read, without the
dataclasses: `status` answers from this alone, on every pod sync, so it imports no
more than `plugin.jsontext` to parse (`plugin.core.records` builds `Attachment`s on top).
"""

from __future__ import annotations

import os

from plugin import jsontext, names

KIND, VERSION = "vlanpipe.attachments", 1


def directory(state_dir: str) -> str:
    return os.path.join(state_dir, "attachments")


def path(state_dir: str, infra_id: str) -> str:
    return os.path.join(directory(state_dir), f"{names.state_key(infra_id)}.json")


def legacy_path(state_dir: str, infra_id: str) -> str | None:
    """Where the first release kept a Docker container's records (`<id>.json`, a bare list):
    a node upgraded with pods attached still has them. None for ids it never served."""
    if not names.is_docker_id(infra_id):
        return None
    return os.path.join(directory(state_dir), f"{infra_id}.json")


def read(file: str) -> tuple[str, list[dict]]:
    """(container id, attachments as stored) of one file; ValueError says why it cannot be
    used, FileNotFoundError that there is none."""
    with open(file, encoding="utf-8") as handle:
        try:
            body = jsontext.loads(handle.read())
        except ValueError:
            raise ValueError("not JSON") from None
    if isinstance(body, list):
        return _first_release(file, body)
    if not isinstance(body, dict) or body.get("kind") != KIND:
        raise ValueError(f"not a {KIND} record")
    if body.get("version") != VERSION:
        raise ValueError(f"version {body.get('version')!r}, this plugin reads {VERSION}")
    infra_id, items = body.get("infra_id"), body.get("attachments")
    if not isinstance(infra_id, str) or not isinstance(items, list) or not all(
            isinstance(i, dict) for i in items):
        raise ValueError("malformed attachments")
    return infra_id, items


def _first_release(file: str, items: list) -> tuple[str, list[dict]]:
    """A record of the first release, in today's shape: its name is the container id, and
    each attachment had one address and one gateway."""
    infra_id = os.path.basename(file).removesuffix(".json")
    if not names.is_docker_id(infra_id) or not all(isinstance(i, dict) for i in items):
        raise ValueError("not a record: a list in a file not named by a container id")
    return infra_id, [{**{k: v for k, v in item.items() if k not in ("address", "gateway")},
                       "addresses": [item["address"]] if item.get("address") else [],
                       "gateways": [item.get("gateway") or ""] if item.get("address") else []}
                      for item in items]


def find(state_dir: str, infra_id: str) -> tuple[str, list[dict]]:
    """The container's file read, at today's name or else the first release's."""
    try:
        return read(path(state_dir, infra_id))
    except FileNotFoundError:
        legacy = legacy_path(state_dir, infra_id)
        if legacy is None:
            raise
        return read(legacy)


def primary_ip(state_dir: str, infra_id: str) -> str | None:
    """The primary attachment's first address, without its prefix; None if the container
    has no record (or one that cannot be read: `list` and `doctor` report those)."""
    try:
        found_id, items = find(state_dir, infra_id)
    except (FileNotFoundError, ValueError):
        return None
    if found_id != infra_id:
        return None
    primary = next((i for i in items if i.get("primary", True)), None)
    addresses = primary.get("addresses") if primary else None
    if not addresses or not isinstance(addresses, list) or not isinstance(addresses[0], str):
        return None
    return addresses[0].split("/")[0]
