"""The failures the wrappers report, and the base every expected failure of the plugin shares.

The wrappers sit at the bottom: they know nothing of the plugin above them, so
the one base class lives here. Each failure carries a message (what went wrong)
and a hint (what to do); the front-ends alone turn them into exit codes or CNI
errors.
"""

from __future__ import annotations


class Failure(Exception):
    """Base of every expected failure: one user-facing line, never a traceback."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.line())

    def line(self) -> str:
        """One line: what went wrong, then what to do about it."""
        text = f"{self.message}; {self.hint}" if self.hint else self.message
        return " ".join(text.split())


class ToolFailed(Failure):
    """An outside program (pipework, ovs-vsctl, ip, nsenter) failed, hung or is missing."""


class DockerUnavailable(Failure):
    """dockerd does not answer: unlike an unknown container, worth a retry later."""


class ContainerNotFound(Failure):
    """Docker does not know the container."""
