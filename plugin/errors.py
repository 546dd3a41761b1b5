"""The few error types the plugin raises above the wrappers.

Every layer raises one of these (or a wrapper's failure) with a message that
names what was wrong and a hint that says what to do; the front-ends (exec argv,
CNI) are the only places where they turn into output and codes, each through
one table.
"""

from __future__ import annotations

from pipework_wrapper.errors import ContainerNotFound, DockerUnavailable, Failure, ToolFailed

__all__ = ["Failure", "UsageError", "ConfigError", "InputError", "ContainerError",
           "ContainerNotFound", "DockerUnavailable", "BackendError", "ToolFailed",
           "NotReady", "EtcdError", "LockTimeout", "AllocationError", "AddressRefused",
           "AddressConflict", "NeedsRoot", "shown"]

SHOWN = 60  # characters of an outside value a message (and so the log) may echo


def shown(value: object) -> str:
    """A value from outside (argv, CNI_* variables, stdin, annotations) as a message may
    echo it: escaped by ascii() (one line, no control or non-ASCII characters) and cut to
    SHOWN characters, so a 200 KB annotation gives a short error and a short log line."""
    text = ascii(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


class UsageError(Failure):
    """Wrong command or argument count."""


class ConfigError(Failure):
    """A configuration file is missing, malformed, holds an impossible value or is unsafe."""


class InputError(Failure):
    """A namespace, pod name, container id or derived VLAN that cannot be used."""


class ContainerError(Failure):
    """The pod's container or network namespace is there but cannot be attached to."""


class BackendError(Failure):
    """Open vSwitch, a lock or an allocator backend is not in a state the plugin can use."""


class NotReady(BackendError):
    """The node is not ready for pods yet (no bridge): a CNI runtime may retry later."""


class EtcdError(BackendError):
    """etcd does not answer or refuses a request: its own exit code, since the fix (start
    etcd, fix `etcd.endpoints`) is not the fix of an Open vSwitch failure."""


class LockTimeout(BackendError):
    """A pod's lock is still held after `timeouts.lock`: another call on that pod is stuck."""


class NeedsRoot(Failure):
    """An operator command run by another user: every check would fail for that one cause."""


class AllocationError(Failure):
    """No address can be handed out: pool exhausted, address held, record unreadable."""


class AddressRefused(AllocationError):
    """An address asked for by name is not one the network may give (bad input, not a
    shortage)."""


class AddressConflict(AllocationError):
    """Another host on the pod's VLAN answered for an address the pod was given (the
    conflict probe, plugin/core/ports.py): `found` holds each (address/len, MAC)."""

    def __init__(self, message: str, hint: str = "", interface: str = "", network: str = "",
                 found: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message, hint)
        self.interface = interface
        self.network = network
        self.found = found

    def add_hint(self, text: str) -> None:
        """What became of the leases, said once the core has kept or released them."""
        self.hint = f"{self.hint}; {text}" if self.hint else text
        self.args = (self.line(),)
