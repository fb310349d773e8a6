"""A sweep killed with SIGKILL takes its embedded emulator's jobs with it: no job runs on
beside the rerun that runs the same trials again, not even a process a job started in a
session of its own."""

from __future__ import annotations

import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers import space_doc, start_sweep, write_sweep

# Writes the pids of itself and of a child it detaches (a session of its own), then
# waits for nothing: only a kill ends it.
LINGER = textwrap.dedent(
    """
    import argparse, os, subprocess, sys, time
    p = argparse.ArgumentParser()
    p.add_argument("-x", "--x", type=float, required=True)
    p.add_argument("--pids", required=True)
    a = p.parse_args()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    path = os.path.join(a.pids, str(os.getpid()))
    with open(path + ".partial", "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    os.replace(path + ".partial", path)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sigkill_of_the_sweep_kills_its_jobs_and_what_they_started(tmp_path: Path) -> None:
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    doc = space_doc(budget={"max_trials": 2, "max_parallel": 2})
    doc["estimator"]["hyperparameters"] = {"pids": str(pids_dir)}
    space = write_sweep(tmp_path, doc, script=LINGER)
    sweep = start_sweep(str(space))
    try:
        _wait(lambda: len(list(pids_dir.iterdir())) >= 2, 120, "two jobs never started")
        pids = [int(p) for f in pids_dir.iterdir() for p in f.read_text().split()]
        assert len(pids) == 4 and all(_alive(p) for p in pids)
    finally:
        sweep.send_signal(signal.SIGKILL)
        sweep.wait(timeout=30)
    _wait(lambda: not any(_alive(p) for p in pids), 60, f"still running: {pids}")
