"""An SDK v2 Estimator as the job template: Sweeper's CreateTrainingJob request for a
trial against the request the SDK's own ``fit(wait=False)`` sends, field by field.

Each estimator is launched twice against the emulator: once by the SDK itself (with the
trial's hyperparameters added to its own), its request read back with
DescribeTrainingJob; once through ``sweeper.Sweep(spec, estimator=...)``. The requests
must be equal but for what is deliberately the trial's: its job name, its code archive
(content-addressed, packed by Sweeper), its checkpoint prefix and its Experiments run.
The user's Estimator is unchanged by the sweep.
"""

from __future__ import annotations

import copy
import io
import json
import tarfile
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.validate import ParamValidator

import sweeper
from sweeper.aws import template
from sweeper.aws.code import pack
from sweeper.aws.names import trial_key
from sweeper.aws.training import JobOptions
from sweeper.backend import Endpoints
from sweeper.emulator import validate
from sweeper.emulator.embedded import EmbeddedEmulator
from tests.helpers import ROOT, s3_tar_names
from tests.unit.test_request import CREATE

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
METRICS = [{"Name": "validation:accuracy", "Regex": "val_accuracy=([0-9.]+)"}]
STATIC = {"max_iter": 20, "early_stopping": "true"}
SAMPLED = {"learning_rate": 0.05, "max_depth": 4}
NO_TELEMETRY = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}
INPUTS = {"train": "s3://bucket/data/"}
SPEC = {
    "name": "tmpl",
    "objective": {"metric": "validation:accuracy", "direction": "maximize"},
    "budget": {"max_trials": 2, "max_parallel": 1},
    "space": {
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3},
        "max_depth": {"type": "int", "low": 2, "high": 8},
    },
    "backend": {"region": "us-east-1"},
}


def _session(emulator: EmbeddedEmulator) -> Any:
    import sagemaker

    boto = boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    return sagemaker.Session(
        boto_session=boto,
        sagemaker_client=boto.client("sagemaker", endpoint_url=emulator.endpoint_url),
        default_bucket="bucket",
        sagemaker_config=NO_TELEMETRY,
    )


def _sklearn(session: Any, hyperparameters: dict[str, Any], **extra: Any) -> Any:
    from sagemaker.sklearn import SKLearn

    return SKLearn(
        entry_point="train.py",
        source_dir=str(ROOT / "src"),
        framework_version="1.2-1",
        py_version="py3",
        instance_type="ml.m5.large",
        role=ROLE,
        output_path="s3://bucket/out",
        hyperparameters=hyperparameters,
        metric_definitions=METRICS,
        sagemaker_session=session,
        environment={"MODE": "sweep"},
        **extra,
    )


def _pytorch(session: Any, hyperparameters: dict[str, Any], **extra: Any) -> Any:
    from sagemaker.pytorch import PyTorch

    return PyTorch(
        entry_point="train.py",
        source_dir=str(ROOT / "src"),
        framework_version="2.3.0",
        py_version="py311",
        instance_type="ml.g5.xlarge",
        instance_count=2,
        role=ROLE,
        output_path="s3://bucket/out",
        hyperparameters=hyperparameters,
        metric_definitions=METRICS,
        sagemaker_session=session,
        distribution={"torch_distributed": {"enabled": True}},
        use_spot_instances=True,
        max_run=600,
        max_wait=1200,
        checkpoint_s3_uri="s3://bucket/ckpt",
        **extra,
    )


def _plain(session: Any, hyperparameters: dict[str, Any], **extra: Any) -> Any:
    from sagemaker.estimator import Estimator

    return Estimator(
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/my-trainer:1",
        entry_point="train.py",
        source_dir=str(ROOT / "src"),
        instance_type="ml.m5.xlarge",
        instance_count=1,
        role=ROLE,
        output_path="s3://bucket/out",
        hyperparameters=hyperparameters,
        metric_definitions=METRICS,
        sagemaker_session=session,
        keep_alive_period_in_seconds=300,
        max_run=900,
        **extra,
    )


CASES: dict[str, Callable[..., Any]] = {"sklearn": _sklearn, "pytorch": _pytorch, "plain": _plain}


