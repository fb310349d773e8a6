"""The CreateTrainingJob request: SDK-style hyperparameters, valid for botocore's model."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator

from sweeper import config
from sweeper.aws.training import JobTemplate, build_request
from sweeper.cli import job_template
from sweeper.emulator import validate
from tests.helpers import space_doc, write_sweep

MODEL = botocore.session.get_session().get_service_model("sagemaker")
CREATE = MODEL.operation_model("CreateTrainingJob").input_shape


def _template(tmp_path: Path, **estimator: object) -> JobTemplate:
    doc = space_doc()
    doc["estimator"] |= estimator
    return job_template(config.load(write_sweep(tmp_path, doc)))


def test_request_is_valid_for_botocore_and_the_service_constraints(tmp_path: Path) -> None:
    request = build_request(_template(tmp_path), "quad-3-1", {"x": 0.25, "opt": "adam"})
    report = ParamValidator().validate(request, CREATE)
    assert not report.has_errors(), report.generate_report()
    validate.check(CREATE, request)  # max, pattern and enum too


def test_hyperparameters_are_strings_encoded_like_the_sdk(tmp_path: Path) -> None:
    tmpl = _template(tmp_path, hyperparameters={"epochs": 3, "flag": True})
    hps = build_request(tmpl, "quad-3-1", {"x": 0.25, "opt": "adam", "epochs": 5})[
        "HyperParameters"
    ]
    assert all(isinstance(v, str) for v in hps.values())
    assert hps["x"] == "0.25"
    assert hps["opt"] == '"adam"'
    assert hps["epochs"] == "5"  # the sampled value overrides the static one
    assert hps["flag"] == "true"
    assert json.loads(hps["sagemaker_program"]) == "train.py"
    assert json.loads(hps["sagemaker_submit_directory"]) == str((tmp_path / "src").resolve())
    assert json.loads(hps["sagemaker_job_name"]) == "quad-3-1"


def test_spot_checkpoint_and_warm_pool_fields(tmp_path: Path) -> None:
    spot = build_request(
        _template(
            tmp_path,
            use_spot_instances=True,
            max_run=600,
            max_wait=1200,
            checkpoint_s3_uri="s3://bucket/ckpt/",
        ),
        "quad-0-1",
        {"x": 0.5},
    )
    assert spot["EnableManagedSpotTraining"] is True
    assert spot["StoppingCondition"] == {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200}
    assert spot["CheckpointConfig"] == {"S3Uri": "s3://bucket/ckpt/quad-0-1"}
    assert "KeepAlivePeriodInSeconds" not in spot["ResourceConfig"]
    warm = build_request(_template(tmp_path, keep_alive_period_in_seconds=300), "quad-0-1", {})
    assert warm["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 300
    assert "EnableManagedSpotTraining" not in warm
    for request in (spot, warm):
        validate.check(CREATE, request)


def test_sagemaker_backend_without_role_says_how_to_find_one(tmp_path: Path) -> None:
    doc = space_doc(backend={"kind": "sagemaker"})
    with pytest.raises(config.ConfigError, match=r"estimator\.role: required .*aws iam list-roles"):
        job_template(config.load(write_sweep(tmp_path, doc)))
