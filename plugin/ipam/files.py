"""The few file operations the disk store is built from, each atomic on its own.

Readers never take the lock, so every file must appear whole or not at all:
small files are written to a temp name and renamed over; address records are
linked into place, which fails with EEXIST like an O_EXCL create but only ever
exposes a fully written file. The temp names are fixed: only the holder of the
store's lock writes them, and a crash leaves nothing a later write won't reuse.
"""

from __future__ import annotations

import os

FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_dir(path: str) -> None:
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass


def read_bytes(path: str) -> bytes | None:
    """The file's content, or None if it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write_new(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def replace_file(path: str, data: bytes) -> None:
    """Write `path` so that readers see the old content or the new, never a mix."""
    temp = path + ".tmp"
    _write_new(temp, data)
    os.replace(temp, path)


def create_exclusive(path: str, data: bytes, temp: str) -> bool:
    """Create `path` holding `data` unless it exists; False if it did.

    `temp` is where the content is written first (same file system as `path`).
    """
    _write_new(temp, data)
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(temp)
    return True


def remove(path: str) -> bool:
    """Delete `path`; False if it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
