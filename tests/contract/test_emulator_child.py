"""The sweep's own emulator runs in a process of its own (sweeper.emulator.child): it
serves like the in-process one, outside the sweep's terminal session, and when the
sweep dies, even by SIGKILL, it ends its jobs and lets a rerun take its state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sweeper.emulator.child import ChildEmulator
from sweeper.emulator.host import StateInUse
from sweeper.emulator.settings import EmulatorSettings, RunnerSettings
from tests.helpers import (
    ROOT,
    boto3_client,
    describe_until,
    emulator_info,
    job_request,
    read_line,
    run_sweep,
    s3_client,
    write_sweep,
)

PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sweeper.emulator.child import ChildEmulator
    from sweeper.emulator.settings import RunnerSettings
    from sweeper.emulator.settings import EmulatorSettings
    settings = EmulatorSettings(RunnerSettings(root=Path(sys.argv[1]), stop_grace_seconds=5))
    with ChildEmulator(settings) as emulator:
        print(emulator.endpoint_url, emulator._proc.pid, flush=True)
        time.sleep(600)
    """
)


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie not yet reaped counts as exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.05)


def test_a_sweep_killed_by_sigkill_takes_its_emulator_and_jobs_down_and_a_rerun_goes_on(
    tmp_path: Path,
) -> None:
    state, pidfile = tmp_path / "emulator", tmp_path / "job.pid"
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe.py").write_text(  # it ignores SIGTERM: only a kill ends it
        f"import os, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(state)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        url, child = read_line(parent, timeout=60).split()
        # Outside the sweep's session: a Ctrl-C in its terminal does not reach it.
        assert os.getsid(int(child)) != os.getsid(parent.pid)
        s3_client(emulator_info(url)["s3_endpoint_url"]).create_bucket(Bucket="bucket")
        sm = boto3_client(url)
        sm.create_training_job(**job_request("held", code))
        describe_until(sm, "held", lambda job: pidfile.exists() and pidfile.read_text() != "")
        job = int(pidfile.read_text())
        parent.send_signal(signal.SIGKILL)
        # A rerun at once on the same state waits for the old child to let go of it.
        with ChildEmulator(EmulatorSettings(RunnerSettings(root=state))) as again:
            found = boto3_client(again.endpoint_url).describe_training_job(TrainingJobName="held")
        _wait_gone(int(child), timeout=10)
        _wait_gone(job, timeout=10)
    finally:
        parent.kill()
        parent.wait(timeout=30)
    # The old child died with the sweep: the job is recorded as cut short by it.
    assert found["TrainingJobStatus"] == "Failed"
    assert "the emulator restarted while the job was running" in found["FailureReason"]


def test_a_second_emulator_on_the_same_state_waits_then_is_refused(tmp_path: Path) -> None:
    settings = EmulatorSettings(RunnerSettings(root=tmp_path / "emulator"))
    with ChildEmulator(settings) as first:
        assert first.calls["CreateTrainingJob"] == 0
        with pytest.raises(StateInUse):
            ChildEmulator(settings, state_wait_seconds=0.5).start()
        # The refused one's S3 child (spawned first, to boot beside it) is gone with it.
        assert len(_s3_children(tmp_path / "emulator")) == 1


def _s3_children(root: Path) -> list[int]:
    """The live S3 children serving ``root``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes()
        except OSError:  # not a process, or gone
            continue
        if (
            b"'sweeper.emulator.s3'" in argv
            and str(root).encode() in argv
            and not _gone(int(proc.name))
        ):
            found.append(int(proc.name))
    return found


def test_a_sweep_that_exits_stops_its_emulator_which_ends_its_jobs(tmp_path: Path) -> None:
    settings = EmulatorSettings(RunnerSettings(root=tmp_path / "emulator", stop_grace_seconds=1))
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe.py").write_text("import time\nprint('ready', flush=True)\ntime.sleep(600)\n")
    with ChildEmulator(settings) as emulator:
        s3_client(emulator_info(emulator.endpoint_url)["s3_endpoint_url"]).create_bucket(
            Bucket="bucket"
        )
        sm = boto3_client(emulator.endpoint_url)
        sm.create_training_job(**job_request("running", code))
        describe_until(sm, "running", lambda job: job["SecondaryStatus"] == "Training")
    with ChildEmulator(settings) as again:
        found = boto3_client(again.endpoint_url).describe_training_job(TrainingJobName="running")
    assert found["TrainingJobStatus"] == "Failed"
    assert "the emulator shut down during the job" in found["FailureReason"]


def test_the_emulator_and_its_helpers_run_the_callers_copy_of_sweeper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another copy where `python -m` would look first: the working directory (or an
    # older install, when a checkout's sweep.py is run from elsewhere).
    (tmp_path / "sweeper").mkdir()
    (tmp_path / "sweeper" / "__init__.py").write_text("raise ImportError('the wrong copy')\n")
    monkeypatch.chdir(tmp_path)
    settings = EmulatorSettings(RunnerSettings(root=tmp_path / "emulator"))
    with ChildEmulator(settings) as emulator:  # its S3 and reaper children too
        s3_client(emulator.s3_endpoint_url).create_bucket(Bucket="bucket")
        assert emulator_info(emulator.endpoint_url)["s3_endpoint_url"] == emulator.s3_endpoint_url


def test_an_s3_directory_the_emulator_cannot_use_is_one_line_from_the_sweep(
    tmp_path: Path,
) -> None:
    """The S3 child fails once the emulator holds its state (its lock is a directory):
    the caller gets the OSError itself, no process is left, and the sweep says it in
    one line: no traceback, from either process."""
    state = tmp_path / ".sweeps" / "quad" / "emulator"
    (state / "s3.lock").mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        ChildEmulator(EmulatorSettings(RunnerSettings(root=state))).start()
    assert _s3_children(state) == []
    result = run_sweep(str(write_sweep(tmp_path)))
    assert result.returncode == 1
    assert result.stderr.startswith("error: the sweep's emulator cannot use its directory")
    assert "s3.lock" in result.stderr and "move it aside" in result.stderr
    assert "Traceback" not in result.stderr and "Fatal Python error" not in result.stderr
