"""Records kept one JSON file each, so that keeping a store costs what changed, not its size.

A store of many records (the Experiments of a 10 000-trial sweep: 20 000 trial
components) rewritten whole on each change would spend the emulator's loop on
serialising it. :class:`Shelves` keeps ``<root>/<kind>/<name>.json`` per record instead:
:meth:`Shelves.mark` notes a changed (or deleted) record, and :meth:`Shelves.flush`
writes just those, each atomically (a temporary file renamed over the old one).
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

Table = dict[str, dict[str, Any]]  # name -> record


def _file(name: str) -> str:
    """A record's file name: its name, with anything a path would read quoted."""
    return urllib.parse.quote(name, safe="") + ".json"


class Shelves:
    """The records of several kinds under ``root``. Not task-safe: one loop uses it."""

    def __init__(self, root: Path, kinds: tuple[str, ...]) -> None:
        self._root = root
        self._kinds = kinds
        self._changed: set[tuple[str, str]] = set()

    def load(self) -> dict[str, Table]:
        """Every kind's records as kept (empty tables on a new root)."""
        tables: dict[str, Table] = {kind: {} for kind in self._kinds}
        for kind, table in tables.items():
            for path in sorted((self._root / kind).glob("*.json")):
                record = read_record(path)
                if isinstance(record, dict):
                    table[urllib.parse.unquote(path.name.removesuffix(".json"))] = record
        return tables

    def mark(self, kind: str, name: str) -> None:
        """Record ``name`` of ``kind`` changed, appeared or was deleted: the next
        :meth:`flush` writes it (or removes its file)."""
        self._changed.add((kind, name))

    @property
    def dirty(self) -> bool:
        return bool(self._changed)

    def flush(self, tables: Mapping[str, Table]) -> None:
        """Write every record marked since the last flush, as ``tables`` hold it now."""
        changed, self._changed = self._changed, set()
        try:
            for kind in {kind for kind, _ in changed}:
                (self._root / kind).mkdir(parents=True, exist_ok=True)
            while changed:
                kind, name = next(iter(changed))
                path = self._root / kind / _file(name)
                record = tables[kind].get(name)
                if record is None:
                    path.unlink(missing_ok=True)
                else:
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(record), encoding="utf-8")
                    tmp.replace(path)
                changed.discard((kind, name))
        finally:  # a full disk: what is not written stays marked for the next flush
            self._changed |= changed


def read_record(path: Path) -> Any:
    """The JSON in ``path``; None when it cannot be read (cut short by a crash, edited by
    hand): the file is then kept as ``<name>.unreadable`` beside it, a line on stderr says
    so, and the emulator starts without that record."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        set_aside(path, f"{exc.__class__.__name__}: {exc}")
        return None


def set_aside(path: Path, why: str) -> None:
    """Move an unreadable record out of the way, keeping it, and say so."""
    aside = path.with_name(path.name + ".unreadable")
    path.replace(aside)
    print(f"emulator: {path} cannot be read ({why}); kept as {aside}", file=sys.stderr)
