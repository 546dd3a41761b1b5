"""A validated config remembered between calls: an unchanged file is not parsed again.

The kubelet calls `status` for every pod on every sync. Importing PyYAML,
parsing config.yaml and validating it cost several times the interpreter's own
start, for a call that then reads one small file. So once a call has read and
validated the file, what PyYAML returned and the few facts `status` needs are
kept in RUNTIME_DIR (a tmpfs: empty after a reboot), in an entry named after the
file's path. A later call uses the entry only while the file is the very one
that was read (device, inode, size, mtime and ctime: an edit, a replacement, a
chmod or a chown each change one) and still passes the ownership rules of
`plugin.config.files`; the entry must be ours and readable by nobody else, in a
folder only we may write: it is trusted exactly as much as the file it stands
for. Anything else, and the call parses the file as before.

Standard library only, and not `json` on the way in: the `status` fast path imports this.
"""

from __future__ import annotations

import os
import time

from plugin import jsontext
from plugin.config import files
from plugin.errors import ConfigError

TYPE_CHECKING = False  # typing's own costs an import that status does not otherwise pay
if TYPE_CHECKING:
    from typing import Any

    from plugin.config.schema import Config

RUNTIME_DIR = "/run/vlanpipe"
FORMAT = 1  # bumped whenever an entry's content changes meaning
PREFIX, DEFAULTS = "config-", "(built-in defaults)"


def facts(config: Config) -> dict[str, Any]:
    """What `status` needs of the config, so that it can answer without the rest."""
    return {"state_dir": config.state_dir, "report": config.status_report,
            "debug": config.debug}


def entry_path(config_path: str | None) -> str:
    """The entry of one config file: its absolute path with '/' escaped (and '%' first,
    so no two paths share a name); built-in defaults have one too."""
    if config_path is None:
        return os.path.join(RUNTIME_DIR, f"{PREFIX}built-in-defaults.json")
    name = os.path.abspath(config_path).replace("%", "%25").replace("/", "%2F")
    return os.path.join(RUNTIME_DIR, f"{PREFIX}{name}.json")


def identity(config_path: str | None, st: os.stat_result | None = None) -> list[int]:
    """What tells the file apart from any later version of it; ConfigError if the file
    or its folder breaks the ownership rules, OSError if it cannot be reached."""
    if config_path is None:
        return []
    st = st or os.stat(config_path)
    files.check_config(config_path, st)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def recall(config_path: str | None) -> dict[str, Any] | None:
    """The entry ({"facts", "data"}) if it stands for the file as it is now, else None."""
    try:
        current = identity(config_path)
        files.check_private_dir(RUNTIME_DIR, "runtime directory")
        with open(entry_path(config_path), encoding="utf-8") as handle:
            st = os.fstat(handle.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o077:
                return None
            entry = jsontext.loads(handle.read())
    except (OSError, ValueError, ConfigError):
        return None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT \
            or entry.get("identity") != current or not isinstance(entry.get("facts"), dict) \
            or "data" not in entry:
        return None
    return entry


def remember(config_path: str | None, read_as: list[int], data: Any, config: Config) -> None:
    """Keep the entry of a file just read (`read_as`: its identity then) and validated.

    Best effort: where the entry cannot be written (a read-only /run, data JSON would
    change, such as integer keys), later calls parse the file, as before.
    """
    import json  # here, not at the top: the status path only reads (plugin.jsontext)

    try:
        if json.loads(json.dumps(data)) != data:
            return
        body = json.dumps({"format": FORMAT, "config": config_path or DEFAULTS,
                           "identity": read_as, "facts": facts(config), "data": data})
    except (TypeError, ValueError):
        return
    target = entry_path(config_path)
    tmp = os.path.join(RUNTIME_DIR, f".tmp-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.makedirs(RUNTIME_DIR, mode=0o700, exist_ok=True)
        files.check_private_dir(RUNTIME_DIR, "runtime directory")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
        os.replace(tmp, target)
    except (OSError, ConfigError):
        try:
            os.unlink(tmp)
        except OSError:
            pass

