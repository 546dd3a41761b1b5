"""The CNI spec versions this front-end speaks, and what each one allows.

Results changed shape once in a way that matters here: before 1.0.0 every IP
carries `"version": "4"` or `"6"`. CHECK exists from 0.4.0, STATUS and GC from
1.1.0; a config of an older version asking for them is refused with code 1,
as the reference skeleton does, so a runtime learns it from the code alone.
"""

from __future__ import annotations

import json

from plugin.errors import shown
from plugin.frontends.cni.errors import INCOMPATIBLE_VERSION, CniError

SUPPORTED = ("0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = SUPPORTED[-1]
SINCE = {"CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}
OLDEST_RESULT = (0, 3, 0)  # `ips` as a list: what a delegated plugin must answer in


def parse(text: str) -> tuple[int, int, int]:
    """"1.0.0" -> (1, 0, 0); ValueError for anything that is not three numbers."""
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() and p.isascii() for p in parts):
        raise ValueError(f"{shown(text)} is not a version like 1.0.0")
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch


def at_least(version: str, floor: str) -> bool:
    return parse(version) >= parse(floor)


def has_ip_version(version: str) -> bool:
    """Results before 1.0.0 say each IP's family."""
    return parse(version) < (1, 0, 0)


def require(command: str, version: str) -> None:
    """Refuse, with code 1, a version this plugin does not speak or too old for `command`."""
    if version not in SUPPORTED:
        raise CniError(INCOMPATIBLE_VERSION, f"incompatible CNI version {shown(version)}",
                       f"vlanpipe supports {', '.join(SUPPORTED)}")
    floor = SINCE.get(command)
    if floor and not at_least(version, floor):
        raise CniError(INCOMPATIBLE_VERSION, f"config version {version} does not allow {command}",
                       f"{command} needs cniVersion {floor} or newer")


def report(stdin: bytes) -> dict[str, object]:
    """The VERSION answer: the version asked about, and ours.

    Input that says no version (none, not JSON) is answered for the newest one,
    as the reference skeleton does: VERSION is how a runtime finds out what to send.
    """
    try:
        asked = json.loads(stdin).get("cniVersion")
    except (ValueError, AttributeError, RecursionError):  # nested past the decoder's bound
        asked = None
    return {"cniVersion": asked if isinstance(asked, str) and asked else LATEST,
            "supportedVersions": list(SUPPORTED)}


def negotiate(requested: str, theirs: list[str]) -> str | None:
    """The version to speak with a delegated plugin: `requested` if it knows it, else the
    newest older one it knows, else the oldest newer one; None if it knows no version
    that answers with an `ips` list.

    Debian's host-local stops at 1.0.0: a 1.1.0 config is handed to it as 1.0.0,
    whose results have the same shape.
    """
    if requested in theirs:
        return requested
    usable = sorted((parse(v), v) for v in theirs if _usable(v))
    older = [v for key, v in usable if key < parse(requested)]
    newer = [v for key, v in usable if key > parse(requested)]
    return older[-1] if older else newer[0] if newer else None


def _usable(version: object) -> bool:
    try:
        return isinstance(version, str) and parse(version) >= OLDEST_RESULT
    except ValueError:
        return False
