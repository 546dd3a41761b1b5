"""One structured line per plugin call, appended to the log file.

The kubelet shows plugin output only at high verbosity, so this file is how an
operator sees what happened: time, command, pod, infra id, VLAN, address,
port, duration, where the time went (start-up, config, and each outside party:
ovs-vsctl, pipework, ip, Docker, etcd) and the outcome, as one JSON object per line.
Logging never fails a call, and never writes to stdout or stderr (status must
print nothing else, and the kubelet reads both streams as one): warnings of any
module (an unreadable lease, say) land in the call's line, under `warnings`.

The file is opened by name for every line, so logrotate can move it away at any
time (no copytruncate needed): the next call creates a new one.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from pipework_wrapper import timing


class CallLog:
    def __init__(self, path: str, command: str, debug: bool = False,
                 started: float | None = None) -> None:
        self.path = path
        self.started = time.monotonic() if started is None else started
        self.fields: dict[str, Any] = {"command": command}
        self.phases: dict[str, float] = {}
        self.warnings: list[str] = []
        root = logging.getLogger()
        for handler in [h for h in root.handlers if isinstance(h, _Collector)]:
            root.removeHandler(handler)  # one call's log at a time
        root.addHandler(_Collector(self))
        root.setLevel(logging.WARNING)
        if debug:
            self._enable_debug()

    def set(self, **fields: Any) -> None:
        self.fields.update({k: v for k, v in fields.items() if v not in (None, "")})

    def warn(self, text: str) -> None:
        """Something the operator should know that did not fail the call."""
        self.warnings.append(text)

    def write(self, outcome: str, error: str = "", startup_ms: float | None = None) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **self.fields,
                  "duration_ms": round((time.monotonic() - self.started) * 1000, 2),
                  "outcome": outcome}
        if startup_ms is not None:
            self.phases = {"startup": round(startup_ms, 2), **self.phases}
        self.phases.update(timing.spent_ms)
        if self.phases:
            record["phases_ms"] = self.phases
        if self.warnings:
            record["warnings"] = self.warnings
        if error:
            record["error"] = error
        self._append(json.dumps(record, sort_keys=False))

    def _append(self, line: str) -> None:
        try:
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o755, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        except OSError:
            pass

    def _enable_debug(self) -> None:
        """Debug detail (every command run, its output) goes to the same file."""
        try:
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o755, exist_ok=True)
            handler = logging.FileHandler(self.path)
        except OSError:
            return
        handler.setFormatter(logging.Formatter("%(asctime)s debug %(name)s: %(message)s"))
        handler.setLevel(logging.DEBUG)
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)


class _Collector(logging.Handler):
    """Warnings of every module, into the call's log line: never onto stderr."""

    def __init__(self, log: CallLog) -> None:
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log.warn(f"{record.name}: {record.getMessage()}")
