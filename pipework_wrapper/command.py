"""Running one external program through plumbum, with a bound and a clear error.

Every host-changing command of the plugin goes through `run`: argv lists only
(plumbum never involves a shell), a timeout so a hung daemon cannot block the
kubelet forever, and failures turned into ToolFailed naming the command.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

from plumbum import local
from plumbum.commands.processes import CommandNotFound, ProcessTimedOut

from pipework_wrapper.errors import ToolFailed
from pipework_wrapper.timing import timed

log = logging.getLogger("vlanpipe.command")


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr joined, for messages: tools print errors on either."""
        return " ".join(f"{self.stdout} {self.stderr}".split())


def run(program: str, args: Sequence[str], timeout: float, ok: Sequence[int] = (0,),
        hint: str = "", env: Mapping[str, str] | None = None) -> Result:
    """Run `program args...` (with `env` added to the environment); raise ToolFailed
    unless its exit code is in `ok`."""
    try:
        command = local[program]
    except CommandNotFound:
        raise ToolFailed(f"{program} not found on PATH",
                           hint or f"install {program} or put it on the PATH") from None
    if env:
        command = command.with_env(**env)
    started = time.monotonic()
    try:
        with timed(os.path.basename(program)):
            code, out, err = command.run(list(args), retcode=None, timeout=timeout)
    except ProcessTimedOut:
        raise ToolFailed(f"{program} did not finish within {timeout:g}s",
                           hint or f"check that the service behind {program} is running") from None
    result = Result((program, *args), code, out, err)
    log.debug("ran %s -> %d in %.1f ms: %s", " ".join(result.argv), code,
              (time.monotonic() - started) * 1000, result.output[:500])
    if code not in ok:
        raise ToolFailed(f"{program} {' '.join(args[:3])}... failed (exit {code}): "
                           f"{result.output[:300] or 'no output'}", hint)
    return result
