"""Run a little work inside a pod's network namespace, from a thread, with no process.

setns(2) moves only the calling thread, so a short-lived worker thread enters
the namespace, does the work (a socket made there stays in that namespace for
good, and an ioctl on it names that namespace's links) and ends. The caller
waits a bounded time; the process's other threads never move.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Callable, TypeVar

from pipework_wrapper.errors import ToolFailed

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def inside(netns: str, work: Callable[[], T], what: str, timeout: float = 5.0) -> T:
    """`work()` run in the network namespace at `netns`; its OSError is a ToolFailed
    naming `what`, and so is a worker that does not finish within `timeout`."""
    box: dict[str, object] = {}

    def enter_and_work() -> None:
        try:
            target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(target)  # this thread ends right after: no way back is needed
            finally:
                os.close(target)
            box["result"] = work()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=enter_and_work, name=f"inside {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise ToolFailed(f"{what} in {netns} did not finish within {timeout:g}s",
                         "check the pod's network namespace")
    error = box.get("error")
    if isinstance(error, OSError):
        raise ToolFailed(f"cannot {what} in {netns}: {error.strerror or error}",
                         "check that the pod's namespace and interface exist") from None
    if isinstance(error, BaseException):
        raise error
    return box["result"]  # type: ignore[return-value]


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")
