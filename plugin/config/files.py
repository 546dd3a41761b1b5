"""Where the node's configuration comes from, and which files and folders the plugin trusts.

Search order, for both front-ends (a CNI runtime passes no flags): `--config
PATH` (exec only), then `$VLANPIPE_CONFIG`, then `/etc/vlanpipe/config.yaml`,
then `config.yaml` beside the executable; with none of them, the built-in
defaults (the same values as the documented config.yaml). A path there that
exists as a symlink is the operator's config even when its target is missing or
cannot be read: loading it fails naming it, never falls back to the defaults.

The plugin runs as root and its config chooses what runs and where it
writes, so a config file, its folder and the state directory must belong to
the user the plugin runs as and be writable by nobody else; a symlink where a
directory is expected is refused (it could be pointed anywhere later).

Standard library only: `status` finds its config through this module on every
pod sync (`plugin.config.loader` parses and validates).
"""

from __future__ import annotations

import os
import stat

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
        if os.path.lexists(candidate):  # a link that leads nowhere is an error, not "absent"
            return candidate
    return None


def check_config(path: str, st: os.stat_result) -> None:
    """The config file (`st` is its stat) and its folder are ours and nobody else's."""
    check_owner(path, st, "config", "chown root:root")
    folder = os.path.dirname(os.path.abspath(path))
    check_owner(folder, os.stat(folder), "config directory", "chown root:root")


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
    check_owner(path, st, what, "chown -R root:root")


def check_owner(path: str, st: os.stat_result, what: str, chown: str) -> None:
    """Owned by the user the plugin runs as, writable by no one else."""
    me = os.geteuid()
    if st.st_uid != me:
        raise ConfigError(f"{what} {path} belongs to uid {st.st_uid}, not to uid {me} that "
                          "runs the plugin", f"run {chown} {path} (and chmod go-w)")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"{what} {path} is writable by users other than its owner",
                          f"run chmod go-w {path}")
