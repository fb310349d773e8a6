"""Sweeper's CreateTrainingJob request against the SageMaker SDK's, for the same estimator.

The SDK v2 ``SKLearn`` estimator (the script-mode encoding SageMaker's framework
containers decode) is pointed at the emulator and its S3 and launches a job; the
emulator keeps the request it received (DescribeTrainingJob echoes it). Sweeper builds
its own request for the same settings from a space file, and the two are compared
field by field. Two differences are deliberate and asserted as such: Sweeper's code
archive is content-addressed (``.../source/<digest>/sourcedir.tar.gz``), and each trial
checkpoints under ``<checkpoint_s3_uri>/<sweep>-<trial>``, so trials never share
checkpoints and every attempt of one trial resumes from the last.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.validate import ParamValidator

from sweeper import config
from sweeper.aws import template
from sweeper.aws.code import pack
from sweeper.aws.names import trial_key
from sweeper.aws.training import JobOptions, build_request
from sweeper.emulator import validate
from sweeper.emulator.embedded import EmbeddedEmulator
from tests.helpers import ROOT, s3_tar_names, space_doc, write_sweep
from tests.unit.test_request import CREATE

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
METRICS = [{"Name": "validation:accuracy", "Regex": "val_accuracy=([0-9.]+)"}]
STATIC = {"max_iter": 20}
SAMPLED = {"learning_rate": 0.05, "early_stopping": "true", "max_depth": 4}
NO_TELEMETRY = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}
CASES = {
    "spot": {
        "use_spot_instances": True,
        "max_run": 600,
        "max_wait": 1200,
        "checkpoint_s3_uri": "s3://bucket/ckpt",
    },
    "warm-pool": {"max_run": 900, "keep_alive_period_in_seconds": 300},
}


def _sdk_request(emulator: EmbeddedEmulator, job: str, case: dict[str, Any]) -> dict[str, Any]:
    """Launch ``job`` with the SDK's SKLearn estimator; return the request the emulator got."""
    import sagemaker
    from sagemaker.sklearn import SKLearn

    boto = boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    client = boto.client("sagemaker", endpoint_url=emulator.endpoint_url)
    session = sagemaker.Session(
        boto_session=boto,
        sagemaker_client=client,
        default_bucket="bucket",
        sagemaker_config=NO_TELEMETRY,  # the SDK would phone home after fit() otherwise
    )
    estimator = SKLearn(
        entry_point="train.py",
        source_dir=str(ROOT / "src"),
        framework_version="1.2-1",
        py_version="py3",
        instance_type="ml.m5.large",
        instance_count=1,
        volume_size=30,
        role=ROLE,
        output_path="s3://bucket/out",
        hyperparameters={**STATIC, **SAMPLED},
        metric_definitions=METRICS,
        sagemaker_session=session,
        **case,
    )
    estimator.fit(inputs={"train": "s3://bucket/data/"}, job_name=job, wait=False, logs=False)
    described: dict[str, Any] = client.describe_training_job(TrainingJobName=job)
    return described


def _sweeper_request(tmp_path: Path, job: str, case: dict[str, Any]) -> dict[str, Any]:
    doc = space_doc(
        backend={"kind": "sagemaker", "region": "us-east-1"},
        objective={"metric": "validation:accuracy", "direction": "maximize"},
    )
    doc["estimator"] = {
        "entry_point": "train.py",
        "source_dir": str(ROOT / "src"),
        "framework": "sklearn",
        "framework_version": "1.2-1",
        "py_version": "py3",
        "instance_type": "ml.m5.large",
        "role": ROLE,
        "output_path": "s3://bucket/out",
        "hyperparameters": STATIC,
        "inputs": {"train": "s3://bucket/data/"},
        "metric_definitions": [{"name": m["Name"], "regex": m["Regex"]} for m in METRICS],
        **case,
    }
    cfg = config.load(write_sweep(tmp_path, doc))
    plan = template.plan(cfg, "us-east-1", "s3://bucket/out")
    return build_request(plan.template, job, SAMPLED, JobOptions(trial_key(cfg.name, 0)))


@pytest.fixture(autouse=True)
def _sdk_env(monkeypatch: pytest.MonkeyPatch, emulator: EmbeddedEmulator) -> None:
    """The SDK's S3 (code upload) and STS calls go to the emulator's S3 endpoint."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", emulator.s3_endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", emulator.s3_endpoint_url)
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")


@pytest.mark.parametrize("case", sorted(CASES))
def test_request_matches_the_sdk_for_the_same_estimator(
    emulator: EmbeddedEmulator, s3: Any, tmp_path: Path, case: str
) -> None:
    job = f"parity-{case}"
    theirs = _sdk_request(emulator, job, CASES[case])
    ours = _sweeper_request(tmp_path, job, CASES[case])
    report = ParamValidator().validate(ours, CREATE)  # botocore's model, then the service's
    assert not report.has_errors(), report.generate_report()
    validate.check(CREATE, ours)

    # Script mode: every hyperparameter, JSON-encoded, and the same sagemaker_* keys.
    our_hps, their_hps = dict(ours["HyperParameters"]), dict(theirs["HyperParameters"])
    our_code = json.loads(our_hps.pop("sagemaker_submit_directory"))
    their_code = json.loads(their_hps.pop("sagemaker_submit_directory"))
    assert our_hps == their_hps
    assert our_code.endswith("/sourcedir.tar.gz") and their_code.endswith("/sourcedir.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(pack(ROOT / "src"))) as tar:  # planned, not sent
        our_files = sorted(tar.getnames())
    assert our_files == sorted(n for n in s3_tar_names(s3, their_code) if "__pycache__" not in n)

    # Image, instances, stopping, spot, warm pool, data and output: the same fields.
    for key in ("TrainingImage", "TrainingInputMode", "MetricDefinitions"):
        assert ours["AlgorithmSpecification"][key] == theirs["AlgorithmSpecification"][key]
    for key in ("RoleArn", "ResourceConfig", "StoppingCondition", "InputDataConfig"):
        assert ours[key] == theirs[key], key
    assert ours["OutputDataConfig"]["S3OutputPath"] == theirs["OutputDataConfig"]["S3OutputPath"]
    assert ours.get("EnableManagedSpotTraining", False) == theirs.get(
        "EnableManagedSpotTraining", False
    )
    if "CheckpointConfig" in theirs:
        trial = "quad-0"  # <sweep>-<trial>: every attempt of trial 0 shares it
        assert ours["CheckpointConfig"]["S3Uri"] == f"{theirs['CheckpointConfig']['S3Uri']}/{trial}"
    else:
        assert "CheckpointConfig" not in ours
