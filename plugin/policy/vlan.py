"""How a pod's VLAN is chosen from its names: the rule the config parses into.

The default rule is the reference plugin's: the digits before the first '-' of
the pod name (`22-my-nginx` is VLAN 22). Unlike the reference, the result is
validated, so `nginx-abc` fails before any veth exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from plugin import names
from plugin.errors import InputError, shown

RULES = ("pod-name-prefix", "regex", "namespace-map", "fixed")


@dataclass(frozen=True)
class VlanRule:
    """How a pod's VLAN is chosen when no pin says otherwise."""

    kind: str = "pod-name-prefix"
    pattern: re.Pattern | None = None
    namespaces: Mapping[str, int] = field(default_factory=dict)
    tag: int | None = None

    def tag_for(self, namespace: str, pod: str) -> int:
        if self.kind == "pod-name-prefix":
            return checked(_prefix(pod), f"pod name {shown(pod)}")
        if self.kind == "regex":
            assert self.pattern is not None
            found = self.pattern.search(pod)
            if not found or found.group("vlan") is None:
                raise InputError(
                    f"pod name {shown(pod)} does not match the VLAN pattern "
                    f"{self.pattern.pattern!r}",
                    "rename the pod or change vlan.pattern in the config",
                )
            return checked(found.group("vlan"), f"pod name {shown(pod)}")
        if self.kind == "namespace-map":
            if namespace not in self.namespaces:
                raise InputError(
                    f"namespace {shown(namespace)} has no VLAN in vlan.namespaces",
                    "add the namespace to vlan.namespaces in the config",
                )
            return self.namespaces[namespace]
        assert self.tag is not None
        return self.tag


def _prefix(pod: str) -> str:
    head, sep, _ = pod.partition("-")
    if not sep or not head.isdigit() or not head.isascii():
        raise InputError(
            f"pod name {shown(pod)} has no VLAN prefix",
            "name the pod '<VLAN>-<name>' (for example '22-my-nginx') or choose another vlan.rule",
        )
    return head


def checked(text: str | int, what: str) -> int:
    """A VLAN tag taken from `what`; its range is names.vlan's."""
    try:
        return names.vlan(text)
    except ValueError:
        raise InputError(
            f"{what} gives VLAN {text}, not a number between {names.VLAN_MIN} and {names.VLAN_MAX}",
            "use a VLAN tag between 1 and 4094",
        ) from None
