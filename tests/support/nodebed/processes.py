"""Processes of the node bed: forked so that they die with the test process, stopped,
waited for, and found by the namespaces they are in."""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Sequence

# Daemons and tools live in sbin folders that a bare PATH may lack.
SBIN = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PR_SET_PDEATHSIG = 1
libc = ctypes.CDLL(None, use_errno=True)


class BedError(RuntimeError):
    """The bed could not be built or a command inside it failed."""



def _die_with(parent: int) -> Callable[[], None]:
    """preexec_fn: SIGKILL this child when its parent thread dies; if the parent is
    already gone (the race between fork and prctl), die at once."""

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


class _Spawner:
    """Forks every long-lived child from one daemon thread.

    PR_SET_PDEATHSIG fires when the thread that forked the child exits, not the
    process: a bed built from a short-lived worker thread (the benchmark uses
    thread pools) would otherwise lose its daemons the moment that thread ends.
    This thread ends only with the process.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        threading.Thread(target=self._loop, name="nodebed-spawner", daemon=True).start()

    def _loop(self) -> None:
        while True:
            job, result = self._jobs.get()
            try:
                result.set_result(job())
            except BaseException as exc:  # handed to the caller
                result.set_exception(exc)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        result: Future[subprocess.Popen[Any]] = Future()
        self._jobs.put((lambda: subprocess.Popen(
            list(argv), preexec_fn=_die_with(os.getpid()), **kwargs), result))
        return result.result()


_spawner_lock = threading.Lock()
_spawner: _Spawner | None = None


def spawn_process(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner.popen(argv, **kwargs)


def stop_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> int:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def daemon_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{env.get('PATH', '')}:{SBIN}".strip(":")
    return env


def pids_in(ns_ids: set[tuple[int, int]]) -> list[int]:
    """Processes (not this one) whose net or mount namespace is one of ``ns_ids``."""
    nets = {n for n, _ in ns_ids}
    mnts = {m for _, m in ns_ids}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            net = os.stat(f"/proc/{entry}/ns/net").st_ino
            mnt = os.stat(f"/proc/{entry}/ns/mnt").st_ino
        except OSError:
            continue
        if net in nets or mnt in mnts:
            found.append(int(entry))
    return found


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
              proc: subprocess.Popen[Any] | None = None) -> None:
    """Poll until ``predicate`` holds; BedError on timeout or if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise BedError(f"{what}: process exited with {proc.returncode} "
                           f"({' '.join(map(str, proc.args[:8]))})")
        if time.monotonic() > deadline:
            raise BedError(f"{what}: not ready after {timeout:g} s")
        time.sleep(0.02)
