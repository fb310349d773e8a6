"""Sweeps run from Python through ``sweeper.Sweep``: blocking, awaited and in the
background, on the embedded emulator, with real jobs; and read while they run."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import sweeper
from sweeper.types import StopReason
from tests.helpers import GATED, objective, space_doc, sweep_trials, write_sweep


def _jobs(root: Path, name: str = "quad") -> list[str]:
    return sorted(p.name for p in (root / ".sweeps" / name / "emulator" / "jobs").iterdir())


def _running(view: sweeper.SweepView) -> int:
    """Trials running now; 0 before the sweep has made its study."""
    try:
        return list(view.trials_dataframe()["state"]).count("running")
    except sweeper.ConfigError as exc:
        if "no sweep named" not in str(exc):
            raise
        return 0


def test_run_then_run_again_resumes_with_no_new_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sweep(tmp_path)
    sweep = sweeper.Sweep(space_doc(), base_dir=tmp_path)
    result = sweep.run()
    assert result.stop_reason == StopReason.BUDGET and result.counts.complete == 4
    assert "Sweep quad: 4 trials (4 complete, 0 failed, 0 running)" in capsys.readouterr().out
    jobs = _jobs(tmp_path)
    assert len(jobs) == 4

    frame = sweep.trials_dataframe()
    trials = sweep_trials(tmp_path / "space.yaml")
    assert list(frame["number"]) == [t.number for t in trials]
    assert list(frame["value"]) == [t.value for t in trials]
    assert list(frame["params_x"]) == [t.params["x"] for t in trials]
    assert all(v == objective(x) for v, x in zip(frame["value"], frame["params_x"], strict=True))
    assert set(frame["state"]) == {"complete"}
    best = sweep.best_trial
    assert best is not None and best.value == min(t.value or 1.0 for t in trials)
    assert best.job == f"quad-{best.number}-1"
    assert sweep.report()["best"]["number"] == best.number

    again = sweep.run()
    assert again.counts.complete == 4 and _jobs(tmp_path) == jobs  # not one more job
    sweep.note(best.number, "the keeper")
    assert sweeper.open(tmp_path / "space.yaml").trials_dataframe()["note"][best.number] == (
        "the keeper"
    )
    url = f"sqlite:///{tmp_path / '.sweeps' / 'quad.db'}"
    found = sweeper.open(storage=url, name="quad")  # no space file: the study alone
    assert found.trials_dataframe().equals(sweep.trials_dataframe())
    assert found.best_trial == sweep.best_trial
    with pytest.warns(UserWarning, match="opened from its storage"):
        found.note(best.number, "still the keeper")
    assert sweep.best_trial is not None and sweep.best_trial.note == "still the keeper"
    with pytest.raises(sweeper.SweepError, match="open it from its space file"):
        found.best_estimator()


def test_run_async_inside_a_running_loop(tmp_path: Path) -> None:
    write_sweep(tmp_path)
    sweep = sweeper.Sweep(space_doc(budget={"max_trials": 2, "max_parallel": 2}), base_dir=tmp_path)

    async def cell() -> sweeper.SweepResult:
        beside = asyncio.create_task(asyncio.sleep(0))  # the loop keeps serving others
        result = await sweep.run_async()
        await beside
        return result

    result = asyncio.run(cell())
    assert result.counts.complete == 2 and result.best is not None
    assert len(_jobs(tmp_path)) == 2


def test_start_runs_in_the_background_refuses_a_second_and_stops(tmp_path: Path) -> None:
    gate = tmp_path / "go"
    doc = space_doc(budget={"max_trials": 6, "max_parallel": 2})
    doc["estimator"]["hyperparameters"] = {"gate": str(gate)}
    write_sweep(tmp_path, doc, script=GATED)
    sweep = sweeper.Sweep(doc, base_dir=tmp_path)
    handle = sweep.start(on_exit="stop")
    try:
        with pytest.raises(sweeper.SweepError, match="already running"):
            sweep.start()
        view = sweeper.open(doc, base_dir=tmp_path)
        deadline = time.monotonic() + 60
        while _running(view) < 2:  # gated: they wait for the test
            assert time.monotonic() < deadline, handle.status()
            time.sleep(0.2)
        assert handle.status().running
        with pytest.raises(TimeoutError):
            handle.wait(timeout=0.1)
        result = handle.stop()  # on_exit="stop", as start() said
    finally:
        gate.write_text("go")
        handle.stop(wait=False)
        handle.wait(timeout=120)
    assert result is not None and result.interrupted
    assert result.counts.complete == 0 and result.counts.dispatched == 2
    assert not handle.status().running and handle.status().result == result
    states = set(sweeper.open(doc, base_dir=tmp_path).trials_dataframe()["state"])
    assert "complete" not in states  # both stopped before they could finish
