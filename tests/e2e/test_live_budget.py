"""``sweep.py set`` on running sweeps, with real processes: sweep.py, a standalone
emulator, SQLite or PostgreSQL.

Every job waits for the test's gate file, so how many jobs are in flight when the budget
changes is fixed by the test: all of them are still waiting.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.helpers import (
    GATED,
    list_jobs,
    read_until,
    run_sweep,
    space_doc,
    standalone_emulator,
    start_sweep,
    write_sweep,
)

pytestmark = pytest.mark.timeout(420)


def _space(tmp_path: Path, url: str, storage: str | None, gate: Path) -> Path:
    doc = space_doc(
        budget={"max_trials": 8, "max_parallel": 2, "max_failures": 1},
        backend={"kind": "emulator", "endpoint_url": url},
        tracking={"experiments": False},
        **({"storage": storage} if storage else {}),
    )
    doc["estimator"]["hyperparameters"] = {"gate": str(gate)}
    return write_sweep(tmp_path, doc, script=GATED)


def _started(proc: subprocess.Popen[str], n: int) -> str:
    return "".join(read_until(proc, "started") for _ in range(n))


def _set(space: Path, *assignments: str) -> str:
    done = run_sweep("set", str(space), *assignments)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _complete(storage: str, trials: int) -> None:
    study = optuna.load_study(study_name="quad", storage=storage)
    ran = [t for t in study.trials if t.state != TrialState.PRUNED]  # pruned: never launched
    assert [t.state for t in ran] == [TrialState.COMPLETE] * trials


def test_set_raises_max_parallel_and_max_trials_of_a_running_sweep(tmp_path: Path) -> None:
    gate = tmp_path / "go"
    with standalone_emulator(tmp_path / "state") as url:
        space = _space(tmp_path, url, None, gate)
        proc = start_sweep(str(space))
        try:
            seen = _started(proc, 2)
            assert len(list_jobs(url)) == 2  # max_parallel 2, every job waiting at the gate
            said = _set(space, "max_parallel=4", "max_trials=12")
            assert "max_parallel 2 → 4" in said and "max_trials 8 → 12" in said
            seen += read_until(proc, "budget changed: max_trials 8 → 12, max_parallel 2 → 4")
            seen += _started(proc, 2)
            assert len(list_jobs(url)) == 4  # filled at once, still all waiting
            gate.write_text("go")
            rest, _ = proc.communicate(timeout=300)
        finally:
            proc.kill()
        assert proc.returncode == 0, seen + rest
        assert len(list_jobs(url)) == 12
    _complete(f"sqlite:///{tmp_path / '.sweeps' / 'quad.db'}", 12)
    status = run_sweep("status", str(space)).stdout
    assert "trials: 12 of 12" in status
    assert "max_parallel          4  (sweep.py set, " in status
    assert "max_failures          1  (space file)" in status


def test_two_orchestrators_on_postgres_both_follow_a_set(tmp_path: Path, pg_url: str) -> None:
    gate = tmp_path / "go"
    with standalone_emulator(tmp_path / "state") as url:
        space = _space(tmp_path, url, pg_url, gate)
        first = start_sweep(str(space))
        second = None
        try:
            seen = [_started(first, 2)]
            second = start_sweep(str(space))
            seen.append(_started(second, 2))
            assert len(list_jobs(url)) == 4  # two each
            _set(space, "max_parallel=3", "max_trials=12")
            for i, proc in enumerate((first, second)):
                seen[i] += read_until(proc, "budget changed: max_trials 8 → 12, max_parallel 2 → 3")
                seen[i] += _started(proc, 1)
            assert len(list_jobs(url)) == 6  # three each, all still waiting
            gate.write_text("go")
            outs = [
                s + proc.communicate(timeout=300)[0]
                for s, proc in zip(seen, (first, second), strict=True)
            ]
        finally:
            first.kill()
            if second is not None:
                second.kill()
        assert first.returncode == 0 and second.returncode == 0, outs
        jobs = list_jobs(url)
        assert len(jobs) == len(set(jobs)) == 12
    _complete(pg_url, 12)


def test_set_refuses_bad_input_and_changes_nothing(tmp_path: Path) -> None:
    space = _space(tmp_path, "http://127.0.0.1:9", None, tmp_path / "go")
    missing = run_sweep("set", str(space), "max_parallel=4")
    assert missing.returncode == 2 and "no sweep named 'quad'" in missing.stderr
    for bad, said in [
        ("max_paralel=4", "did you mean 'max_parallel'"),
        ("max_parallel=0", "must be >= 1"),
        ("max_parallel=4.5", "expected an integer"),
    ]:
        done = run_sweep("set", str(space), bad)
        assert done.returncode == 2, done.stderr
        assert said in done.stderr and "Traceback" not in done.stderr
    assert "sweep.py set SPACE KEY=VALUE" in run_sweep("--help").stdout
