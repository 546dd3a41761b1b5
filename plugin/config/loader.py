"""Reading and validating the node's configuration (where it is found, and which files
are trusted: `plugin.config.files`).

A file unchanged since a call validated it is not parsed again: its data comes
from `plugin.config.cache` and only the validation runs.
"""

from __future__ import annotations

import os
from typing import Any

from plugin.config import cache
from plugin.config.schema import Config, parse
from plugin.errors import ConfigError


def load(path: str | None) -> Config:
    entry = cache.recall(path)
    if entry is not None:
        return parse(entry["data"], path or cache.DEFAULTS)
    data, read_as = _read_yaml(path) if path else ({}, [])
    config = parse(data, path or cache.DEFAULTS)
    cache.remember(path, read_as, data, config)
    return config


def _read_yaml(path: str) -> tuple[Any, list[int]]:
    """The file's data, and its identity as read (see `cache.identity`)."""
    import yaml

    try:
        with open(path, "rb") as handle:
            read_as = cache.identity(path, os.fstat(handle.fileno()))
            text = handle.read()
    except OSError as exc:
        link = f"; it is a symlink to {os.readlink(path)}" if os.path.islink(path) else ""
        raise ConfigError(f"config {path}: cannot be read ({exc.strerror}){link}",
                          "point it at the config file, or remove it (the search order is "
                          "--config, $VLANPIPE_CONFIG, /etc/vlanpipe/config.yaml, beside the "
                          "plugin)") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader), read_as
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config {path}: not valid YAML{where}",
                          "fix the syntax (indentation, quotes, colons)") from None
