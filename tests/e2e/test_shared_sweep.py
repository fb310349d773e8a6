"""Several orchestrators on one sweep, and storage outages, with real processes: sweep.py
twice, a standalone emulator, and PostgreSQL (or SQLite) as the study's storage.

Every job waits for the test's gate file, so which orchestrator holds which trial when
something happens is an event the test controls, not a race against the machine's speed.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tests import postgres
from tests.conftest import private_postgres_server
from tests.helpers import (
    GATED,
    boto3_client,
    experiment_runs,
    list_jobs,
    objective,
    read_until,
    run_sweep,
    space_doc,
    standalone_emulator,
    start_sweep,
    write_sweep,
)

pytestmark = pytest.mark.timeout(420)
TRIALS, PARALLEL = 10, 3


def _space(tmp_path: Path, url: str, storage: str | None, gate: Path, **top: Any) -> Path:
    doc = space_doc(
        budget={"max_trials": TRIALS, "max_parallel": PARALLEL, "max_failures": 1},
        backend={"kind": "emulator", "endpoint_url": url},
        **({"storage": storage} if storage else {}),
        **top,
    )
    doc["estimator"]["hyperparameters"] = {"gate": str(gate)}
    return write_sweep(tmp_path, doc, script=GATED)


def _finish(*procs: subprocess.Popen[str], seen: list[str]) -> list[str]:
    """Wait for every process; return each one's whole output (``seen`` + the rest)."""
    outs = []
    for proc, before in zip(procs, seen, strict=True):
        rest, _ = proc.communicate(timeout=300)
        outs.append(before + rest)
    return outs


def _check_sweep(storage: str, url: str) -> list[optuna.trial.FrozenTrial]:
    """Exactly TRIALS trials ran, each once, each with one job and one Experiments run."""
    trials = optuna.load_study(study_name="quad", storage=storage).trials
    ran = [t for t in trials if t.state != TrialState.PRUNED]  # pruned: never launched
    assert [t.state for t in ran] == [TrialState.COMPLETE] * TRIALS
    for t in ran:
        assert t.value == objective(t.params["x"])
    jobs = list_jobs(url)
    assert len(jobs) == len(set(jobs)) == TRIALS  # no job twice
    assert sorted(jobs) == sorted(t.user_attrs["job_name"] for t in ran)
    components = experiment_runs(boto3_client(url), "quad")
    runs = [c["TrialComponentName"] for c in components if "-trial-" in c["TrialComponentName"]]
    assert len(runs) == len(set(runs)) == TRIALS  # one Experiments run per trial
    assert sorted(r.rsplit("-", 1)[-1] for r in runs) == sorted(str(t.number) for t in ran)
    return ran


@pytest.mark.parametrize("stagger", [True, False], ids=["staggered", "together"])
def test_two_orchestrators_on_postgres_run_the_budget_once(
    tmp_path: Path, pg_url: str, stagger: bool
) -> None:
    gate = tmp_path / "go"
    with standalone_emulator(tmp_path / "state") as url:
        space = _space(tmp_path, url, pg_url, gate)
        first = start_sweep(str(space))
        try:
            seen = [read_until(first, "started") if stagger else ""]
            second = start_sweep(str(space))
            try:
                seen[0] += read_until(first, "started") if not stagger else ""
                seen.append(read_until(second, "started"))  # both hold trials now
                gate.write_text("go")
                outs = _finish(first, second, seen=seen)
            finally:
                second.kill()
        finally:
            first.kill()
        assert first.returncode == 0, outs[0]
        assert second.returncode == 0, outs[1]
        ran = _check_sweep(pg_url, url)
    owners = {t.user_attrs["orchestrator"] for t in ran}
    assert len(owners) == 2  # both ran trials of the sweep
    report = json.loads(run_sweep("report", str(space), "--json").stdout)
    assert {t["orchestrator"] for t in report["trials"] if t["state"] == "complete"} == owners
    for out in outs:
        assert postgres.PASSWORD not in out  # the storage URL is shown without it
        assert "Traceback" not in out


def test_a_killed_orchestrators_trials_are_adopted_by_the_other(
    tmp_path: Path, pg_url: str
) -> None:
    gate = tmp_path / "go"
    with standalone_emulator(tmp_path / "state") as url:
        space = _space(tmp_path, url, pg_url, gate, storage_lease_seconds=3)
        victim, survivor = start_sweep(str(space)), start_sweep(str(space))
        try:
            read_until(victim, "started")
            seen = read_until(survivor, "started")
            victim.kill()  # SIGKILL: no goodbye, its lease is left to expire
            victim.wait(timeout=30)
            gate.write_text("go")
            (out,) = _finish(survivor, seen=[seen])
        finally:
            victim.kill()
            survivor.kill()
        assert survivor.returncode == 0, out
        assert "adopted from" in out
        ran = _check_sweep(pg_url, url)
    # The victim's jobs could not end before it died: every trial ends as the survivor's.
    assert len({t.user_attrs["orchestrator"] for t in ran}) == 1


def test_a_paused_orchestrators_trials_are_adopted_when_its_lease_expires(
    tmp_path: Path, pg_url: str
) -> None:
    """SIGSTOP: the process lives but is silent (a frozen VM, a partition). Its lease
    expires, the other adopts its trials; resumed, it lets them go and the sweep ends
    with each trial run and told once."""
    gate = tmp_path / "go"
    with standalone_emulator(tmp_path / "state") as url:
        space = _space(tmp_path, url, pg_url, gate, storage_lease_seconds=3)
        paused, other = start_sweep(str(space)), start_sweep(str(space))
        try:
            seen = [read_until(paused, "started"), read_until(other, "started")]
            paused.send_signal(signal.SIGSTOP)
            seen[1] += read_until(other, "adopted from")  # its lease expired: it is taken for dead
            paused.send_signal(signal.SIGCONT)
            seen[0] += read_until(paused, "lease had lapsed")
            gate.write_text("go")
            outs = _finish(paused, other, seen=seen)
        finally:
            paused.kill()
            other.kill()
        assert paused.returncode == 0, outs[0]
        assert other.returncode == 0, outs[1]
        _check_sweep(pg_url, url)
    for out in outs:
        assert "Traceback" not in out


def test_postgres_restarting_mid_sweep_loses_nothing(tmp_path: Path) -> None:
    gate = tmp_path / "go"
    with private_postgres_server() as server, standalone_emulator(tmp_path / "state") as url:
        storage = server.create_database("restarts")
        space = _space(tmp_path, url, storage, gate)
        proc = start_sweep(str(space))
        try:
            seen = read_until(proc, "started")
            server.stop()
            gate.write_text("go")  # jobs end while the study cannot be written
            seen += read_until(proc, "storage unavailable")
            server.start()
            (out,) = _finish(proc, seen=[seen])
        finally:
            proc.kill()
        assert proc.returncode == 0, out
        _check_sweep(storage, url)
    assert "Traceback" not in out


def test_two_orchestrators_on_one_sqlite_file_share_the_budget(tmp_path: Path) -> None:
    gate = tmp_path / "go"
    with standalone_emulator(tmp_path / "state") as url:
        space = _space(tmp_path, url, None, gate)
        first, second = start_sweep(str(space)), start_sweep(str(space))
        try:
            seen = [read_until(first, "started"), read_until(second, "started")]
            gate.write_text("go")
            outs = _finish(first, second, seen=seen)
        finally:
            first.kill()
            second.kill()
        assert (first.returncode, second.returncode) == (0, 0), outs
        _check_sweep(f"sqlite:///{tmp_path / '.sweeps' / 'quad.db'}", url)
