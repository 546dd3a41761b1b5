"""CNI error codes, and the one mapping from the plugin's errors to them.

A spec code (0-99) where one says what went wrong; this plugin's own codes
from 999 up otherwise, so a runtime or an operator reading the error JSON can
tell an Open vSwitch failure from an exhausted pool without the log. The exit
status is always 1, as in the reference skeleton: the code travels in the
JSON, and an exit status cannot hold 1001 anyway.
"""

from __future__ import annotations

from typing import Any

from plugin.errors import (AddressConflict, AddressRefused, AllocationError, BackendError, ConfigError, ContainerError,
                           ContainerNotFound, DockerUnavailable, Failure, InputError, NotReady,
                           ToolFailed)

INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50

INTERNAL = 999          # a bug: the traceback is in the log
PLUGIN = 1000           # any other failure of this plugin
BACKEND = 1001          # Open vSwitch, pipework or ip failed
ALLOCATION = 1002       # no address could be handed out
CHECK_FAILED = 1003     # CHECK found the attachment differs from prevResult
DELEGATE_FAILED = 1004  # the IPAM plugin crashed, hung or printed no CNI error
ADDRESS_CONFLICT = 1005  # another host on the VLAN answered for the pod's address

EXIT_STATUS = 1

# The one place failures become CNI codes; the first matching class wins.
_BY_TYPE: tuple[tuple[type[Failure] | tuple[type[Failure], ...], int], ...] = (
    ((ConfigError, AddressRefused), INVALID_CONFIG),
    (InputError, INVALID_ENVIRONMENT),
    ((DockerUnavailable, NotReady), TRY_AGAIN_LATER),
    ((ContainerError, ContainerNotFound), UNKNOWN_CONTAINER),
    ((BackendError, ToolFailed), BACKEND),
    (AddressConflict, ADDRESS_CONFLICT),
    (AllocationError, ALLOCATION),
)


class CniError(Failure):
    """An error whose CNI code the front-end chose itself."""

    def __init__(self, code: int, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.code = code


def code_for(exc: Failure) -> int:
    if isinstance(exc, CniError):
        return exc.code
    return next((code for kind, code in _BY_TYPE if isinstance(exc, kind)), PLUGIN)


def document(exc: Failure, version: str) -> dict[str, Any]:
    """The error object of the spec: a short `msg`, what to do about it in `details`."""
    return {"cniVersion": version, "code": code_for(exc), "msg": " ".join(exc.message.split()),
            "details": " ".join(exc.hint.split())}
