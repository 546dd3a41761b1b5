"""Typed, strict reading of one mapping of the YAML configuration.

Each section of the config is read through a `Section`: every getter checks the
type and the range, and `done()` rejects keys nobody asked for. A typo in the
config is then an error naming the file, the key and the value, never a silent
default.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable, Mapping, TypeVar

from plugin.errors import ConfigError, InputError

T = TypeVar("T")
_MISSING = object()


class Section:
    """One mapping of the config, with the dotted path that leads to it."""

    def __init__(self, source: str, data: Any, path: str = "") -> None:
        self.source = source
        self.path = path
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise self.error(path or "(top level)", data, "must be a mapping of keys to values")
        self.data: Mapping[str, Any] = data
        self.read: set[str] = set()  # the keys a getter asked for

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, key: str, value: Any, why: str) -> ConfigError:
        return ConfigError(
            f"config {self.source}: key '{key}' = {value!r} {why}",
            "fix the file or remove the key to take the default",
        )

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        self.read.add(name)
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise ConfigError(f"config {self.source}: key '{self.key(name)}' is required")
        return default

    def has(self, name: str) -> bool:
        return name in self.data

    def typed(self, name: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
        value = self.raw(name, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind):
            raise self.error(self.key(name), value, f"must be {_kind_name(kind)}")
        if not isinstance(value, kind):
            raise self.error(self.key(name), value, f"must be {_kind_name(kind)}")
        return value

    def string(self, name: str, default: Any = _MISSING) -> str:
        return self.typed(name, str, default)

    def boolean(self, name: str, default: Any = _MISSING) -> bool:
        return self.typed(name, bool, default)

    def integer(self, name: str, default: Any = _MISSING, lo: int | None = None,
                hi: int | None = None) -> int:
        value = self.typed(name, int, default)
        if value is not None and ((lo is not None and value < lo) or (hi is not None and value > hi)):
            raise self.error(self.key(name), value, f"must be between {lo} and {hi}")
        return value

    def number(self, name: str, default: Any = _MISSING, lo: float = 0.0) -> float:
        value = self.typed(name, (int, float), default)
        if value is not None and not math.isfinite(value):
            raise self.error(self.key(name), value, "must be a finite number")
        if value is not None and value <= lo:
            raise self.error(self.key(name), value, f"must be greater than {lo}")
        return float(value) if value is not None else value

    def absolute_path(self, name: str, default: Any = _MISSING) -> str:
        """An absolute path: a relative one would depend on the caller's working directory."""
        value = self.string(name, default)
        if not value.startswith("/") or "\0" in value:
            raise self.error(self.key(name), value, "must be an absolute path")
        return value

    def program(self, name: str, default: Any = _MISSING) -> str:
        """An absolute path, or a bare name looked up on the PATH."""
        value = self.string(name, default)
        if not value or "\0" in value or ("/" in value and not value.startswith("/")):
            raise self.error(self.key(name), value,
                             "must be an absolute path or a name looked up on the PATH")
        return value

    def choice(self, name: str, choices: Iterable[str], default: Any = _MISSING) -> str:
        value = self.string(name, default)
        options = tuple(choices)
        if value not in options:
            raise self.error(self.key(name), value, f"must be one of {', '.join(options)}")
        return value

    def section(self, name: str) -> "Section":
        return Section(self.source, self.raw(name, {}), self.key(name))

    def sections(self, name: str) -> list["Section"]:
        """A list of mappings, each read as its own section."""
        items = self.typed(name, list, [])
        return [Section(self.source, item, f"{self.key(name)}[{i}]") for i, item in enumerate(items)]

    def convert(self, name: str, parse: Callable[[Any], T], what: str, default: Any = _MISSING) -> T:
        """Read a value through `parse`; its rejection becomes a ConfigError."""
        value = self.raw(name, default)
        if value is default and default is not _MISSING:
            return value
        try:
            return parse(value)
        except (ValueError, TypeError, re.error) as exc:
            raise self.error(self.key(name), value, f"is not {what} ({exc})") from None
        except InputError as exc:
            raise self.error(self.key(name), value, f"is not {what} ({exc.message})") from None

    def done(self) -> None:
        """Reject keys that no getter asked for: they are typos or unsupported."""
        unknown = sorted(set(map(str, self.data)) - self.read)
        if unknown:
            name = unknown[0]
            raise ConfigError(
                f"config {self.source}: unknown key '{self.key(name)}'",
                "check its spelling against config.yaml in the documentation",
            )


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", bool: "true or false", int: "an integer", float: "a number",
             list: "a list", dict: "a mapping"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))
