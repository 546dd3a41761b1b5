"""Human output of the operator commands: within 80 columns, and no Python `None`.

A table of ten columns cannot fit a terminal, so each entry is a head line
(whose, and its state) and an indented line of details, both wrapped; `--json`
keeps every field as it is.
"""

from __future__ import annotations

import textwrap
from typing import Any, Iterable, Iterator

WIDTH = 80
INDENT = "    "


def wrap(text: str, first: str = "", rest: str = INDENT) -> list[str]:
    """`text` in lines of at most WIDTH characters; a word longer than a line is cut.
    A text that fits as it is skips textwrap, whose answer it is: `list --cluster` wraps
    200,000 of them, at 15 us each on a node's CPU (issue 23)."""
    if (text and len(first) + len(text) <= WIDTH and text.isprintable()
            and text[0] != " " and text[-1] != " "):
        return [first + text]
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


def cluster(leases: Iterable[Any]) -> Iterator[str]:
    """`list --cluster`: address and whose, then network, node and when it was last seen;
    each lease's text as it comes (a cluster's 100,000 are never joined into one string)."""
    empty = True
    for lease in leases:
        empty = False
        yield "\n".join(
            wrap(f"{lease.address} {lease.namespace}/{lease.pod} {lease.interface}")
            + wrap(_join(f"network {lease.network}", f"node {lease.node}",
                         f"seen {lease.node_seen}", f"infra {lease.infra_id[:12]}"), INDENT))
    if empty:
        yield "no lease in etcd"


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
