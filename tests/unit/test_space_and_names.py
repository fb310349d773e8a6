from __future__ import annotations

import asyncio
import re
from pathlib import Path

import optuna.distributions as od
import pytest

from sweeper import config, space
from sweeper.aws.names import job_name, job_prefix
from sweeper.study import SweepStudy
from tests.helpers import space_doc, write_sweep

JOB_NAME_RE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


def test_parameters_become_optuna_distributions(tmp_path: Path) -> None:
    doc = space_doc(
        space={
            "lr": {"type": "float", "low": 0.001, "high": 0.3, "log": True},
            "depth": {"type": "int", "low": 2, "high": 12},
            "leaves": {"type": "int", "low": 8, "high": 128, "step": 8},
            "frac": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.25},
            "opt": {"type": "categorical", "choices": ["adam", "sgd"]},
        }
    )
    dists = space.distributions(config.load(write_sweep(tmp_path, doc)).space)
    assert dists["lr"] == od.FloatDistribution(0.001, 0.3, log=True)
    assert dists["depth"] == od.IntDistribution(2, 12)
    assert dists["leaves"] == od.IntDistribution(8, 128, step=8)
    assert dists["frac"] == od.FloatDistribution(0.0, 1.0, step=0.25)
    assert dists["opt"] == od.CategoricalDistribution(["adam", "sgd"])


def test_grid_stops_when_exhausted_even_with_more_trials_allowed(tmp_path: Path) -> None:
    doc = space_doc(
        sampler={"kind": "grid"},
        budget={"max_trials": 50},
        space={
            "x": {"type": "float", "values": [0.1, 0.5, 0.9]},
            "opt": {"type": "categorical", "choices": ["a", "b"]},
        },
    )
    cfg = config.load(write_sweep(tmp_path, doc))
    assert space.grid_size(cfg.space) == 6
    study = SweepStudy.open(cfg, storage="")
    assert study.trial_limit == 6

    async def ask_all() -> set[tuple[float, str]]:
        seen = set()
        for _ in range(study.trial_limit):
            trial = await study.ask(lambda n, attempt: f"quad-{n}-{attempt}")
            await study.tell_complete(trial.number, (0.0,), {})
            seen.add((trial.params["x"], trial.params["opt"]))
        return seen

    assert len(asyncio.run(ask_all())) == 6  # every grid point exactly once
    study.close()


@pytest.mark.parametrize(
    ("sweep", "trial", "expected"),
    [
        ("digits-hgb", 7, "digits-hgb-7-1"),
        ("my_sweep.v2", 0, "my-sweep-v2-0-1"),
        ("--x--", 3, "x-3-1"),
    ],
)
def test_job_names_are_deterministic_and_valid(sweep: str, trial: int, expected: str) -> None:
    assert job_name(sweep, trial) == expected
    assert job_name(sweep, trial) == job_name(sweep, trial)


def test_long_sweep_names_stay_within_63_chars_and_do_not_collide() -> None:
    a = "a-very-long-sweep-name-that-goes-on-and-on-beyond-any-reasonable-length-one"
    b = a[:-3] + "two"
    names = {job_name(n, t, k) for n in (a, b) for t in (0, 12345) for k in (1, 9)}
    assert len(names) == 8
    for name in names:
        assert len(name) <= 63
        assert JOB_NAME_RE.fullmatch(name), name
    assert job_name(a, 12345, 9).endswith("-12345-9")


@pytest.mark.parametrize("sweep", ["quad", "a" * 40, "b" * 120, "long-name-" * 12])
def test_every_job_name_starts_with_the_sweep_s_prefix(sweep: str) -> None:
    prefix = job_prefix(sweep)
    for trial, attempt in ((0, 1), (7, 3), (12345, 2), (999_999_999, 999)):
        assert job_name(sweep, trial, attempt).startswith(prefix)
    assert not job_name("other", 0, 1).startswith(prefix)
