"""A job that names its own ``ContainerEntrypoint`` runs that argument list as its
container would, with its tree, channels included, at ``/opt/ml`` (how the SageMaker
SDK v3's ``ModelTrainer`` runs code; ``test_emulator_sdk_v3.py`` drives the SDK itself).
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sweeper.emulator.embedded import EmbeddedEmulator
from tests.helpers import job_request, s3_tar_names, wait_for_job

# Reads the container contract's absolute paths only: no SM_* variable tells it where.
PROGRAM = textwrap.dedent(
    """
    import json, os, sys
    hps = json.load(open("/opt/ml/input/config/hyperparameters.json"))
    rows = open("/opt/ml/input/data/train/rows.csv").read().split()
    print("ARGS " + json.dumps(sys.argv[1:]))
    print("SEEN " + json.dumps({"hps": hps, "rows": rows, "cwd": os.getcwd(), "sm": sorted(
        k for k in os.environ if k.startswith("SM_"))}))
    for epoch in range(int(hps["epochs"])):
        print(f"epoch={epoch} loss={1 / (epoch + 1):.3f}")
    open("/opt/ml/model/weights.txt", "w").write("w")
    """
)


def _entrypoint_job(name: str, code: Path, command: list[str]) -> dict[str, Any]:
    request = job_request(name, code, HyperParameters={"epochs": "3"})
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = command[:1]
    if command[1:]:
        request["AlgorithmSpecification"]["ContainerArguments"] = command[1:]
    request["InputDataConfig"] = [
        {
            "ChannelName": channel,
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://bucket/{channel}/"}
            },
        }
        for channel in ("train", "code")
    ]
    return request


def _host_opt_ml() -> bool:
    return os.path.exists("/opt/ml")


async def _run(sagemaker: Any, request: dict[str, Any]) -> dict[str, Any]:
    await sagemaker.create_training_job(**request)
    job = await wait_for_job(sagemaker, request["TrainingJobName"], timeout=60)
    if "does not allow" in job.get("FailureReason", ""):
        pytest.skip(job["FailureReason"])  # no mount namespaces on this machine
    return job


async def test_an_entrypoint_runs_as_an_argument_list_with_its_tree_at_opt_ml(
    sagemaker: Any, emulator: EmbeddedEmulator, s3: Any, code_dir: Path
) -> None:
    s3.put_object(Bucket="bucket", Key="train/rows.csv", Body=b"1,2\n3,4\n")
    s3.put_object(Bucket="bucket", Key="code/program.py", Body=PROGRAM.encode())
    host_opt_ml = _host_opt_ml()
    program = "/opt/ml/input/data/code/program.py"
    command = ["python3", program, "two words", "$HOME;rm -rf x"]
    job = await _run(sagemaker, _entrypoint_job("entry-1", code_dir, command))
    log = emulator.emulator.logs.text("entry-1")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert json.loads(log.split("ARGS ", 1)[1].splitlines()[0]) == ["two words", "$HOME;rm -rf x"]
    seen = json.loads(log.split("SEEN ", 1)[1].splitlines()[0])
    assert seen == {"hps": {"epochs": "3"}, "rows": ["1,2", "3,4"], "cwd": "/opt/ml/code", "sm": []}
    assert job["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python3"]
    assert {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]} == {"loss": 0.333}
    assert "weights.txt" in s3_tar_names(s3, job["ModelArtifacts"]["S3ModelArtifacts"])
    assert _host_opt_ml() == host_opt_ml  # nothing mounted on the host


async def test_an_entrypoint_that_fails_or_cannot_run_fails_its_job_saying_why(
    sagemaker: Any, emulator: EmbeddedEmulator, s3: Any, code_dir: Path
) -> None:
    s3.put_object(Bucket="bucket", Key="train/rows.csv", Body=b"1\n")
    s3.put_object(Bucket="bucket", Key="code/program.py", Body=PROGRAM.encode())
    exits = ["python3", "-c", "import sys; print('bad input', file=sys.stderr); sys.exit(3)"]
    failed = await _run(sagemaker, _entrypoint_job("entry-exit", code_dir, exits))
    missing = await _run(sagemaker, _entrypoint_job("entry-none", code_dir, ["/no/such/bin"]))
    assert failed["TrainingJobStatus"] == "Failed"
    assert "ExitCode 3" in failed["FailureReason"]
    assert "bad input" in failed["FailureReason"]
    assert 'Command "python3 -c import sys;' in failed["FailureReason"]
    assert missing["TrainingJobStatus"] == "Failed"
    assert "cannot run the ContainerEntrypoint /no/such/bin" in missing["FailureReason"]


async def test_a_job_with_neither_a_program_nor_an_entrypoint_fails_saying_so(
    sagemaker: Any, emulator: EmbeddedEmulator, code_dir: Path
) -> None:
    request = job_request("neither-1", code_dir, HyperParameters={"epochs": "3"})
    await sagemaker.create_training_job(**request)
    job = await wait_for_job(sagemaker, "neither-1")
    assert job["TrainingJobStatus"] == "Failed"
    assert "sagemaker_program" in job["FailureReason"]
    assert "ContainerEntrypoint" in job["FailureReason"]
