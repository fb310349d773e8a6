"""A database a sweep creates gets Optuna's schema stamp after start-up, not during it;
one left without it (a sweep killed in its first seconds) gets it from the next open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna

from sweeper.study.storage import open_storage, stamp_schema


def stamps(db: Path) -> list[str]:
    """The Alembic revisions recorded in ``db`` (none if it has no such table yet)."""
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "alembic_version" not in tables:
            return []
        return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]


def optuna_head(tmp_path: Path) -> str:
    """The revision Optuna itself stamps a new database with."""
    head: str = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}").get_head_version()
    return head


def test_a_new_database_is_stamped_when_asked_and_then_opens_as_optunas_own(
    tmp_path: Path,
) -> None:
    db = tmp_path / "study.db"
    rdb = open_storage(f"sqlite:///{db}")
    optuna.create_study(storage=rdb, study_name="s").ask()
    assert stamps(db) == []  # deferred: not part of start-up
    stamp_schema(rdb)
    stamp_schema(rdb)  # once is enough; again changes nothing
    assert stamps(db) == [optuna_head(tmp_path)]
    theirs = optuna.storages.RDBStorage(f"sqlite:///{db}")  # Optuna's schema check passes
    assert theirs.get_current_version() == theirs.get_head_version()
    assert len(optuna.load_study(study_name="s", storage=theirs).trials) == 1


def test_a_database_left_unstamped_gets_its_stamp_from_the_next_open(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    optuna.create_study(storage=open_storage(f"sqlite:///{db}"), study_name="s").ask()
    assert stamps(db) == []  # its sweep was killed before it settled
    again = open_storage(f"sqlite:///{db}")  # a resume: an existing file, checked
    assert stamps(db) == [optuna_head(tmp_path)]
    assert len(optuna.load_study(study_name="s", storage=again).trials) == 1
    stamp_schema(again)  # nothing was deferred for it
    assert stamps(db) == [optuna_head(tmp_path)]


def test_only_a_file_this_call_creates_is_left_unstamped(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    optuna.storages.RDBStorage(f"sqlite:///{db}")  # made (and stamped) by Optuna
    open_storage(f"sqlite:///{db}")
    assert stamps(db) == [optuna_head(tmp_path)]
    assert open_storage("") is None  # in memory: nothing to stamp
