"""The few error types the plugin raises, and the exit code each one maps to.

Every layer raises one of these with a message that names what was wrong and
what to do; the front-ends (exec argv, CNI) are the only place where they turn
into output and exit codes.
"""

from __future__ import annotations


class PluginError(Exception):
    """Base of every expected failure: carries a one-line, user-facing message."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.line())

    def line(self) -> str:
        """One line for stderr: what went wrong, then what to do about it."""
        text = f"{self.message}; {self.hint}" if self.hint else self.message
        return " ".join(text.split())


class UsageError(PluginError):
    """Wrong command or argument count: the kubelet protocol's exit code 2."""

    exit_code = 2


class ConfigError(PluginError):
    """The configuration file is missing, malformed or holds an impossible value."""

    exit_code = 3


class InputError(PluginError):
    """A namespace, pod name, infra id or derived VLAN that cannot be used."""

    exit_code = 4


class ContainerError(PluginError):
    """The infra container is unknown, stopped, or Docker cannot be asked."""

    exit_code = 5


class DockerUnavailable(ContainerError):
    """dockerd does not answer: unlike an unknown container, worth a retry later."""


class BackendError(PluginError):
    """Open vSwitch, pipework, ip or an allocator backend failed or did not answer."""

    exit_code = 6


class AllocationError(PluginError):
    """No address can be handed out: pool exhausted, record corrupt, conflict."""

    exit_code = 7
