"""flock(2) with a deadline: the one lock helper, for pods and for the address stores.

The kernel drops a flock when its holder dies, kill -9 included, so a crashed
plugin never leaves a lock held. A live holder that hangs would block the pod
(or every setup on the node) forever, and the kubelet has no timeout, so
waiting is bounded and ends in an error naming the lock file.

Per-pod locks serialise setup, teardown and gc of one infra container (a
teardown racing a retrying setup would delete a half-made port under it);
different pods never wait for each other.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from typing import Iterator

from plugin.errors import BackendError

FIRST_PAUSE, LONGEST_PAUSE = 0.0005, 0.02


class PodLock:
    """A held pod lock; `discard()` asks for its file to go when the pod is gone for good."""

    def __init__(self) -> None:
        self.remove = False

    def discard(self) -> None:
        self.remove = True


@contextmanager
def locked(path: str, timeout: float) -> Iterator[int]:
    """Hold an exclusive flock on `path` (created if missing); yield its descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        _acquire(fd, path, timeout)
        yield fd
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


@contextmanager
def pod_lock(state_dir: str, infra_id: str, timeout: float) -> Iterator[PodLock]:
    """Hold the pod's lock; if discarded, delete the lock file before releasing it.

    A waiter may have opened the file we unlink; it then locks an orphaned
    inode, notices the path now names another file (or none), and retries.
    """
    directory = os.path.join(state_dir, "locks")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, f"{infra_id}.lock")
    deadline = time.monotonic() + timeout
    while True:
        with locked(path, max(0.0, deadline - time.monotonic())) as fd:
            if not _same_file(fd, path):
                continue
            held = PodLock()
            yield held
            if held.remove:
                os.unlink(path)
            return


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


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)
