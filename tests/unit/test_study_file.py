"""A closed SQLite study is one file: what the sweep wrote is in ``<name>.db`` itself,
not left in its write-ahead log, so that the file alone can be copied and opened."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
from optuna.trial import TrialState

from sweeper.clock import VirtualClock
from sweeper.types import StopReason
from tests.unit.test_scheduler import FakeBackend, make_scheduler


async def test_a_finished_sweeps_database_file_alone_holds_every_trial(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    clock = VirtualClock()
    scheduler, study, _ = make_scheduler(
        tmp_path, FakeBackend(clock), clock, f"sqlite:///{db}", max_trials=6, max_parallel=2
    )
    assert (await scheduler.run()).stop_reason == StopReason.BUDGET
    assert db.with_name("study.db-wal").exists()  # where the sweep's commits went first
    study.close()
    study.close()  # a second close does nothing more
    assert not db.with_name("study.db-wal").exists()
    assert not db.with_name("study.db-shm").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(db, elsewhere / "copy.db")  # the file alone, as a user would share it
    trials = optuna.load_study(study_name="quad", storage=f"sqlite:///{elsewhere}/copy.db").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
