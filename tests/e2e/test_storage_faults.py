"""Local storage faults are one clean line that says what is wrong and what to do, a
non-zero exit, and what was recorded left intact: a read-only sweep directory (where
``status`` and ``report`` still work), a damaged study, a full disk."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_sweep, space_doc, write_sweep

SWEEP = [sys.executable, str(ROOT / "sweep.py")]
# Each job leaves a 300 kB model: a small disk fills within a few trials.
HEAVY = """
import argparse, os
p = argparse.ArgumentParser()
p.add_argument("-x", "--x", type=float, required=True)
a = p.parse_args()
open(os.path.join(os.environ["SM_MODEL_DIR"], "model.bin"), "wb").write(os.urandom(300_000))
print(f"loss={(a.x - 0.3) ** 2:.10f}")
"""


def _in_mount_namespace(
    out: Path, mount: str, *commands: list[str]
) -> list[subprocess.CompletedProcess[str]]:
    """Run ``commands`` one after another in one mount namespace of their own (as root,
    or as a user mapped to root in a user namespace) where ``mount`` (shell) was done;
    their output goes through files under ``out``."""
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "--mount", *user, "true"], capture_output=True).returncode
    ):
        pytest.skip("needs a mount namespace (unshare) to make a read-only or full disk")
    script = [""]
    for i, argv in enumerate(commands):
        line = " ".join(shlex.quote(a) for a in argv)
        script.append(f"{line} >{out}/{i}.out 2>{out}/{i}.err; echo $? >{out}/{i}.rc")
    subprocess.run(
        [
            "unshare",
            "--mount",
            *user,
            "sh",
            "-c",
            f"{mount} || exit 1; " + "; ".join(script[1:]),
        ],
        check=True,
        timeout=300,
        cwd=ROOT,
    )
    return [
        subprocess.CompletedProcess(
            argv,
            int((out / f"{i}.rc").read_text()),
            (out / f"{i}.out").read_text(),
            (out / f"{i}.err").read_text(),
        )
        for i, argv in enumerate(commands)
    ]


def _one_clean_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode not in (0, 2), result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert all(w in result.stderr + result.stdout for w in words), result.stderr + result.stdout


def _finished_sweep(tmp_path: Path) -> Path:
    space = write_sweep(tmp_path, space_doc(budget={"max_trials": 2, "max_parallel": 2}))
    first = run_sweep(str(space))
    assert first.returncode == 0, first.stderr
    return space


def test_a_read_only_sweep_directory(tmp_path: Path) -> None:
    space = _finished_sweep(tmp_path)
    sweeps = tmp_path / ".sweeps"
    before = (sweeps / "quad.db").read_bytes()
    space.write_text(space.read_text().replace("max_trials: 2", "max_trials: 3"))
    ro = f"mount --bind {sweeps} {sweeps} && mount -o remount,bind,ro {sweeps}"
    status, report, run = _in_mount_namespace(
        tmp_path,
        ro,
        [*SWEEP, "status", str(space)],
        [*SWEEP, "report", str(space)],
        [*SWEEP, str(space)],
    )
    assert status.returncode == 0, status.stderr
    assert "2 done" in status.stdout
    assert report.returncode == 0, report.stderr
    assert "rank  trial" in report.stdout
    _one_clean_line(run, "Read-only file system", "run the same command again")
    assert (sweeps / "quad.db").read_bytes() == before


def test_a_damaged_study(tmp_path: Path) -> None:
    space = _finished_sweep(tmp_path)
    db = tmp_path / ".sweeps" / "quad.db"
    for wal in db.parent.glob("quad.db-*"):  # the sweep checkpointed on exit; be sure
        wal.unlink()
    damaged = bytearray(db.read_bytes())
    damaged[100:4096] = b"\xff" * (4096 - 100)  # the first page's header and schema
    db.write_bytes(bytes(damaged))
    for argv in (["status", str(space)], ["report", str(space)], [str(space)]):
        result = run_sweep(*argv)
        _one_clean_line(result, "is damaged", "restore it from a backup")
    assert db.read_bytes() == bytes(damaged)  # left as it was, for recovery


def test_a_full_disk(tmp_path: Path) -> None:
    space = write_sweep(
        tmp_path, space_doc(budget={"max_trials": 40, "max_parallel": 2}), script=HEAVY
    )
    sweeps = tmp_path / ".sweeps"
    sweeps.mkdir()
    small = f"mount -t tmpfs -o size=3m tmpfs {sweeps}"
    run, status = _in_mount_namespace(
        tmp_path, small, [*SWEEP, str(space)], [*SWEEP, "status", str(space)]
    )
    _one_clean_line(run, "the disk is full", "run the same command again")
    finished = run.stdout.count("finished  loss=")
    assert finished >= 1  # some trials ran before the disk filled up
    assert status.returncode == 0, status.stderr  # what was recorded is intact
    found = re.search(r"(\d+) done, (\d+) running, 0 failed", status.stdout)
    assert found is not None, status.stdout
    done, running = int(found[1]), int(found[2])
    # A result the full disk kept from the study is not lost: its trial stays RUNNING,
    # with its job's name, for the next run to harvest.
    assert done >= 1 and done + running >= finished, status.stdout
