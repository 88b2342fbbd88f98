"""Typed access to a policy file's values, with errors that name the file and the line.

A :class:`Source` is one YAML file as read (:mod:`exchanged.policy.yamlsafe`):
its data, and the line of each value by its path of keys and indexes. A
:class:`Reader` reads one mapping of it the way a schema would: every key
known, every value of the right type, and an error that points at the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from exchanged.errors import PolicyError

#: where a value sits in a file: its keys and list indexes from the top
Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Source:
    """One YAML file: its data, and where each value sits."""

    name: str
    data: Any
    lines: Mapping[Path_, int]
    sha256: str

    def line(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def error(self, path: Path_, message: str) -> PolicyError:
        where = ".".join(str(p) for p in path)
        text = f"{where}: {message}" if where else message
        return PolicyError(text, self.name, self.line(path))


class Reader:
    """Reads one mapping of a source, checking keys and types."""

    def __init__(self, source: Source, path: Path_, value: Any, known: tuple[str, ...]) -> None:
        if not isinstance(value, dict):
            raise source.error(path, "must be a mapping")
        self.source = source
        self.path = path
        self.value = value
        for key in value:
            if not isinstance(key, str) or key not in known:
                raise source.error(
                    path + (str(key),), f"unknown key (known here: {', '.join(known)})"
                )

    def has(self, key: str) -> bool:
        return key in self.value

    def sub(self, key: str, known: tuple[str, ...]) -> Reader:
        if key not in self.value:
            raise self.source.error(self.path, f"{key} is missing")
        return Reader(self.source, self.path + (key,), self.value[key], known)

    def optional_sub(self, key: str, known: tuple[str, ...]) -> Reader | None:
        return self.sub(key, known) if key in self.value else None

    def text(self, key: str, *, required: bool = True, default: str = "") -> str:
        if key not in self.value or self.value[key] is None:
            if required:
                raise self.source.error(self.path, f"{key} is missing")
            return default
        v = self.value[key]
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise self.source.error(self.path + (key,), "must be text")
        return str(v).strip()

    def integer(self, key: str, *, required: bool = False, default: int | None = None,
                minimum: int = 1) -> int | None:
        if key not in self.value:
            if required:
                raise self.source.error(self.path, f"{key} is missing")
            return default
        v = self.value[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise self.source.error(
                self.path + (key,), f"must be a whole number of at least {minimum}"
            )
        return v

    def boolean(self, key: str, default: bool = False) -> bool:
        if key not in self.value:
            return default
        v = self.value[key]
        if not isinstance(v, bool):
            raise self.source.error(self.path + (key,), "must be true or false")
        return v

    def day(self, key: str, *, required: bool = True) -> date | None:
        if key not in self.value:
            if required:
                raise self.source.error(self.path, f"{key} is missing")
            return None
        v = self.value[key]
        if isinstance(v, date):
            return v
        if isinstance(v, str):
            try:
                return date.fromisoformat(v.strip())
            except ValueError:
                pass
        raise self.source.error(self.path + (key,), "must be a real date written YYYY-MM-DD")

    def texts(self, key: str) -> tuple[str, ...]:
        if key not in self.value:
            return ()
        v = self.value[key]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.source.error(self.path + (key,), "must be a list of names")
        return tuple(x.strip() for x in v)

    def mapping(self, key: str) -> dict[str, Any]:
        v = self.value.get(key)
        if not isinstance(v, dict) or not v:
            raise self.source.error(self.path + (key,), "must be a non-empty mapping")
        return v

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(key, required=False, default=default)
        if value not in choices:
            raise self.source.error(self.path + (key,), f"must be one of {', '.join(choices)}")
        return value
