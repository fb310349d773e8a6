"""The CreateTrainingJob request: SDK-style hyperparameters, valid for botocore's model."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator

from sweeper import config
from sweeper.aws import template
from sweeper.aws.training import JobOptions, JobTemplate, build_request
from sweeper.emulator import validate
from tests.helpers import space_doc, write_sweep

MODEL = botocore.session.get_session().get_service_model("sagemaker")
CREATE = MODEL.operation_model("CreateTrainingJob").input_shape


def _template(tmp_path: Path, **estimator: object) -> JobTemplate:
    doc = space_doc()
    doc["estimator"] |= estimator
    cfg = config.load(write_sweep(tmp_path, doc))
    return template.plan(cfg, "us-east-1", "s3://bucket/out/").template


def test_request_is_valid_for_botocore_and_the_service_constraints(tmp_path: Path) -> None:
    request = build_request(
        _template(tmp_path), "quad-3-1", {"x": 0.25, "opt": "adam"}, JobOptions("quad-3")
    )
    report = ParamValidator().validate(request, CREATE)
    assert not report.has_errors(), report.generate_report()
    validate.check(CREATE, request)  # max, pattern and enum too


def test_hyperparameters_are_strings_encoded_like_the_sdk(tmp_path: Path) -> None:
    tmpl = _template(tmp_path, hyperparameters={"epochs": 3, "flag": True})
    hps = build_request(
        tmpl, "quad-3-1", {"x": 0.25, "opt": "adam", "epochs": 5}, JobOptions("quad-3")
    )["HyperParameters"]
    assert all(isinstance(v, str) for v in hps.values())
    assert hps["x"] == "0.25"
    assert hps["opt"] == '"adam"'
    assert hps["epochs"] == "5"  # the sampled value overrides the static one
    assert hps["flag"] == "true"
    assert json.loads(hps["sagemaker_program"]) == "train.py"
    code = json.loads(hps["sagemaker_submit_directory"])
    assert re.fullmatch(r"s3://bucket/out/quad/source/[0-9a-f]{16}/sourcedir\.tar\.gz", code)
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
        "quad-0-2",
        {"x": 0.5},
        JobOptions("quad-0"),
    )
    assert spot["EnableManagedSpotTraining"] is True
    assert spot["StoppingCondition"] == {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200}
    # per trial, not per job: attempt 2 (and a fallback) resume from attempt 1's checkpoints
    assert spot["CheckpointConfig"] == {"S3Uri": "s3://bucket/ckpt/quad-0"}
    assert "KeepAlivePeriodInSeconds" not in spot["ResourceConfig"]
    tmpl = _template(tmp_path, keep_alive_period_in_seconds=300)
    warm = build_request(tmpl, "quad-0-1", {}, JobOptions("quad-0"))
    assert warm["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 300
    assert "EnableManagedSpotTraining" not in warm
    cold = build_request(tmpl, "quad-0-1", {}, JobOptions("quad-0", warm_pool=False))
    assert "KeepAlivePeriodInSeconds" not in cold["ResourceConfig"]  # the pool quota is spent
    for request in (spot, warm, cold):
        validate.check(CREATE, request)


def test_an_on_demand_fallback_drops_spot_and_keeps_the_trials_checkpoints(tmp_path: Path) -> None:
    tmpl = _template(tmp_path, use_spot_instances=True, max_run=600, max_wait=1200)
    request = build_request(tmpl, "quad-4-2", {"x": 0.5}, JobOptions("quad-4", on_demand=True))
    assert "EnableManagedSpotTraining" not in request
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 600}
    assert request["CheckpointConfig"]["S3Uri"] == "s3://bucket/out/quad/checkpoints/quad-4"
    validate.check(CREATE, request)


def _sagemaker(tmp_path: Path, **estimator: object) -> config.SweepConfig:
    doc = space_doc(backend={"kind": "sagemaker", "region": "eu-west-1"})
    doc["estimator"] |= {"role": "arn:aws:iam::111122223333:role/SageMakerRole", **estimator}
    return config.load(write_sweep(tmp_path, doc))


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        ({"role": None}, r"estimator\.role: required .*aws iam list-roles"),
        ({}, r"estimator\.image_uri: required .*framework_version"),
        ({"image_uri": "img", "inputs": {"train": "."}}, r"inputs\.train: a local path .*s3://"),
        ({"framework": "sklearn", "framework_version": "0.0-9"}, r"estimator\.framework: .*"),
    ],
)
def test_what_a_real_account_needs_is_asked_for(
    tmp_path: Path, estimator: dict[str, object], message: str
) -> None:
    cfg = _sagemaker(tmp_path, **{k: v for k, v in estimator.items() if v is not None})
    if estimator.get("role", "") is None:
        cfg = dataclasses.replace(cfg, estimator=dataclasses.replace(cfg.estimator, role=None))
    with pytest.raises(config.ConfigError, match=message):
        template.plan(cfg, "eu-west-1", "s3://bucket/out/")


def test_region_comes_from_the_aws_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = space_doc(backend={"kind": "sagemaker"})
    cfg = config.load(write_sweep(tmp_path, doc))
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(config.ConfigError, match=r"backend\.region: no AWS region .*AWS_REGION"):
        template.region(cfg)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert template.region(cfg) == "ap-south-1"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert template.region(cfg) == "eu-central-1"
    pinned = dataclasses.replace(cfg, backend=dataclasses.replace(cfg.backend, region="us-west-2"))
    assert template.region(pinned) == "us-west-2"


def test_sagemaker_request_is_valid_with_the_sdk_image_for_the_region(tmp_path: Path) -> None:
    cfg = _sagemaker(
        tmp_path,
        framework="sklearn",
        framework_version="1.2-1",
        py_version="py3",
        use_spot_instances=True,
        max_wait=7200,
        max_run=3600,
    )
    plan = template.plan(cfg, "eu-west-1", "s3://bucket/out/")
    request = build_request(plan.template, "quad-0-1", {"x": 0.5}, JobOptions("quad-0"))
    report = ParamValidator().validate(request, CREATE)
    assert not report.has_errors(), report.generate_report()
    validate.check(CREATE, request)
    image = request["AlgorithmSpecification"]["TrainingImage"]
    assert re.fullmatch(
        r"\d{12}\.dkr\.ecr\.eu-west-1\.amazonaws\.com/sagemaker-scikit-learn:1\.2-1-cpu-py3", image
    )
    # Spot without a checkpoint_s3_uri still checkpoints, per trial, under the sweep's prefix.
    assert request["CheckpointConfig"] == {"S3Uri": "s3://bucket/out/quad/checkpoints/quad-0"}
    assert [u.kind for u in plan.uploads] == ["code"]
