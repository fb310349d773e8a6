"""``sweep.py space.yaml --dry-run``: the first request and the uploads, nothing sent."""

from __future__ import annotations

import json
from pathlib import Path

from botocore.validate import ParamValidator

from sweeper.emulator import validate
from tests.helpers import run_sweep, space_doc, write_sweep
from tests.unit.test_request import CREATE

NO_AWS = {  # no credentials, no config, no metadata service: any AWS call would fail
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_REGION": "eu-west-1",
}


def test_dry_run_prints_the_first_request_and_sends_nothing(tmp_path: Path) -> None:
    doc = space_doc(backend={"kind": "sagemaker"})
    doc["estimator"] |= {
        "role": "arn:aws:iam::111122223333:role/SageMakerRole",
        "image_uri": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/train:1",
        "use_spot_instances": True,
        "max_wait": 240,
    }
    space = write_sweep(tmp_path, doc)
    result = run_sweep(str(space), "--dry-run", env=NO_AWS)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Dry run of quad on sagemaker (eu-west-1); nothing is sent." in out
    assert "<account-id>: your account, which the sweep asks STS for at launch." in out
    code = "s3://sagemaker-eu-west-1-<account-id>/quad/quad/source/"
    assert f"code: {tmp_path / 'src'} -> {code}" in out
    assert "1 files" in out and "train.py" in out
    request = json.loads(out[out.index("{") :])
    assert request["TrainingJobName"] == "quad-0-1"
    assert json.loads(request["HyperParameters"]["sagemaker_submit_directory"]).startswith(code)
    assert request["CheckpointConfig"]["S3Uri"].endswith("/quad/checkpoints/quad-0")
    report = ParamValidator().validate(request, CREATE)  # only the placeholder is not real
    assert not report.has_errors(), report.generate_report()
    assert not (tmp_path / ".sweeps").exists()  # no study, no emulator state


def test_dry_run_on_the_emulator_shows_the_request_it_would_run(tmp_path: Path) -> None:
    space = write_sweep(tmp_path)
    result = run_sweep(str(space), "--dry-run", env=NO_AWS)
    assert result.returncode == 0, result.stdout + result.stderr
    request = json.loads(result.stdout[result.stdout.index("{") :])
    validate.check(CREATE, request)
    assert request["OutputDataConfig"]["S3OutputPath"] == (
        "s3://sagemaker-eu-west-1-123456789012/quad/"
    )
    assert "SageMaker emulator on" not in result.stdout  # none was started
    assert not (tmp_path / ".sweeps").exists()
