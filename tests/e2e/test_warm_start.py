"""Warm start through the embedded emulator: a 20-trial parent sweep, then sweeps that
start from it (identical: its trials join; transfer: its best configurations run first)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import optuna
import pytest
from optuna.trial import TrialState

from tests.e2e.test_report import SCHEMA
from tests.helpers import (
    boto3_client,
    experiment_runs,
    run_sweep,
    space_doc,
    standalone_emulator,
    write_sweep,
)

pytestmark = pytest.mark.timeout(420)
PARENT_TRIALS = 20


def _sweep(root: Path, name: str, **top: Any) -> Path:
    doc = space_doc(name=name, **({"tracking": {"experiments": False}} | top))
    doc["budget"] = {"max_trials": 4, "max_parallel": 4, "max_failures": 1}
    return write_sweep(root, doc)


def _run(space: Path, *args: str) -> str:
    done = run_sweep(str(space), *args, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _trials(space: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    url = f"sqlite:///{space.parent / '.sweeps' / f'{name}.db'}"
    return optuna.load_study(study_name=name, storage=url).trials


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parent")
    doc = space_doc(name="quad-parent", tracking={"experiments": False})
    doc["budget"] = {"max_trials": PARENT_TRIALS, "max_parallel": 4, "max_failures": 1}
    space = write_sweep(root, doc)
    _run(space)
    assert sum(t.state == TrialState.COMPLETE for t in _trials(space, "quad-parent")) == 20
    return space


def test_identical_adds_the_parents_trials_and_runs_only_its_own(
    tmp_path: Path, parent: Path
) -> None:
    with standalone_emulator(tmp_path / "state") as url:
        space = _sweep(
            tmp_path / "child",
            "quad-child",
            space={"x": {"type": "float", "low": 0.0, "high": 0.8}},
            warm_start={"from": [str(parent)], "mode": "identical"},
            backend={"kind": "emulator", "endpoint_url": url},
            tracking={"experiments": True},
        )
        out = _run(space)
        components = experiment_runs(boto3_client(url), "quad-child")
        runs = [c["TrialComponentName"] for c in components if "-trial-" in c["TrialComponentName"]]
        assert len(runs) == 4  # the sweep's own trials only
        trials = _trials(space, "quad-child")
        warm = [t for t in trials if "sweeper:warm_start_from" in t.user_attrs]
        own = [t for t in trials if t not in warm]
        inside = [t for t in _trials(parent, "quad-parent") if t.params["x"] <= 0.8]
        assert len(warm) == len(inside) and 0 < len(warm) < PARENT_TRIALS  # the rest: skipped
        assert {t.params["x"] for t in warm} == {t.params["x"] for t in inside}
        assert all("job_name" not in t.user_attrs for t in warm)  # never run
        assert len(own) == 4 and all(t.state == TrialState.COMPLETE for t in own)
        assert "Traceback" not in out
        # Its first TPE asks differ from a cold start's with the same seed.
        cold = _sweep(
            tmp_path / "cold", "quad-child", space={"x": {"type": "float", "low": 0.0, "high": 0.8}}
        )
        _run(cold)
        cold_x = [t.params["x"] for t in _trials(cold, "quad-child")]
        assert [t.params["x"] for t in own] != cold_x
        # The report shows the parent's trials apart, and ranks only the sweep's own.
        doc = json.loads(run_sweep("report", str(space), "--json").stdout)
        jsonschema.validate(doc, SCHEMA)
        assert doc["warm_start"]["from"] == {"quad-parent": len(warm)}
        assert len(doc["warm_start"]["trials"]) == len(warm)
        assert doc["counts"]["total"] == 4 and len(doc["trials"]) == 4
        assert doc["best"]["number"] in {t.number for t in own}
        text = run_sweep("report", str(space)).stdout
        assert f"warm start: {len(warm)} from quad-parent" in text
        status = run_sweep("status", str(space)).stdout
        skipped = PARENT_TRIALS - len(warm)
        assert f"{len(warm)} trials from {parent}; {skipped} skipped (outside this space)" in status
        # A rerun adds nothing twice.
        _run(space)
        assert len(_trials(space, "quad-child")) == len(trials)


def test_transfer_enqueues_the_parents_best_first(tmp_path: Path, parent: Path) -> None:
    space = _sweep(
        tmp_path,
        "quad-transfer",
        warm_start={
            "from": [{"storage": _url(parent), "study": "quad-parent"}],
            "mode": "transfer",
        },
    )
    _run(space)
    # max_trials 4 < top 5: the first four of the parent's best five ran.
    best = sorted(
        (t for t in _trials(parent, "quad-parent") if t.state == TrialState.COMPLETE),
        key=lambda t: (t.value, t.number),
    )
    trials = _trials(space, "quad-transfer")
    ran = [t for t in trials if t.state == TrialState.COMPLETE]
    assert [t.params["x"] for t in ran] == [t.params["x"] for t in best[:4]]
    assert all(
        t.user_attrs["sweeper:transferred_from"] == f"quad-parent#{b.number}"
        for t, b in zip(ran, best, strict=False)
    )
    assert sum(t.state == TrialState.WAITING for t in trials) == 1  # the fifth, for later
    _run(space)  # a rerun enqueues nothing again
    assert len(_trials(space, "quad-transfer")) == len(trials)
    assert run_sweep("set", str(space), "max_trials=5").returncode == 0
    _run(space)
    trials = _trials(space, "quad-transfer")
    assert len(trials) == 5 and trials[4].params["x"] == best[4].params["x"]


def _url(space: Path) -> str:
    return f"sqlite:///{space.parent / '.sweeps' / 'quad-parent.db'}"


@pytest.mark.parametrize(
    ("warm_start", "said"),
    [
        ({"from": ["missing.yaml"]}, "warm_start.from[0]: no space file at"),
        ({"from": [{"storage": "sqlite:///nowhere.db", "study": "x"}]}, "no sweep named 'x'"),
        ({"from": ["a.yaml"] * 6}, "give 1 to 5 earlier sweeps"),
        ({"from": ["PARENT"], "mode": "copy"}, "warm_start.mode"),
        ({"from": ["PARENT"], "top": 3}, "warm_start.top: goes with mode: transfer"),
    ],
)
def test_bad_warm_starts_are_refused_before_anything(
    tmp_path: Path, parent: Path, warm_start: dict[str, Any], said: str
) -> None:
    warm_start["from"] = [str(parent) if f == "PARENT" else f for f in warm_start["from"]]
    space = _sweep(tmp_path, "quad-bad", warm_start=warm_start)
    done = run_sweep(str(space))
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / ".sweeps" / "quad-bad.db").exists()


def test_a_parent_with_other_objectives_is_refused(tmp_path: Path, parent: Path) -> None:
    two = [{"metric": "loss", "direction": "minimize"}, {"metric": "size", "direction": "minimize"}]
    for goal in ({"objective": {"metric": "loss", "direction": "maximize"}}, {"objectives": two}):
        doc = space_doc(name="quad-other", tracking={"experiments": False})
        doc.pop("objective")
        doc |= goal | {"warm_start": {"from": [str(parent)]}}
        doc["estimator"]["metric_definitions"].append({"name": "size", "regex": "size=([0-9]+)"})
        space = write_sweep(tmp_path, doc)
        done = run_sweep(str(space))
        assert done.returncode == 2, done.stderr
        assert "a warm start needs the same objectives" in done.stderr
        assert not (tmp_path / ".sweeps" / "quad-other.db").exists()
