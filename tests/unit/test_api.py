"""The Python API's contract without a backend: the same validation as the space file,
bad input refused before anything starts, and a trial's request from an SDK template."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

import sweeper
from sweeper import config
from sweeper.api.sdk_jobs import SdkTemplate
from sweeper.aws.training import JobOptions
from sweeper.study import SweepStudy
from tests.helpers import ROOT, space_doc, write_sweep


def test_import_sweeper_loads_none_of_the_sweep_machinery() -> None:
    probe = (
        "import sys, sweeper; heavy = ('optuna', 'aiobotocore', 'sqlalchemy', 'sweeper.api');"
        " print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert sweeper.Sweep.__module__ == "sweeper.api.sweep"  # loads on first use


@pytest.mark.parametrize(
    "change",
    [
        {"objective": {"metric": "loss", "direction": "up"}},
        {"space": {"x": {"type": "float", "low": 1.0, "high": 0.0}}},
        {"budget": {"max_trials": 0}},
        {"nmae": "typo"},
    ],
)
def test_a_dict_is_refused_with_the_space_files_own_message(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    doc = space_doc(**change)
    path = write_sweep(tmp_path, doc)
    with pytest.raises(sweeper.ConfigError) as from_file:
        config.load(path)
    with pytest.raises(sweeper.ConfigError) as from_dict:
        sweeper.Sweep(yaml.safe_load(path.read_text()), base_dir=tmp_path)
    with pytest.raises(sweeper.ConfigError) as through_api:
        sweeper.Sweep.from_file(path)
    assert str(from_file.value) == f"{path}: {from_dict.value}"
    assert str(through_api.value) == str(from_file.value)
    assert "\n" not in str(from_dict.value)


def test_a_dict_resolves_paths_and_keeps_state_under_base_dir(tmp_path: Path) -> None:
    write_sweep(tmp_path)
    sweep = sweeper.Sweep(space_doc(), base_dir=tmp_path)
    assert sweep.config.estimator.source_dir == (tmp_path / "src").resolve()
    assert sweep.config.home == tmp_path.resolve() / ".sweeps"
    assert sweep.name == "quad"


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        (object(), r"^estimator: builtins\.object is not a SageMaker SDK v2 Estimator"),
        (type("ModelTrainer", (), {})(), r"^estimator: an SDK v3 ModelTrainer is not supported"),
    ],
)
def test_what_is_not_an_sdk_estimator_is_refused(
    tmp_path: Path, estimator: object, expected: str
) -> None:
    doc = space_doc()
    del doc["estimator"]
    with pytest.raises(sweeper.ConfigError, match=expected):
        sweeper.Sweep(doc, base_dir=tmp_path, estimator=estimator)


def test_inputs_without_an_estimator_and_a_config_with_one_are_refused(tmp_path: Path) -> None:
    write_sweep(tmp_path)
    with pytest.raises(sweeper.ConfigError, match=r"^inputs: only with an estimator"):
        sweeper.Sweep(space_doc(), base_dir=tmp_path, inputs={"train": "s3://b/d/"})
    cfg = sweeper.Sweep(space_doc(), base_dir=tmp_path).config
    with pytest.raises(sweeper.ConfigError, match=r"^estimator: pass the spec as a dict"):
        sweeper.Sweep(cfg, estimator=object())


def test_run_inside_a_running_loop_says_to_await_run_async(tmp_path: Path) -> None:
    write_sweep(tmp_path)
    sweep = sweeper.Sweep(space_doc(), base_dir=tmp_path)

    async def cell() -> None:
        sweep.run()

    with pytest.raises(sweeper.SweepError, match=r"use `await sweep\.run_async\(\)`"):
        asyncio.run(cell())
    assert not (tmp_path / ".sweeps").exists()  # nothing started


SDK_REQUEST = {
    "TrainingJobName": "quad-0-1",
    "HyperParameters": {
        "max_iter": "20",
        "sagemaker_job_name": '"quad-0-1"',
        "sagemaker_program": '"train.py"',
    },
    "ResourceConfig": {"InstanceType": "ml.m5.large", "KeepAlivePeriodInSeconds": 300},
    "StoppingCondition": {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200},
    "EnableManagedSpotTraining": True,
    "CheckpointConfig": {"S3Uri": "s3://b/ckpt", "LocalPath": "/opt/ml/checkpoints"},
}


def test_a_trials_request_is_the_template_with_the_trials_name_params_and_checkpoints() -> None:
    tmpl = SdkTemplate(json.loads(json.dumps(SDK_REQUEST)), True, "s3://b/ckpt")
    request = tmpl.build("quad-3-2", {"lr": 0.1, "deep": True}, JobOptions("quad-3"))
    assert request["TrainingJobName"] == "quad-3-2"
    assert request["HyperParameters"] == {
        "max_iter": "20",
        "sagemaker_job_name": '"quad-3-2"',
        "sagemaker_program": '"train.py"',
        "lr": "0.1",
        "deep": "true",
    }
    assert request["CheckpointConfig"] == {
        "S3Uri": "s3://b/ckpt/quad-3",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert request["EnableManagedSpotTraining"] is True
    assert tmpl.request == SDK_REQUEST  # the template is never changed


def test_a_plain_estimators_values_are_strings_and_fallbacks_drop_spot_and_pools() -> None:
    tmpl = SdkTemplate(json.loads(json.dumps(SDK_REQUEST)), False, None)
    request = tmpl.build("quad-1-1", {"deep": True}, JobOptions("quad-1", True, False))
    assert request["HyperParameters"]["deep"] == "True"  # str(), as the SDK's Estimator
    assert "EnableManagedSpotTraining" not in request
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 600}
    assert request["ResourceConfig"] == {"InstanceType": "ml.m5.large"}
    assert request["CheckpointConfig"]["S3Uri"] == "s3://b/ckpt"  # the SDK's, untouched


def test_an_estimators_other_settings_belong_on_the_estimator(tmp_path: Path) -> None:
    from sweeper.api import estimators

    class Fake:
        entry_point, source_dir, dependencies = "train.py", str(ROOT / "src"), []

    with pytest.raises(sweeper.ConfigError, match=r"^estimator\.max_run: set it on the Estim"):
        estimators.section(Fake(), {"max_run": 10})
    with pytest.raises(sweeper.ConfigError, match=r"did you mean 'spot_fallback'"):
        estimators.section(Fake(), {"spot_fallbak": "on_demand"})


def test_open_by_storage_reads_the_studys_own_spec_and_refuses_what_is_not_there(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    with pytest.raises(sweeper.ConfigError, match="no sweep named 'quad'"):
        sweeper.open(storage=url, name="quad")  # no file yet
    SweepStudy.open(config.load(write_sweep(tmp_path, space_doc(storage=url)))).close()
    optuna.create_study(storage=url, study_name="plain")
    view = sweeper.open(storage=url, name="quad")
    assert [p.name for p in view.config.space] == ["x"]
    assert view.config.objective == config.load(tmp_path / "space.yaml").objective
    assert view.trials_dataframe().empty and view.best_trial is None
    with pytest.raises(sweeper.ConfigError, match="no sweep named 'other'"):
        sweeper.open(storage=url, name="other")
    with pytest.raises(sweeper.ConfigError, match="not made by Sweeper"):
        sweeper.open(storage=url, name="plain")
    for wrong in ({}, {"storage": url}, {"name": "quad"}):
        with pytest.raises(sweeper.ConfigError, match=r"sweeper\.open"):
            sweeper.open(**wrong)
    with pytest.raises(sweeper.ConfigError, match="without one"):
        sweeper.open(tmp_path / "space.yaml", storage=url, name="quad")
