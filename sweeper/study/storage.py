"""Optuna storage from a URL: SQLite tuned for one writer per file, or any RDB URL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna


def open_storage(url: str) -> optuna.storages.BaseStorage | None:
    """Optuna storage for ``url`` ("" means in memory).

    SQLite runs in WAL mode with ``synchronous=NORMAL``: a commit survives the
    orchestrator being killed (what resume relies on), only an OS crash may lose the
    last few, and each commit skips an fsync, which halves the cost of ask and tell.
    Optuna's schema-version check (about 0.35 s of loading migration scripts) is skipped
    only for a database file this call creates: it guards files older Optunas made.
    """
    if not url:
        return None
    if not url.startswith("sqlite:///"):
        return optuna.storages.RDBStorage(url)
    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=60, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return optuna.storages.RDBStorage(
        url, engine_kwargs={"creator": connect}, skip_compatibility_check=new
    )
