"""Reading a space file into a YAML document, within bounds whatever the file holds.

A space file is a few kilobytes of YAML written by a person. What is not is refused with
one :class:`~sweeper.errors.ConfigError` before it can cost time or memory: anything but
a regular file (a FIFO, ``/dev/zero``), more than :data:`MAX_BYTES`, bytes that are not
UTF-8, nesting deeper than :data:`MAX_DEPTH`, and a document that YAML aliases expand to
more than :data:`MAX_NODES` values (a "billion laughs" file is a few hundred bytes that
expand to billions). Aliases themselves are fine within that bound.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from sweeper.errors import ConfigError

MAX_BYTES = 128 * 1024
MAX_DEPTH = 50
MAX_NODES = 100_000

# libyaml's parser when PyYAML has it (its wheels do): five times as fast, and not
# recursive in Python.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def document(path: Path) -> object:
    """The YAML document in ``path`` (plain Python values), or a ConfigError naming it."""
    text = _text(path)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, path)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = text[: exc.position].count("\n") + 1
        raise ConfigError(
            f"{path}:{line}: invalid YAML: character {exc.character!r} is not allowed"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()


def _text(path: Path) -> str:
    """The file's text: a regular file of at most MAX_BYTES of UTF-8."""
    try:
        with path.open("rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ConfigError(f"{path}: not a regular file")
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read space file: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES // 1024} KiB; not a space file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def _check_size(root: yaml.Node, path: Path) -> None:
    """Refuse a document nested deeper than MAX_DEPTH, or whose aliases expand it past
    MAX_NODES values. Each node's expanded size is counted once (aliases share nodes),
    so this costs time linear in the file, not in its expansion."""
    sizes: dict[int, int] = {}
    # Iterative post-order walk: (node, depth, children done)
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"{path}: nested more than {MAX_DEPTH} levels deep")
        if id(node) in sizes:
            continue
        children = _children(node)
        if done or not children:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > MAX_NODES:
                raise ConfigError(
                    f"{path}: expands to more than {MAX_NODES:,} values (through YAML"
                    " aliases?); not a space file"
                )
            continue
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if id(c) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
