"""The report's fast trial reader returns exactly what Optuna's own loader returns."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sweeper.study.reader import count_states, read_trials
from sweeper.study.storage import open_storage


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database: a SQLite file, or one on the test PostgreSQL (its state column is
    an enum type there)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return str(request.getfixturevalue("pg_url"))


def _studies(url: str) -> tuple[optuna.storages.RDBStorage, optuna.Study]:
    """Study "s" (empty), beside another study of two trials that must not show in it."""
    storage = open_storage(url)
    assert storage is not None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=storage)
    optuna.create_study(study_name="other", storage=storage).optimize(lambda t: 1.0, n_trials=2)
    return storage, study


def test_the_reader_matches_optunas_loader_trial_for_trial(url: str) -> None:
    storage, study = _studies(url)
    for n in range(6):
        trial = study.ask()
        x = trial.suggest_float("x", 1e-3, 1.0, log=True)
        trial.suggest_int("k", 8, 64, step=8)
        trial.suggest_categorical("c", ["a", "b", None])
        trial.set_user_attr("job_name", f"s-{n}-1")
        trial.set_user_attr("final_metrics", {"loss": x})
        trial.storage.set_trial_system_attr(trial._trial_id, "sys", [n])
        for step, value in enumerate([x, math.inf, -math.inf, math.nan][: n % 5]):
            trial.report(value, step)
        if n == 0:
            study.tell(trial, math.inf)
        elif n == 1:
            study.tell(trial, state=TrialState.FAIL)
        elif n == 2:
            study.tell(trial, state=TrialState.PRUNED)
        elif n < 5:
            study.tell(trial, x)
        # trial 5 stays RUNNING
    expected = study.get_trials(deepcopy=False)
    got = read_trials(storage.engine, study._study_id)
    assert [t.number for t in got] == list(range(6))
    for mine, theirs in zip(got, expected, strict=True):
        steps = {k: v for k, v in theirs.intermediate_values.items() if not math.isnan(v)}
        assert {k: v for k, v in mine.intermediate_values.items() if not math.isnan(v)} == steps
        assert len(mine.intermediate_values) == len(theirs.intermediate_values)
        assert mine.params == theirs.params and mine.distributions == theirs.distributions
        assert mine.state == theirs.state and mine.values == theirs.values
        assert mine.user_attrs == theirs.user_attrs
        assert mine.system_attrs == theirs.system_attrs
        assert mine.datetime_start == theirs.datetime_start
        assert mine.datetime_complete == theirs.datetime_complete


def _same(mine: list[optuna.trial.FrozenTrial], theirs: list[optuna.trial.FrozenTrial]) -> None:
    assert [t._trial_id for t in mine] == [t._trial_id for t in theirs]
    for a, b in zip(mine, theirs, strict=True):
        assert (a.number, a.state, a.values) == (b.number, b.state, b.values)
        assert list(a.params.items()) == list(b.params.items())  # in the same order
        assert a.distributions == b.distributions
        assert a.user_attrs == b.user_attrs and a.system_attrs == b.system_attrs
        assert a.intermediate_values == b.intermediate_values
        assert (a.datetime_start, a.datetime_complete) == (b.datetime_start, b.datetime_complete)


def test_the_storage_reads_what_optunas_orm_reads_for_every_kind_of_query(url: str) -> None:
    """What Optuna's cache asks at each ask (the unfinished trials and those after the
    last finished one), what an uncached storage asks (by state), and a study that does
    not exist."""
    storage, study = _studies(url)
    orm = optuna.storages.RDBStorage(url, skip_compatibility_check=True)
    assert type(storage) is not optuna.storages.RDBStorage  # the Core reader is in use
    for n in range(7):
        trial = study.ask()
        trial.suggest_float("y", 0, 1)
        trial.suggest_categorical("c", ["a", "b"])
        trial.set_user_attr("n", n)
        trial.report(float(n), 0)
        if n % 3:
            study.tell(trial, float(n))
    study_id = study._study_id
    ids = [t._trial_id for t in study.get_trials(deepcopy=False)]
    queries = [
        (None, set(), -1),
        ((TrialState.RUNNING,), set(), -1),
        ((TrialState.COMPLETE, TrialState.FAIL), set(), -1),
        (None, {ids[0], ids[3]}, ids[4]),
        (None, set(), ids[2]),
        (None, {ids[0]}, -1),  # ids at or below `after` only count
    ]
    for states, included, after in queries:
        _same(
            storage._get_trials(study_id, states, included, after),
            orm._get_trials(study_id, states, included, after),
        )
    for trial_id in ids:
        _same([storage.get_trial(trial_id)], [orm.get_trial(trial_id)])
    with pytest.raises(KeyError, match="Record does not exist"):
        storage._get_trials(9999, None, set(), -1)
    with pytest.raises(KeyError, match="Record does not exist"):
        storage.get_trial(9999)


def test_a_seeded_tpe_sweep_samples_the_same_through_either_reader(tmp_path: Path) -> None:
    def sweep(storage: optuna.storages.RDBStorage) -> list[dict[str, object]]:
        sampler = optuna.samplers.TPESampler(seed=3, n_startup_trials=3)
        study = optuna.create_study(storage=storage, sampler=sampler)
        study.optimize(
            lambda t: (
                t.suggest_float("x", -1, 1) ** 2 + len(t.suggest_categorical("c", ["a", "bb"]))
            ),
            n_trials=12,
        )
        return [t.params for t in study.trials]

    fast = open_storage(f"sqlite:///{tmp_path / 'fast.db'}")
    assert fast is not None
    orm = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'orm.db'}")
    assert sweep(fast) == sweep(orm)


def test_counting_by_state_matches_the_trials(url: str) -> None:
    storage, study = _studies(url)
    states = [TrialState.COMPLETE] * 3 + [TrialState.FAIL] + [TrialState.PRUNED] * 3
    for n, state in enumerate(states):
        trial = study.ask()
        if n == 4:  # stopped by the pruner: marked; the other two were never launched
            trial.set_user_attr("pruned_at_step", 2)
        study.tell(trial, 1.0 if state == TrialState.COMPLETE else None, state=state)
    study.ask()  # RUNNING
    by_state, marked = count_states(storage.engine, study._study_id, "pruned_at_step")
    assert by_state == {
        TrialState.COMPLETE: 3,
        TrialState.FAIL: 1,
        TrialState.PRUNED: 3,
        TrialState.RUNNING: 1,
    }
    assert marked == 1
