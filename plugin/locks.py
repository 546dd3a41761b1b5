"""flock(2) with a deadline: the one lock helper, for pods and for the address stores.

The kernel drops a flock when the last descriptor of its file is closed, kill -9
included, so a crashed plugin never leaves a lock held by itself. A live holder
that hangs would block the pod (or every setup on the node) forever, and the
kubelet has no timeout, so waiting is bounded and ends in an error naming the
lock and its holder.

Per-pod locks serialise setup, teardown and gc of one container (a teardown
racing a retrying setup would delete a half-made port under it); different
pods never wait for each other. The holder writes its PID and a token into
the lock file, and its children inherit the lock's descriptor and the token
(`pipework_wrapper.command.inherit`): if the plugin is killed, a child that
lives on (pipework's ip or ovs-vsctl) still holds the lock, so the next call on
the pod cannot run beside it. That call sees the recorded holder is dead, ends
every process carrying the token, and then takes the lock and cleans up.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from pipework_wrapper import command
from plugin import names
from plugin.errors import LockTimeout

FIRST_PAUSE, LONGEST_PAUSE = 0.0005, 0.02
TOKEN_VARIABLE = "VLANPIPE_LOCK_TOKEN"
ORPHAN_CHECK_EVERY = 0.1  # seconds between looks at a busy pod lock's recorded holder


class PodLock:
    """A held pod lock; `discard()` asks for its file to go when the pod is gone for good."""

    def __init__(self) -> None:
        self.remove = False

    def discard(self) -> None:
        self.remove = True


@dataclass(frozen=True)
class Holder:
    """Who holds a pod lock, as written in its file: a process and the token of its children."""

    pid: int
    start: int  # the process's start time in clock ticks: a reused PID has another
    token: str

    @classmethod
    def me(cls) -> "Holder":
        return cls(os.getpid(), _start_time(os.getpid()) or 0, os.urandom(8).hex())

    def alive(self) -> bool:
        return _start_time(self.pid) == self.start


@contextmanager
def locked(path: str, timeout: float,
           while_busy: Callable[[], None] | None = None) -> Iterator[int]:
    """Hold an exclusive flock on `path` (created if missing); yield its descriptor.
    `while_busy` is called now and then while another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        _acquire(fd, path, timeout, while_busy)
        yield fd
    finally:
        os.close(fd)  # closing our descriptor releases the lock unless children hold it


@contextmanager
def pod_lock(state_dir: str, container_id: str, timeout: float) -> Iterator[PodLock]:
    """Hold the pod's lock; if discarded, delete the lock file before releasing it.

    A waiter may have opened the file we unlink; it then locks an orphaned
    inode, notices the path now names another file (or none), and retries.
    """
    path = _pod_lock_path(state_dir, container_id)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    deadline = time.monotonic() + timeout
    me = Holder.me()
    while True:
        with locked(path, max(0.0, deadline - time.monotonic()),
                    while_busy=lambda: _end_orphans(path)) as fd:
            if not _same_file(fd, path):
                continue
            _write_holder(fd, me)
            held = PodLock()
            with command.inherit(fd, {TOKEN_VARIABLE: me.token}):
                yield held
            if held.remove:
                os.unlink(path)
            else:
                os.ftruncate(fd, 0)  # released normally: no holder to look for
            return


def pod_busy(state_dir: str, container_id: str) -> bool:
    """Whether a call (or a child it left) holds the pod's lock now: tried without waiting,
    and let go at once if it was free."""
    try:
        fd = os.open(_pod_lock_path(state_dir, container_id), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _pod_lock_path(state_dir: str, container_id: str) -> str:
    return os.path.join(state_dir, "locks", f"{names.state_key(container_id)}.lock")


def sweep_unused(directory: str, keep: Callable[[str], bool], dry_run: bool) -> list[str]:
    """Remove the lock files of killed calls: not held now, and not `keep(key)` (the pod
    still has records). Each is removed under its own lock, as `discard` does."""
    removed = []
    try:
        names_ = sorted(n for n in os.listdir(directory) if n.endswith(".lock"))
    except FileNotFoundError:
        return []
    for name in names_:
        path = os.path.join(directory, name)
        if keep(name[:-len(".lock")]):
            continue
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(fd, path) and not keep(name[:-len(".lock")]):
                if not dry_run:
                    os.unlink(path)
                removed.append(path)
        except BlockingIOError:
            pass  # in use: a call (or its children) holds it
        finally:
            os.close(fd)
    return removed


def holder_of(path: str) -> Holder | None:
    try:
        with open(path, encoding="utf-8") as handle:
            body = json.load(handle)
        return Holder(int(body["pid"]), int(body["start"]), str(body["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_holder(fd: int, holder: Holder) -> None:
    data = json.dumps({"pid": holder.pid, "start": holder.start, "token": holder.token}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _end_orphans(path: str) -> None:
    """If the lock's recorded holder is dead, its children hold the lock: end them."""
    holder = holder_of(path)
    if holder is None or holder.alive():
        return
    for pid in carrying(holder.token):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def carrying(token: str) -> list[int]:
    """The processes whose environment carries a lock holder's token."""
    mark = f"{TOKEN_VARIABLE}={token}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if mark in handle.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:  # gone, or a kernel thread
            continue
    return found


def _acquire(fd: int, path: str, timeout: float,
             while_busy: Callable[[], None] | None) -> None:
    deadline = time.monotonic() + timeout
    pause = FIRST_PAUSE
    next_look = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            now = time.monotonic()
            if while_busy is not None and now >= next_look:
                while_busy()
                next_look = now + ORPHAN_CHECK_EVERY
            if now >= deadline:
                holder = holder_of(path)
                who = f" (pid {holder.pid})" if holder else ""
                raise LockTimeout(
                    f"lock {path} still held by another process{who} after {round(timeout, 1):g}s",
                    f"a plugin call may be stuck: find it with 'fuser {path}'",
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)


def _start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)
