"""The few file operations the disk store is built from, each atomic on its own.

Readers never take the lock, so a file they read must appear whole or not at
all. A record is written once to a temp file, then hard-linked into place:
link() fails with EEXIST like an O_EXCL create, but only ever exposes a fully
written file, and a second link (the owner index) costs a directory entry, not
a new file. Temp names are fixed: only the holder of the store's lock writes
them, and a crash leaves nothing that the next write does not replace.
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


def read_with_inode(path: str) -> tuple[bytes, int] | None:
    """The file's content and inode number, or None if it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read(), os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return None


def read_bytes(path: str) -> bytes | None:
    found = read_with_inode(path)
    return found[0] if found else None


def inode(path: str) -> int | None:
    try:
        return os.lstat(path).st_ino
    except FileNotFoundError:
        return None


def write_new(path: str, data: bytes) -> None:
    """A new file (a new inode) holding `data`, replacing any file of that name."""
    remove(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def overwrite(path: str, data: bytes) -> None:
    """Rewrite in place: for files read only under the lock (no new inode, no rename)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, data)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def link_exclusive(source: str, path: str) -> bool:
    """Give `source`'s file the name `path` unless that name exists; False if it did."""
    try:
        os.link(source, path)
    except FileExistsError:
        return False
    return True


def link_replace(source: str, path: str) -> None:
    """Give `source`'s file the name `path`, atomically replacing what was there."""
    temp = path + ".tmp"
    remove(temp)
    os.link(source, temp)
    os.replace(temp, path)


def remove(path: str) -> bool:
    """Delete `path`; False if it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
