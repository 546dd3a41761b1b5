"""A per-pod lock that a killed process cannot leave held.

Setup and teardown of the same infra container must not interleave (a
teardown racing a retrying setup would delete a half-made port under it);
different pods must not wait for each other. flock(2) on one file per infra
container gives exactly that, and the kernel drops it when the holder dies.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from typing import Iterator


class Held:
    """The held lock; `discard()` asks for its file to go when the pod is gone for good."""

    def __init__(self) -> None:
        self.remove = False

    def discard(self) -> None:
        self.remove = True


@contextmanager
def pod_lock(state_dir: str, infra_id: str) -> Iterator[Held]:
    """Hold the pod's lock; if discarded, delete the lock file before releasing it.

    A waiter may have opened the file we unlink; it then locks an orphaned
    inode, notices the path now names another file (or none), and retries.
    """
    directory = os.path.join(state_dir, "locks")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, f"{infra_id}.lock")
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    held = Held()
    try:
        yield held
        if held.remove:
            os.unlink(path)
    finally:
        os.close(fd)


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)
