"""The tables the cluster parts print: rows of figures, then each target with PASS or FAIL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    """One promise of the issue, judged on the figures of this run."""

    what: str
    measured: str
    met: bool

    @property
    def verdict(self) -> str:
        return "PASS" if self.met else "FAIL"


@dataclass
class Table:
    title: str
    head: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        """Markdown: the figures, then the targets (the README quotes it as it is)."""
        lines = [f"### {self.title}", "", _row(self.head), _row(["---"] * len(self.head))]
        lines += [_row([_cell(v) for v in row]) for row in self.rows]
        if self.targets:
            lines += ["", _row(["target", "measured", "verdict"]), _row(["---"] * 3)]
            lines += [_row([t.what, t.measured, t.verdict]) for t in self.targets]
        lines += [""] + [f"{note}  " for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)
