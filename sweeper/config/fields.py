"""Checks of single space-file values: the building blocks every section's parser uses.

Each raises :class:`~sweeper.errors.ConfigError` naming the key path it was given.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import reprlib
from collections.abc import Callable
from typing import Any, TypeVar

from sweeper.errors import ConfigError

T = TypeVar("T")
MISSING: Any = object()


def keys_of(cls: Any, *excluded: str) -> set[str]:
    """The space-file keys of a section: its dataclass's fields."""
    return {f.name for f in dataclasses.fields(cls)} - set(excluded)


def mapping(raw: object, path: str, known: set[str]) -> dict[str, Any]:
    """Check that ``raw`` is a mapping whose keys are all known; suggest the closest."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'the file'}: expected a mapping, got {kind_of(raw)}")
    for key in raw:
        if str(key) not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key{hint}")
    return raw


def get(sec: dict[str, Any], key: str, path: str, kind: type[T], default: Any = MISSING) -> T:
    """Fetch ``sec[key]`` as ``kind``; ``None`` or absence gives ``default`` if there is one."""
    where = f"{path}.{key}" if path else key
    value = sec.get(key)
    if value is None:
        if default is MISSING:
            raise ConfigError(f"{where}: required key is missing")
        return default  # type: ignore[no-any-return]
    ok: dict[type, Callable[[Any], bool]] = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        dict: lambda v: isinstance(v, dict),
        list: lambda v: isinstance(v, list),
    }
    if not ok[kind](value):
        raise ConfigError(
            f"{where}: expected {WORDS[kind][0]}, got {kind_of(value)} {shown(value)}"
        )
    if kind is int:
        integer(value, where)
    if kind is float:
        return finite(value, where)  # type: ignore[return-value]
    return value  # type: ignore[no-any-return]


INT_RANGE = (-(2**63), 2**63 - 1)  # what SQLite and numpy store


def integer(value: int, where: str) -> int:
    """``value`` if it fits in 64 bits (SQLite's and numpy's integers), else a ConfigError."""
    if not INT_RANGE[0] <= value <= INT_RANGE[1]:
        raise ConfigError(f"{where}: {value} is out of range (a 64-bit integer)")
    return value


def finite(value: float, where: str) -> float:
    """``value`` as a float if it is finite (YAML's ``.inf`` and ``.nan`` are not)."""
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{where}: expected a finite number, got {value}")
    return number


_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 60, 60


def shown(value: object) -> str:
    """``repr(value)`` cut short: a message quotes a value, never a whole document."""
    return _REPR.repr(value)


def shown_path(path: object, keep: int = 200) -> str:
    """``repr`` of a path, its middle cut out past ``keep`` characters (its start and its
    file name are what a reader needs)."""
    text = str(path)
    if len(text) > keep:
        text = f"{text[: keep // 2]}...{text[-keep // 2 :]}"
    return repr(text)


# type -> (how an expected value is named, how a value found is named)
WORDS: dict[type, tuple[str, str]] = {
    bool: ("true or false", "boolean"),
    int: ("an integer", "integer"),
    float: ("a number", "number"),
    str: ("a string", "string"),
    dict: ("a mapping", "mapping"),
    list: ("a list", "list"),
    type(None): ("nothing", "nothing"),
}


def kind_of(value: object) -> str:
    return WORDS.get(type(value), ("", type(value).__name__))[1]


def one_of(value: str, allowed: Any, where: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}: {shown(value)} is not one of {', '.join(allowed)}")


def reject_keys(sec: dict[str, Any], path: str, keys: tuple[str, ...], what: str) -> None:
    for key in keys:
        if key in sec:
            raise ConfigError(f"{path}.{key}: does not apply to {what}")


def scalars(raw: dict[str, Any], path: str) -> dict[str, Any]:
    """``raw`` with string keys and string, finite number or boolean values."""
    for key, value in raw.items():
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"{path}.{key}: expected a string, number or boolean")
        if isinstance(value, float):
            finite(value, f"{path}.{key}")
        elif isinstance(value, int) and not isinstance(value, bool):
            integer(value, f"{path}.{key}")
    return {str(k): v for k, v in raw.items()}


def strings(raw: dict[str, Any], path: str) -> dict[str, str]:
    for key, value in raw.items():
        if not isinstance(value, str):
            raise ConfigError(f"{path}.{key}: expected a string, got {kind_of(value)}")
    return {str(k): v for k, v in raw.items()}
