"""A running trial's user attributes written in one transaction read back as Optuna's."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from sweeper.study.storage import open_storage
from sweeper.study.user_attrs import set_user_attrs

ATTRS = {"job_name": "quad-1-a1", "attempt": 2, "final": {"loss": 0.5}, "none": None}


def test_attrs_written_at_once_read_back_as_optuna_writes_them(tmp_path: Path) -> None:
    rdb = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(storage=rdb, study_name="s")
    ours, theirs = study.ask(), study.ask()
    set_user_attrs(ours, ATTRS, rdb)
    set_user_attrs(ours, {"attempt": 3, "owner": "me"}, rdb)  # an update, and a new key
    for key, value in {**ATTRS, "attempt": 3, "owner": "me"}.items():
        theirs.set_user_attr(key, value)
    trials = study.get_trials(deepcopy=False)
    assert trials[0].user_attrs == trials[1].user_attrs == {**ATTRS, "attempt": 3, "owner": "me"}


def test_a_finished_trial_is_refused_as_optuna_refuses_it_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    rdb = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(storage=rdb, study_name="s")
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        set_user_attrs(trial, ATTRS, rdb)
    assert study.get_trials(deepcopy=False)[0].user_attrs == {}
