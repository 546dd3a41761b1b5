"""A delegated IPAM plugin's config in a tenant's network config, held to what a tenant
may choose: a plugin by name, and no path, file or endpoint on the node anywhere in it."""

from __future__ import annotations

from typing import Any, Mapping

from plugin import names
from plugin.config.refusal import invalid, named, refused

PLACE_WORDS = ("dir", "path", "file", "sock", "conf")


def delegated(value: Any) -> Mapping[str, Any]:
    """A network config's `ipam`: a delegated IPAM plugin's config, which may name no place
    on the node (only the node config may: `cni.ipam_data_dir`); {} for none."""
    if value is None or value == {}:
        return {}
    if not isinstance(value, dict):
        raise invalid("ipam", value, "must be a mapping")
    kind = value.get("type")
    if not isinstance(kind, str) or not names.plaintext(kind):
        raise invalid("ipam.type", kind, "must name an IPAM plugin on CNI_PATH (host-local, "
                       "static); leave ipam out to use the node's networks")
    place = _place(value, "ipam")
    if place is not None:
        raise refused(*place, "names a path, a file or an endpoint on the node (in any case: "
                       "the plugin reads keys without regard to case), which only the node "
                       "config may choose (cni.ipam_data_dir)")
    return value


def _place(value: Any, key: str) -> tuple[str, Any] | None:
    """The first setting below `value` that names a place on the node: a key that reads as
    one in any case, at any depth, or a value that is a path or an endpoint."""
    if isinstance(value, dict):
        for k, v in value.items():
            if any(word in k.casefold() for word in PLACE_WORDS):
                return f"{key}.{named(k)}", v
            found = _place(v, f"{key}.{named(k)}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _place(v, f"{key}[{i}]")
            if found is not None:
                return found
    elif _names_a_place(value):
        return key, value
    return None


def _names_a_place(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith(("/", "~", ".")) or "://" in value
                                       or value.startswith("unix:"))
