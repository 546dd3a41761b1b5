"""An exclusive flock held across a store's read-modify-write, with a deadline.

flock is released by the kernel when its holder dies, kill -9 included, so a
crashed plugin never leaves the pool locked. A live holder that hangs would
block every setup on the node forever (the kubelet has no timeout): waiting is
therefore bounded and ends in a BackendError that names the lock file.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from typing import Iterator

from plugin.errors import BackendError

FIRST_PAUSE, LONGEST_PAUSE = 0.0005, 0.02


@contextmanager
def locked(path: str, timeout: float) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        _acquire(fd, path, timeout)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def _acquire(fd: int, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pause = FIRST_PAUSE
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"lock {path} still held by another process after {timeout:g}s",
                    f"a plugin process may be stuck: find it with 'fuser {path}'",
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
