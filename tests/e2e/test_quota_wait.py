"""A quota refusal never fails a trial: with nothing of the sweep's own running to free
capacity, the sweep says which quota and tries again after a growing wait."""

from __future__ import annotations

from pathlib import Path

from optuna.trial import TrialState

from tests.helpers import (
    PROBE,
    boto3_client,
    emulator_info,
    job_request,
    read_line,
    s3_client,
    space_doc,
    standalone_emulator,
    start_sweep,
    sweep_trials,
    write_sweep,
)


def test_a_quota_spent_by_someone_else_makes_the_sweep_wait_not_fail(tmp_path: Path) -> None:
    code = tmp_path / "other"
    code.mkdir()
    (code / "probe.py").write_text(PROBE)
    with standalone_emulator(tmp_path / "state", "--instance-quota", "1") as url:
        s3_client(emulator_info(url)["s3_endpoint_url"]).create_bucket(Bucket="bucket")
        sm = boto3_client(url)
        sm.create_training_job(**job_request("someone-else", code, "hang"))  # the one instance
        doc = space_doc(
            budget={"max_trials": 2, "max_parallel": 2, "max_failures": 1},
            backend={"kind": "emulator", "endpoint_url": url},
        )
        space = write_sweep(tmp_path, doc)
        sweep = start_sweep(str(space))
        try:
            seen = ""
            while "nothing is running to free it: trying again in 5 s" not in seen:
                line = read_line(sweep, timeout=60)
                assert line, seen  # the sweep ended instead of waiting
                seen += line
            sm.stop_training_job(TrainingJobName="someone-else")  # the instance comes free
            rest, _ = sweep.communicate(timeout=120)
        finally:
            sweep.kill()
    assert sweep.returncode == 0, seen + rest
    assert "quota 'ml.m5.large for training job usage' (now 1) is spent" in seen
    assert [t.state for t in sweep_trials(space)] == [TrialState.COMPLETE] * 2
