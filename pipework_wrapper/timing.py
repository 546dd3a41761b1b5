"""Where a call's time goes, by outside party: each wrapper adds its own wall time here.

The plugin is a short-lived process, so one table per process is one table per
call. The call log reports it, which keeps timing out of the code that does the
work.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

spent_ms: dict[str, float] = {}


@contextmanager
def timed(label: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        spent_ms[label] = round(spent_ms.get(label, 0.0) + (time.monotonic() - started) * 1000, 2)
