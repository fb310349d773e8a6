"""Records kept one JSON file each, so that keeping a store costs what changed, not its size.

A store of many records (the Experiments of a 10 000-trial sweep: 20 000 trial
components) rewritten whole on each change would spend the emulator's loop on
serialising it. :class:`Shelves` keeps ``<root>/<kind>/<name>.json`` per record instead:
:meth:`Shelves.mark` notes a changed (or deleted) record, and :meth:`Shelves.flush`
writes just those, each atomically (a temporary file renamed over the old one).
"""

from __future__ import annotations

import json
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
                record = json.loads(path.read_text(encoding="utf-8"))
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
        for kind in {kind for kind, _ in changed}:
            (self._root / kind).mkdir(parents=True, exist_ok=True)
        for kind, name in changed:
            path = self._root / kind / _file(name)
            record = tables[kind].get(name)
            if record is None:
                path.unlink(missing_ok=True)
                continue
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record), encoding="utf-8")
            tmp.replace(path)
