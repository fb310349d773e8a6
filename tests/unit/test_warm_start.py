"""Warm start's pure parts: the ``warm_start:`` section, a value inside a space or clipped
into it, the parents' best first, and a cut-short apply finished without duplicates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from sweeper import config as config_mod
from sweeper.config import Param, ParamType, WarmMode
from sweeper.errors import ConfigError
from sweeper.study import warm
from sweeper.study.records import WARM_FROM
from tests.helpers import space_doc, write_sweep

LR = Param("lr", ParamType.FLOAT, 1e-4, 1e-1, log=True)
LEAVES = Param("leaves", ParamType.INT, 4, 48, step=4)
KIND = Param("kind", ParamType.CATEGORICAL, choices=("a", "b"))


def _load(tmp_path: Path, **top: Any) -> config_mod.SweepConfig:
    return config_mod.load(write_sweep(tmp_path, space_doc(**top)))


def test_a_space_file_parent_is_read_for_its_storage_and_name(tmp_path: Path) -> None:
    parent = write_sweep(tmp_path / "p", space_doc(name="older", storage="sqlite:///x.db"))
    cfg = _load(tmp_path, warm_start={"from": [str(parent), {"storage": "s", "study": "n"}]})
    assert cfg.warm_start is not None and cfg.warm_start.mode == WarmMode.IDENTICAL
    assert [(p.storage, p.study) for p in cfg.warm_start.parents] == [
        ("sqlite:///x.db", "older"),
        ("s", "n"),
    ]


@pytest.mark.parametrize(
    ("section", "said"),
    [
        ({"from": []}, "give 1 to 5 earlier sweeps"),
        ({"from": [{"storage": "s", "study": "n"}] * 2}, "names the same sweep twice"),
        ({"from": [{"storage": "s"}]}, r"warm_start\.from\[0\]\.study: required key is missing"),
        (
            {"from": [{"storage": "s", "study": "n"}], "mode": "transfer", "top": 0},
            "top: must be >= 1",
        ),
        ({"from": [{"storage": "s", "study": "n"}], "mod": "x"}, "did you mean 'mode'"),
        ({"from": [{"storage": "sqlite:///me.db", "study": "quad"}]}, "is this sweep itself"),
    ],
)
def test_bad_sections_are_refused(tmp_path: Path, section: dict[str, Any], said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        _load(tmp_path, warm_start=section, storage="sqlite:///me.db")


def test_a_parents_own_warm_start_is_not_followed(tmp_path: Path) -> None:
    """A parent that warm-starts from its child is no cycle: a parent's parents are not read."""
    child = tmp_path / "space.yaml"
    parent = write_sweep(tmp_path / "p", space_doc(name="older", warm_start={"from": [str(child)]}))
    assert _load(tmp_path, warm_start={"from": [str(parent)]}).warm_start is not None


def test_values_inside_a_space() -> None:
    assert warm._inside([LR, LEAVES, KIND], {"lr": 0.01, "leaves": 8, "kind": "a"})
    for outside in ({"lr": 0.5}, {"leaves": 6}, {"leaves": 52}, {"kind": "c"}):
        assert not warm._inside([LR, LEAVES, KIND], outside)


def test_values_are_clipped_into_a_space() -> None:
    clipped = warm._clipped([LR, LEAVES, KIND], {"lr": 0.5, "leaves": 7.2, "kind": "c", "gone": 1})
    assert clipped == {"lr": 0.1, "leaves": 8}  # kind "c" and "gone" left to the sampler
    assert warm._clipped([LEAVES], {"leaves": 100}) == {"leaves": 48}


def _trial(values: list[float], number: int) -> optuna.trial.FrozenTrial:
    trial = optuna.trial.create_trial(
        params={"x": 0.5},
        distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
        values=values,
    )
    trial.number = number
    return trial


def test_the_parents_best_come_first_front_before_the_rest() -> None:
    trials = [_trial([3, 3], 0), _trial([1, 5], 1), _trial([2, 2], 2), _trial([5, 1], 3)]
    order = [t.number for t in warm._best(trials, ["minimize", "minimize"])]
    assert order == [1, 2, 3, 0]  # the front by the first objective, then the dominated
    single = [_trial([v], i) for i, v in enumerate([0.3, 0.1, 0.2])]
    assert [t.number for t in warm._best(single, ["maximize"])] == [0, 2, 1]


def test_an_apply_cut_short_is_finished_not_repeated(tmp_path: Path) -> None:
    cfg = _load(tmp_path)
    copies = tuple(warm.Copy(f"older#{i}", {"x": i / 10}, values=(float(i),)) for i in range(5))
    study = optuna.create_study()
    warm.apply(study, cfg, warm.Plan(WarmMode.IDENTICAL, copies[:2]))  # then a crash
    record = warm.apply(study, cfg, warm.Plan(WarmMode.IDENTICAL, copies, {"older": 5}))
    keys = [t.user_attrs[WARM_FROM] for t in study.trials]
    assert keys == [f"older#{i}" for i in range(5)]
    assert record["numbers"] == [0, 1, 2, 3, 4] and study.user_attrs[warm.WARM] == record