@pytest.fixture(autouse=True)
def _sdk_env(monkeypatch: pytest.MonkeyPatch, emulator: EmbeddedEmulator) -> None:
    """The SDK's own S3 calls (its code upload) go to the emulator's S3."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", emulator.s3_endpoint_url)
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")


async def _sweepers_request(
    emulator: EmbeddedEmulator, estimator: Any, base: Path
) -> dict[str, Any]:
    sweep = sweeper.Sweep(dict(SPEC), base_dir=base, estimator=estimator, inputs=INPUTS)
    ends = Endpoints(
        "us-east-1", emulator.endpoint_url, emulator.s3_endpoint_url, template.EMULATOR_CREDENTIALS
    )
    async with AsyncExitStack() as stack:
        ready = await sweep._jobs.prepare(sweep.config, ends, stack, lambda _: None)
    return ready.build("parity-job", dict(SAMPLED), JobOptions(trial_key("tmpl", 0)))


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_trials_request_is_the_sdks_own(
    emulator: EmbeddedEmulator, s3: Any, tmp_path: Path, case: str
) -> None:
    make = CASES[case]
    session = _session(emulator)
    sent: list[dict[str, Any]] = []  # the SDK's request as its client sends it
    session.sagemaker_client.meta.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob",
        lambda params, **_: sent.append(copy.deepcopy(params)),
    )
    make(session, {**STATIC, **SAMPLED}).fit(
        inputs=INPUTS, job_name="parity-job", wait=False, logs=False
    )
    (theirs,) = sent
    ours_estimator = make(_session(emulator), dict(STATIC))
    before = copy.copy(vars(ours_estimator))
    ours = await _sweepers_request(emulator, ours_estimator, tmp_path)
    ours_estimator_hps = ours_estimator.hyperparameters()

    report = ParamValidator().validate(ours, CREATE)  # botocore's model, then the service's
    assert not report.has_errors(), report.generate_report()
    validate.check(CREATE, ours)

    # The SDK's encoding of every hyperparameter; the code archive is Sweeper's own.
    our_hps, their_hps = dict(ours.pop("HyperParameters")), dict(theirs["HyperParameters"])
    our_code = json.loads(our_hps.pop("sagemaker_submit_directory"))
    their_code = json.loads(their_hps.pop("sagemaker_submit_directory"))
    assert our_hps == their_hps
    assert our_code.startswith("s3://bucket/out/tmpl/source/")
    with tarfile.open(fileobj=io.BytesIO(pack(ROOT / "src"))) as tar:
        assert sorted(tar.getnames()) == sorted(
            n for n in s3_tar_names(s3, their_code) if "__pycache__" not in n
        )

    # Each trial checkpoints under its own prefix; everything else is the SDK's request.
    if "CheckpointConfig" in theirs:
        their_uri = theirs["CheckpointConfig"]["S3Uri"]
        assert ours.pop("CheckpointConfig") == {"S3Uri": f"{their_uri}/tmpl-0"}
    assert "ExperimentConfig" not in ours  # each trial's run is added as it launches
    for key, value in ours.items():
        assert theirs.get(key) == value, key
    sent_by_sdk = {"CheckpointConfig", "HyperParameters"}
    missing = {k for k in set(CREATE.members) & set(theirs) if k not in ours} - sent_by_sdk
    assert not missing, missing

    # The user's Estimator is as it was: same attributes, same hyperparameters.
    assert ours_estimator_hps == make(_session(emulator), dict(STATIC)).hyperparameters()
    assert {k: v for k, v in vars(ours_estimator).items() if k != "sagemaker_session"} == {
        k: v for k, v in before.items() if k != "sagemaker_session"
    }


def test_a_hyperparameter_both_set_and_sampled_is_refused(
    emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    estimator = _sklearn(_session(emulator), {**STATIC, "learning_rate": 0.1})
    with pytest.raises(sweeper.ConfigError) as caught:
        sweeper.Sweep(dict(SPEC), base_dir=tmp_path, estimator=estimator)
    assert str(caught.value).startswith("space.learning_rate: the Estimator already sets")
    assert "\n" not in str(caught.value)


def test_sagemaker_without_a_role_is_refused_before_anything_is_sent(
    emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    from sagemaker.estimator import Estimator

    estimator = Estimator(
        image_uri="img:1",
        entry_point="train.py",
        source_dir=str(ROOT / "src"),
        instance_type="ml.m5.large",
        instance_count=1,
        role=ROLE,
        metric_definitions=METRICS,
        sagemaker_session=_session(emulator),
    )
    estimator.role = None  # the SDK checks it as the Estimator is made, and at fit()
    spec = dict(SPEC, backend={"kind": "sagemaker", "region": "us-east-1"})
    with pytest.raises(sweeper.ConfigError, match=r"^estimator.role: the Estimator has no role"):
        sweeper.Sweep(spec, base_dir=tmp_path, estimator=estimator)
