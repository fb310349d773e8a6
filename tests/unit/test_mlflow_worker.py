"""MLflow's client in a process of its own: calls go there and back with their results
and errors, Ctrl-C does not reach it, and it does not outlive a killed orchestrator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sweeper.tracking.mlflow import brief
from sweeper.tracking.mlflow_store import MlflowStore
from sweeper.tracking.mlflow_worker import MlflowError, MlflowWorker
from sweeper.types import Point

pytest.importorskip("mlflow")


async def test_calls_run_in_the_worker_with_their_results_and_errors(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    worker = MlflowWorker(uri, "sweep-a")
    try:
        pid = next(iter(worker._pool._processes))  # type: ignore[union-attr]
        os.kill(pid, signal.SIGINT)  # a terminal's Ctrl-C, while it starts ...
        await worker.ready()
        os.kill(pid, signal.SIGINT)  # ... and once it runs: it reaches the process group
        run = await worker.call(MlflowStore.create, "trial-0", {"sweeper.sweep": "a"}, {})
        points = [Point("loss", 1.0, 0, 0.5), Point("loss", 2.0, 1, 0.25)]
        await worker.call(MlflowStore.complete, run, points, {"lr": "0.1"}, {}, "FINISHED", None)
        found = await worker.call(MlflowStore.runs, "a")
        with pytest.raises(MlflowError, match=r"no-such-run"):
            await worker.call(MlflowStore.end, "no-such-run", "FINISHED")
    finally:
        worker.close()
    assert pid != os.getpid()
    _until_gone(pid)  # closed: ended, not left to MLflow's slow exit
    assert [(r.run_id, r.status, r.trial) for r in found] == [(run, "FINISHED", None)]
    import mlflow

    history = mlflow.tracking.MlflowClient(uri).get_metric_history(run, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.25)]


async def test_a_store_that_cannot_open_says_why(tmp_path: Path) -> None:
    worker = MlflowWorker("nosuch://where", "sweep-a")
    with pytest.raises(MlflowError, match="nosuch") as raised:
        await worker.ready()
    worker.close()
    assert raised.value.kind == "UnsupportedModelRegistryStoreURIException"
    assert brief(raised.value).startswith("UnsupportedModelRegistryStoreURIException: ")


OPENS_A_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from sweeper.tracking.mlflow_worker import MlflowWorker

    async def main():
        worker = MlflowWorker(sys.argv[1], "sweep-a")
        await worker.ready()
        print(next(iter(worker._pool._processes)), flush=True)
        await asyncio.sleep(600)

    if __name__ == "__main__":
        asyncio.run(main())
    """
)


def test_the_worker_exits_when_the_orchestrator_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "orchestrator.py"
    script.write_text(OPENS_A_WORKER)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    root = str(Path(__file__).parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    with subprocess.Popen(
        [sys.executable, str(script), uri], stdout=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # once the worker has opened the store
        worker = int(line)
        proc.kill()
        proc.wait(timeout=30)
    _until_gone(worker)


def _until_gone(pid: int, timeout: float = 30.0) -> None:
    """Wait (under ``timeout``) for process ``pid`` to be gone."""
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs after {timeout} s"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")
