"""The exec front-end's exit codes: one per failure class, in one table.

The README's table is this one (a unit test compares them) and `--help` prints
it, so an operator's script can tell a stuck lock from a dead etcd from an
Open vSwitch failure without parsing the message. A subclass is matched
before its base (EtcdError before BackendError, anything before Failure).
"""

from __future__ import annotations

from plugin.errors import (AllocationError, BackendError, ConfigError, ContainerError,
                           ContainerNotFound, DockerUnavailable, EtcdError, Failure, InputError,
                           LockTimeout, NeedsRoot, ToolFailed, UsageError)

OTHER = 1
TABLE: tuple[tuple[tuple[type[Failure], ...], int, str], ...] = (
    ((Failure,), OTHER, "doctor found a failed check; pin get found no pin; a bug"),
    ((UsageError,), 2, "usage: unknown command or option, wrong argument count"),
    ((ConfigError,), 3, "the config: missing, malformed, unsafe, or lacking a section"),
    ((InputError,), 4, "bad input: namespace, pod name, container id, VLAN, pin"),
    ((ContainerError, ContainerNotFound, DockerUnavailable), 5,
     "the container, its namespace, or Docker (gc: Docker's pods not judged)"),
    ((BackendError, ToolFailed), 6, "Open vSwitch, pipework, ip or another tool; an uplink refused"),
    ((AllocationError,), 7, "no address: pool exhausted, address held or answered for on "
                            "the VLAN, lease unreadable"),
    ((EtcdError,), 8, "etcd does not answer or refuses the request"),
    ((LockTimeout,), 9, "a pod's lock is still held after timeouts.lock"),
    ((NeedsRoot,), 10, "an operator command not run as root"),
)
_ORDER = sorted(TABLE, key=lambda row: -max(len(kind.__mro__) for kind in row[0]))


def exit_code(exc: Failure) -> int:
    return next(code for kinds, code, _ in _ORDER if isinstance(exc, kinds))


def describe() -> str:
    """The table as `--help` prints it."""
    return "exit codes:\n  0  success\n" + "\n".join(
        f"  {code:<2} {meaning}" for _, code, meaning in TABLE)
