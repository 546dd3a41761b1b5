"""One timed process: wall time, exit code, combined output, CPU; peak RSS, programs run.

Every contender is measured through `timed`, so they all pay the same
launch overhead (one fork/exec from this process). The child is reaped with
`os.wait4`, which hands back the rusage of that one child: its CPU time,
safe to collect from many threads at once.

Two things cannot come from there, and are measured in separate, untimed
passes (`probe`): peak RSS, because at exec the kernel folds the RSS of the
image being replaced (this ~20 MB Python, shared by vfork) into the child's
`ru_maxrss`, so calls run under `/usr/bin/time -f %M` (a 2 MB parent); and the
number of programs a call executes, because the machine-wide fork counter
also counts every other process on a busy host, so calls run under
`strace -f -e execve`.
"""

from __future__ import annotations

import contextvars
import os
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

GNU_TIME = "/usr/bin/time"
STRACE = "/usr/bin/strace"
_PROBE: contextvars.ContextVar[str | None] = contextvars.ContextVar("probe", default=None)


@dataclass(frozen=True)
class Sample:
    """What one call cost.

    `cpu_ms` is user+system time of the process and the descendants it waited
    for (not the daemons it asked: ovs-vswitchd, dockerd). `maxrss_kb` and
    `execs` are set only in the matching `probe` pass.
    """

    argv: tuple[str, ...]
    code: int
    output: str
    wall_ms: float
    cpu_ms: float
    maxrss_kb: int | None = None
    execs: int | None = None

    @property
    def ok(self) -> bool:
        return self.code == 0


class CallFailed(RuntimeError):
    """A measured call exited non-zero: the run is void, the benchmark stops."""

    def __init__(self, sample: Sample) -> None:
        self.sample = sample
        super().__init__(f"{' '.join(sample.argv)} exited {sample.code}: "
                         f"{sample.output.strip()[:400]}")


@contextmanager
def probe(kind: str) -> Iterator[None]:
    """Inside, calls run under GNU time ("rss") or strace ("exec") and report that measure."""
    if kind not in ("rss", "exec"):
        raise ValueError(kind)
    token = _PROBE.set(kind)
    try:
        yield
    finally:
        _PROBE.reset(token)


def probe_available(kind: str) -> bool:
    return os.access(GNU_TIME if kind == "rss" else STRACE, os.X_OK)


def timed(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
          timeout: float = 120.0) -> Sample:
    """Run argv as the kubelet runs a plugin: stdin /dev/null, stdout+stderr together."""
    kind = _PROBE.get()
    if kind is None:
        return _timed(argv, env, timeout)
    fd, report = tempfile.mkstemp(prefix=f"vlanpipe-bench-{os.getpid()}-probe-")
    os.close(fd)
    try:
        if kind == "rss":
            wrapper = [GNU_TIME, "-f", "%M", "-o", report]
        else:  # successful execve calls of the whole tree, the call's own included
            wrapper = [STRACE, "-f", "-qq", "-z", "-e", "trace=execve", "-o", report]
        sample = _timed([*wrapper, *argv], env, timeout)
        with open(report, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    finally:
        os.unlink(report)
    words = text.split()
    rss = int(words[-1]) if kind == "rss" and words and words[-1].isdigit() else None
    execs = text.count("execve(") if kind == "exec" else None
    return Sample(tuple(argv), sample.code, sample.output, sample.wall_ms, sample.cpu_ms,
                  rss, execs)


def _timed(argv: Sequence[str], env: Mapping[str, str] | None, timeout: float) -> Sample:
    started = time.perf_counter()
    # Its own process group (a new session: `process_group=` needs Python 3.11): on Ctrl-C
    # the whole call (pipework's children, the process under GNU time or strace) is killed,
    # not only the process this one started.
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=dict(env) if env is not None else None,
                            start_new_session=True)
    killer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
    killer.start()
    try:
        assert proc.stdout is not None
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:  # Ctrl-C: the call must not outlive the run that cleans up after it
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        killer.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    wall_ms = (time.perf_counter() - started) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return Sample(tuple(argv), proc.returncode, output.decode(errors="replace"), wall_ms,
                  (usage.ru_utime + usage.ru_stime) * 1000)


def pmap(fn: Callable[[T], R], items: Sequence[T], jobs: int) -> list[R]:
    """`fn` over `items`, `jobs` at a time, in order. On Ctrl-C the calls not yet started
    are dropped (a plain `with ThreadPoolExecutor` would still run every queued one)."""
    pool = ThreadPoolExecutor(max(1, jobs))
    try:
        return list(pool.map(fn, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def checked(argv: Sequence[str], **kwargs: object) -> Sample:
    """`timed`, raising CallFailed on a non-zero exit."""
    sample = timed(argv, **kwargs)  # type: ignore[arg-type]
    if not sample.ok:
        raise CallFailed(sample)
    return sample
