"""Human output of the operator commands: within 80 columns, and no Python `None`.

A table of ten columns cannot fit a terminal, so each entry is a head line
(whose, and its state) and an indented line of details, both wrapped; `--json`
keeps every field as it is.
"""

from __future__ import annotations

import textwrap
from typing import Any, Iterable

WIDTH = 80
INDENT = "    "


def wrap(text: str, first: str = "", rest: str = INDENT) -> list[str]:
    """`text` in lines of at most WIDTH characters; a word longer than a line is cut."""
    return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest,
                         break_on_hyphens=False) or [first.rstrip()]


def _join(*parts: Any) -> str:
    return ", ".join(str(p) for p in parts if p not in (None, ""))


def attachments(rows: Iterable[Any]) -> str:
    """`list`: pod and interface with the state, then VLAN, bridge, port, address, MAC, id."""
    lines: list[str] = []
    for r in rows:
        whose = f"{r.namespace}/{r.pod}" if r.namespace else (r.pod or r.port)
        lines += wrap(f"{whose} {r.interface}: {r.state}".replace("  ", " "))
        details = _join(f"VLAN {r.vlan}" if r.vlan is not None else "",
                        f"bridge {r.bridge}" if r.bridge else "",
                        f"port {r.port}" if r.port and r.port != whose else "",
                        r.address, f"MAC {r.mac}" if r.mac else "",
                        f"infra {r.infra_id}" if r.infra_id else "")
        if details:
            lines += wrap(details, INDENT)
    return "\n".join(lines) if lines else "no attachments"


def cluster(leases: Iterable[Any]) -> str:
    """`list --cluster`: address and whose, then network, node and when it was last seen."""
    lines: list[str] = []
    for lease in leases:
        lines += wrap(f"{lease.address} {lease.namespace}/{lease.pod} {lease.interface}")
        lines += wrap(_join(f"network {lease.network}", f"node {lease.node}",
                            f"seen {lease.node_seen}", f"infra {lease.infra_id[:12]}"), INDENT)
    return "\n".join(lines) if lines else "no lease in etcd"


def checks(found: Iterable[Any]) -> str:
    """`doctor`: ok or FAIL, the check and what it found; under a failed one, its fix."""
    lines: list[str] = []
    for check in found:
        lines += wrap(f"{check.name}: {check.detail}", f"{'ok' if check.ok else 'FAIL':<6}",
                      " " * 6)
        if not check.ok and check.fix:
            lines += wrap(f"fix: {check.fix}", " " * 6, " " * 11)
    return "\n".join(lines)


def plain(entries: Iterable[str]) -> str:
    return "\n".join(line for entry in entries for line in wrap(entry, "", INDENT))
