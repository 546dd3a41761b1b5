"""Running one external program through plumbum, bounded, with a clear error.

Every command of the plugin goes through `run`: argv lists only (plumbum
never involves a shell), and a timeout that ends the whole process tree. The
program runs in a process group of its own; when its time is up the group is
killed, so a child that keeps the output pipes open (pipework's own ip,
ovs-vsctl, nsenter) cannot stretch the call past its bound. `setpriv
--pdeathsig KILL` runs first, so the program dies with the plugin if the plugin
is killed.

While the plugin holds a pod's lock, `inherit` hands that lock's descriptor and
a token to every child: a child that outlives a killed plugin keeps the lock,
so a later call on that pod waits for it or ends it (by the token) before
cleaning up.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

from plumbum import local
from plumbum.commands.processes import CommandNotFound

from pipework_wrapper.errors import ToolFailed
from pipework_wrapper.timing import timed

log = logging.getLogger("vlanpipe.command")

DEATH_SIGNAL = ("setpriv", "--pdeathsig", "KILL", "--")
DRAIN_SECONDS = 2.0  # after the group is killed: how long its pipes may take to close
_heritage: dict[str, object] = {"fds": (), "env": {}}


@dataclass(frozen=True)
class Result:
    """A finished outside program: its argv, exit code and output."""

    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr joined, for messages: tools print errors on either."""
        return " ".join(f"{self.stdout} {self.stderr}".split())


@contextmanager
def inherit(fd: int, env: Mapping[str, str]) -> Iterator[None]:
    """While inside: every child gets `fd` open and `env` set."""
    previous = dict(_heritage)
    _heritage.update(fds=(fd,), env=dict(env))
    try:
        yield
    finally:
        _heritage.update(previous)


def run(program: str, args: Sequence[str], timeout: float, ok: Sequence[int] = (0,),
        hint: str = "", env: Mapping[str, str] | None = None,
        input: bytes | None = None) -> Result:
    """Run `program args...` (with `env` added to the environment, `input` on stdin);
    raise ToolFailed unless its exit code is in `ok`."""
    try:
        path = str(local.which(program)) if os.sep not in program else program
    except CommandNotFound:
        raise ToolFailed(f"{program} not found on PATH",
                         hint or f"install {program} or put it on the PATH") from None
    if not os.access(path, os.X_OK):
        raise ToolFailed(f"{program} is not an executable file",
                         hint or f"install {program} or put it on the PATH")
    command = local[DEATH_SIGNAL[0]][DEATH_SIGNAL[1:]][path]
    extra = {**(env or {}), **_heritage["env"]}  # type: ignore[arg-type]
    if extra:
        command = command.with_env(**extra)
    started = time.monotonic()
    with timed(os.path.basename(program)):
        proc = command.popen(list(args), stdin=subprocess.DEVNULL if input is None
                             else subprocess.PIPE, start_new_session=True,
                             pass_fds=_heritage["fds"])
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _end_group(proc)
            raise ToolFailed(f"{program} did not finish within {timeout:g}s; it and its "
                             "children were stopped",
                             hint or f"check that the service behind {program} is running"
                             ) from None
    result = Result((program, *args), proc.returncode, _text(out), _text(err))
    log.debug("ran %s -> %d in %.1f ms: %s", " ".join(result.argv), result.code,
              (time.monotonic() - started) * 1000, result.output[:500])
    if result.code not in ok:
        raise ToolFailed(f"{program} {' '.join(args[:3])}... failed (exit {result.code}): "
                         f"{result.output[:300] or 'no output'}", hint)
    return result


def _end_group(proc: subprocess.Popen) -> None:
    """Kill the program's process group, then reap it without waiting on stray pipes."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.communicate(timeout=DRAIN_SECONDS)
    except subprocess.TimeoutExpired:  # something left the group and holds a pipe: leave it
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
        proc.wait()


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")
