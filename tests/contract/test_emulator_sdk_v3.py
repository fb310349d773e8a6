"""The SageMaker SDK v3's ``ModelTrainer``, unmodified, against a standalone emulator: a
``SourceCode`` job runs through the SDK's own drivers (``ContainerEntrypoint`` bash,
``code`` and ``sm_drivers`` channels, ``/opt/ml`` paths) to a model in S3, and a script
that raises fails its job with the reason the drivers write.

SDK v2 and v3 share the ``sagemaker`` package name, so v3 lives in an environment of its
own: ``SWEEPER_TEST_SDK_V3_PYTHON`` names its interpreter (``.ci/run`` builds it with
``pip install '.[sdk-v3]'``); without it the test skips, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import boto3_client, emulator_info, s3_client, s3_tar_names, standalone_emulator

V3_PYTHON = os.environ.get("SWEEPER_TEST_SDK_V3_PYTHON", "")

TRAIN = textwrap.dedent(
    """
    import argparse, json, os
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    args = parser.parse_args()
    if args.lr < 0:
        raise ValueError("the learning rate must be positive")
    for epoch in range(args.epochs):
        print(f"epoch={epoch} loss={args.lr / (epoch + 1):.4f}")
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as f:
        json.dump(vars(args), f)
    """
)

# Run by the v3 interpreter: the README's snippet, and one JSON line per trainer.
DRIVER = textwrap.dedent(
    """
    import json, sys
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, SourceCode

    session = Session(default_bucket="bucket", sagemaker_config={
        "SchemaVersion": "1.0",
        "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
    })
    for name, lr in (("v3-good", 0.5), ("v3-bad", -1.0)):
        trainer = ModelTrainer(
            training_image="763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311",
            source_code=SourceCode(source_dir=sys.argv[1], entry_script="train.py"),
            compute=Compute(instance_type="ml.m5.large", instance_count=1),
            role="arn:aws:iam::123456789012:role/Test",
            hyperparameters={"epochs": 3, "lr": lr},
            base_job_name=name,
            sagemaker_session=session,
        )
        try:
            trainer.train(wait=True, logs=name == "v3-good")  # logs: the SDK tails them
            error = ""
        except Exception as exc:  # a failed job raises
            error = type(exc).__name__
        job = trainer._latest_training_job
        print("RESULT " + json.dumps({"base": name, "job": job.training_job_name, "error": error}))
    """
)


@pytest.mark.timeout(600)
def test_model_trainer_runs_a_source_code_job(tmp_path: Path) -> None:
    if not V3_PYTHON:
        pytest.skip("SWEEPER_TEST_SDK_V3_PYTHON is not set (.ci/run builds the SDK v3 env)")
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(TRAIN)
    (tmp_path / "driver.py").write_text(DRIVER)
    with standalone_emulator(tmp_path / "state") as url:
        s3_url = emulator_info(url)["s3_endpoint_url"]
        s3 = s3_client(s3_url)
        s3.create_bucket(Bucket="bucket")
        results = _drive(tmp_path / "driver.py", code, url, s3_url)
        sm = boto3_client(url)
        good = sm.describe_training_job(TrainingJobName=results["v3-good"]["job"])
        bad = sm.describe_training_job(TrainingJobName=results["v3-bad"]["job"])
        model = s3_tar_names(s3, good["ModelArtifacts"]["S3ModelArtifacts"])
        events = boto3_client(url, "logs").filter_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=bad["TrainingJobName"]
        )["events"]
    assert good["TrainingJobStatus"] == "Completed", good.get("FailureReason")
    assert good["AlgorithmSpecification"]["ContainerEntrypoint"] == ["/bin/bash"]
    assert {c["ChannelName"] for c in good["InputDataConfig"]} == {"code", "sm_drivers"}
    assert "model.json" in model
    assert results["v3-good"]["error"] == ""
    assert bad["TrainingJobStatus"] == "Failed"
    assert bad["FailureReason"].startswith("AlgorithmError: ")
    assert "'train.py'" in bad["FailureReason"]  # the drivers' failure file: the command
    assert "non-zero exit status 1" in bad["FailureReason"]
    assert any("the learning rate must be positive" in e["message"] for e in events)
    assert results["v3-bad"]["error"] != ""


def _drive(driver: Path, code: Path, url: str, s3_url: str) -> dict[str, dict[str, Any]]:
    """Run the v3 driver with nothing but the README's variables; its results by trainer."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(driver.parent)),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_SAGEMAKER": url,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": url,
        "AWS_ENDPOINT_URL_S3": s3_url,
        "AWS_ENDPOINT_URL_STS": s3_url,
        "SAGEMAKER_VALIDATE_ROLE": "false",  # v3 asks IAM about the role otherwise
    }
    done = subprocess.run(
        [V3_PYTHON, str(driver), str(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    lines = [
        json.loads(line[7:]) for line in done.stdout.splitlines() if line.startswith("RESULT ")
    ]
    assert done.returncode == 0 and len(lines) == 2, done.stderr[-3000:]
    return {line["base"]: line for line in lines}
