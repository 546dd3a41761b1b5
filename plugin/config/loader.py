"""Where the node's configuration comes from, and which files and folders the plugin trusts.

Search order, for both front-ends (a CNI runtime passes no flags): `--config
PATH` (exec only), then `$VLANPIPE_CONFIG`, then `/etc/vlanpipe/config.yaml`,
then `config.yaml` beside the executable; with none of them, the built-in
defaults (the same values as the documented config.yaml).

The plugin runs as root and its config chooses what runs and where it
writes, so a config file, its folder and the state directory must belong to
the user the plugin runs as and be writable by nobody else; a symlink where a
directory is expected is refused (it could be pointed anywhere later).
"""

from __future__ import annotations

import os
import stat
from typing import Any

from plugin.config.schema import Config, parse
from plugin.errors import ConfigError

ENV_VAR = "VLANPIPE_CONFIG"
SYSTEM_PATH = "/etc/vlanpipe/config.yaml"


def find(explicit: str | None, executable: str) -> str | None:
    """The first config file in the documented search order, or None for defaults."""
    if explicit:
        return explicit
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return from_env
    beside = os.path.join(os.path.dirname(os.path.abspath(executable)), "config.yaml")
    for candidate in (SYSTEM_PATH, beside):
        if os.path.exists(candidate):
            return candidate
    return None


def load(path: str | None) -> Config:
    if path is None:
        return parse({}, "(built-in defaults)")
    return parse(_read_yaml(path), path)


def check_private_dir(path: str, what: str) -> None:
    """`path`, if it exists, is a real directory of ours that nobody else may write."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(f"{what} {path} is a symlink", f"point {what} at the real directory")
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{what} {path} is not a directory", f"remove it or change {what}")
    _check_owner(path, st, what, "chown -R root:root")


def _read_yaml(path: str) -> Any:
    import yaml

    try:
        with open(path, "rb") as handle:
            _check_owner(path, os.fstat(handle.fileno()), "config", "chown root:root")
            folder = os.path.dirname(os.path.abspath(path))
            _check_owner(folder, os.stat(folder), "config directory", "chown root:root")
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"config {path}: cannot be read ({exc.strerror})",
                          "check the path given by --config or $VLANPIPE_CONFIG") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config {path}: not valid YAML{where}",
                          "fix the syntax (indentation, quotes, colons)") from None


def _check_owner(path: str, st: os.stat_result, what: str, chown: str) -> None:
    """Owned by the user the plugin runs as, writable by no one else."""
    me = os.geteuid()
    if st.st_uid != me:
        raise ConfigError(f"{what} {path} belongs to uid {st.st_uid}, not to uid {me} that "
                          "runs the plugin", f"run {chown} {path} (and chmod go-w)")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"{what} {path} is writable by users other than its owner",
                          f"run chmod go-w {path}")
