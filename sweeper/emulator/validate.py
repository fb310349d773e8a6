"""Request validation against botocore's own service model, with AWS's messages.

botocore checks only required members, types and minimums on the client side;
SageMaker also enforces maximums, patterns and enums. This module checks all of them
the way the service does and words the failures as AWS does::

    1 validation error detected: Value 'a_b' at 'trainingJobName' failed to satisfy
    constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}
"""

from __future__ import annotations

import functools
import re
from typing import Any

from botocore.model import Shape, StructureShape

from sweeper.emulator.errors import AwsError, validation

# Java character classes that Python's re lacks, as class-safe near equivalents
# (``\w`` also admits digits and ``_``: slightly more permissive than AWS, never less).
_JAVA_CLASSES = {r"\p{L}": r"\w", r"\p{N}": r"\d", r"\p{Z}": r"\s", r"\p{M}": r"\w"}


def check(shape: StructureShape, params: dict[str, Any]) -> None:
    """Raise ValidationException listing every violation in ``params``; else return."""
    errors: list[str] = []
    _structure(shape, params, "", errors)
    if errors:
        n = len(errors)
        noun = "error" if n == 1 else "errors"
        raise validation(f"{n} validation {noun} detected: " + "; ".join(errors))


def _path(parent: str, member: str) -> str:
    name = member[:1].lower() + member[1:]
    return f"{parent}.{name}" if parent else name


def _render(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return f"'{value}'"


def _structure(shape: StructureShape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        raise AwsError("SerializationException", f"Expected an object at '{path or 'request'}'")
    for name in shape.required_members:
        if value.get(name) is None:
            errors.append(
                f"Value null at '{_path(path, name)}' failed to satisfy constraint: "
                "Member must not be null"
            )
    for name, member in shape.members.items():
        if value.get(name) is not None:
            _value(member, value[name], _path(path, name), errors)


def _value(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        _structure(shape, value, path, errors)
        return
    if not _type_ok(kind, value):
        raise AwsError("SerializationException", f"Unexpected value type at '{path}'")
    for message in _constraints(shape, value):
        errors.append(f"Value {_render(value)} at '{path}' failed to satisfy constraint: {message}")
    if kind == "list":
        for i, item in enumerate(value, 1):
            _value(shape.member, item, f"{path}.{i}.member", errors)
    elif kind == "map":
        for key, item in value.items():
            _value(shape.key, key, f"{path}.key", errors)
            _value(shape.value, item, f"{path}.{key}", errors)


def _type_ok(kind: str, value: Any) -> bool:
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "timestamp": lambda v: isinstance(v, int | float | str) and not isinstance(v, bool),
        "list": lambda v: isinstance(v, list),
        "map": lambda v: isinstance(v, dict),
        "blob": lambda v: isinstance(v, str),
    }
    check_fn = checks.get(kind)
    return check_fn(value) if check_fn else True


def _constraints(shape: Shape, value: Any) -> list[str]:
    meta, out = shape.metadata, []
    if shape.type_name in ("string", "list", "map", "blob"):
        size = len(value)
        if "max" in meta and size > meta["max"]:
            out.append(f"Member must have length less than or equal to {meta['max']}")
        if "min" in meta and size < meta["min"]:
            out.append(f"Member must have length greater than or equal to {meta['min']}")
    elif shape.type_name in ("integer", "long", "double", "float"):
        if "max" in meta and value > meta["max"]:
            out.append(f"Member must have value less than or equal to {meta['max']}")
        if "min" in meta and value < meta["min"]:
            out.append(f"Member must have value greater than or equal to {meta['min']}")
    if shape.type_name == "string":
        enum = meta.get("enum")
        if enum and value not in enum:
            out.append(f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = meta.get("pattern")
        compiled = _compile(pattern) if pattern else None
        if compiled is not None and compiled.fullmatch(value) is None:
            out.append(f"Member must satisfy regular expression pattern: {pattern}")
    return out


@functools.cache
def _compile(pattern: str) -> re.Pattern[str] | None:
    """The model's (Java) pattern in Python syntax; None if it cannot be expressed."""
    for java, python in _JAVA_CLASSES.items():
        pattern = pattern.replace(java, python)
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None
