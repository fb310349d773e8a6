"""Crash-safe resume through the real CLI: SIGKILL at random moments, Ctrl-C in a terminal."""

from __future__ import annotations

import os
import pty
import select
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from optuna.trial import TrialState

from tests.helpers import (
    GATED,
    ROOT,
    kill_and_resume,
    list_jobs,
    objective,
    read_line,
    run_sweep,
    space_doc,
    standalone_emulator,
    start_sweep,
    sweep_trials,
    write_sweep,
)


def _sweep_doc(url: str, trials: int, parallel: int, sleep: float) -> dict[str, Any]:
    doc = space_doc(
        budget={"max_trials": trials, "max_parallel": parallel, "max_failures": 1},
        backend={"kind": "emulator", "endpoint_url": url},
    )
    doc["estimator"]["hyperparameters"] = {"sleep": sleep}
    return doc


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    with standalone_emulator(tmp_path / "state") as url:
        space = write_sweep(tmp_path, _sweep_doc(url, trials=8, parallel=3, sleep=0.4))
        kills = kill_and_resume(space, kills=5, seed=2026)
        final = run_sweep(str(space), timeout=180)
        assert final.returncode == 0, final.stdout + final.stderr
        jobs = list_jobs(url)
    assert kills >= 3
    trials = sweep_trials(space)
    launched = [t for t in trials if t.state != TrialState.PRUNED]  # pruned: never launched
    assert [t.state for t in launched] == [TrialState.COMPLETE] * 8
    assert len(jobs) == len(set(jobs)) == 8  # exactly one job per trial
    assert sorted(jobs) == sorted(t.user_attrs["job_name"] for t in launched)
    for t in launched:
        assert t.value == objective(t.params["x"])


def _run_in_terminal(argv: list[str], interrupt_after: str, timeout: float = 60) -> tuple[str, int]:
    """Run ``argv`` on a pseudo-terminal; type Ctrl-C once ``interrupt_after`` was printed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is the pty, Ctrl-C reaches it as SIGINT
        os.execv(sys.executable, [sys.executable, *argv])
    out, sent = b"", False
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise TimeoutError(out.decode(errors="replace"))
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
            if not sent and out.decode(errors="replace").count(interrupt_after) >= 2:
                os.write(fd, b"\x03")
                sent = True
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return out.decode(errors="replace").replace("\r\n", "\n"), os.waitstatus_to_exitcode(status)


def test_ctrl_c_in_a_terminal_leaves_jobs_running_and_a_rerun_finishes(tmp_path: Path) -> None:
    gate = tmp_path / "go"
    with standalone_emulator(tmp_path / "state") as url:
        doc = _sweep_doc(url, trials=4, parallel=2, sleep=0.0)
        doc["estimator"]["hyperparameters"] = {"gate": str(gate)}
        space = write_sweep(tmp_path, doc, script=GATED)
        out, code = _run_in_terminal(
            [str(ROOT / "sweep.py"), str(space)], interrupt_after="started"
        )
        assert code == 130, out
        assert "SIGINT: starting no new trials, leaving running jobs alone" in out
        assert "2 job(s) are still running; resuming re-attaches them." in out
        assert f"Resume with: {sys.executable} {ROOT / 'sweep.py'} {space}" in out
        sm_jobs = list_jobs(url)
        assert len(sm_jobs) == 2

        status = run_sweep("status", str(space), timeout=60)
        assert status.returncode == 0, status.stderr
        assert "2 running" in status.stdout
        assert status.stdout.count("InProgress/") == 2

        rerun = start_sweep(str(space))
        try:
            seen = ""
            while not all(f"trial {n}: re-attached" in seen for n in (0, 1)):
                line = read_line(rerun, timeout=60)
                assert line, seen  # the rerun ended without re-attaching both
                seen += line
            gate.write_text("go")  # only now may the interrupted jobs finish
            rest, _ = rerun.communicate(timeout=120)
        finally:
            rerun.kill()
        assert rerun.returncode == 0, seen + rest
        jobs = list_jobs(url)
    assert len(jobs) == len(set(jobs)) == 4
    assert [t.state for t in sweep_trials(space)] == [TrialState.COMPLETE] * 4


def test_a_changed_objective_is_refused_and_a_raised_budget_continues(tmp_path: Path) -> None:
    doc = space_doc(budget={"max_trials": 1, "max_parallel": 1})
    doc["estimator"]["metric_definitions"].append({"name": "other", "regex": "loss=([0-9.]+)"})
    space = write_sweep(tmp_path, doc)
    assert run_sweep(str(space)).returncode == 0
    changed = yaml.safe_load(space.read_text())
    changed["objective"]["metric"] = "other"
    space.write_text(yaml.safe_dump(changed))
    refused = run_sweep(str(space))
    assert refused.returncode == 2
    assert "objective.metric was 'loss', now 'other'" in refused.stderr
    doc["budget"]["max_trials"] = 3
    space.write_text(yaml.safe_dump(doc))
    more = run_sweep(str(space))
    assert more.returncode == 0, more.stderr
    assert "Sweep quad: 3 trials (3 complete" in more.stdout


@pytest.mark.parametrize("on_exit", ["stop", "wait"])
def test_on_exit_modes_in_a_terminal(tmp_path: Path, on_exit: str) -> None:
    with standalone_emulator(tmp_path / "state") as url:
        space = write_sweep(tmp_path, _sweep_doc(url, trials=4, parallel=2, sleep=2.0))
        argv = [str(ROOT / "sweep.py"), str(space), "--on-exit", on_exit]
        out, code = _run_in_terminal(argv, interrupt_after="started")
        assert code == 130, out
        states = [t.state for t in sweep_trials(space)]
        if on_exit == "wait":
            assert "waiting for running jobs to finish" in out
            assert states.count(TrialState.COMPLETE) == 2
        else:
            assert "2 job(s) were asked to stop" in out
            assert states.count(TrialState.COMPLETE) == 0
        rerun = run_sweep(*argv[1:])
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        jobs = list_jobs(url)
    assert [t.state for t in sweep_trials(space)] == [TrialState.COMPLETE] * 4
    assert len(jobs) == (6 if on_exit == "stop" else 4)  # stopped trials rerun as attempt 2
