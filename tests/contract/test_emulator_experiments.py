"""SageMaker Experiments in the emulator, through unmodified boto3 clients."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sweeper.emulator.embedded import EmbeddedEmulator
from tests.helpers import boto3_client, embedded_emulator, job_request, wait_for_job

QUOTA_MESSAGE = (
    "The account-level service limit 'Total number of trial components allowed in a single"
    " trial, excluding those automatically created by SageMaker' is 3 Trial Components, with"
    " current utilization of 3 Trial Components and a request delta of 1 Trial Components."
)


@pytest.fixture
def small_quota(tmp_path: Path) -> Any:
    with embedded_emulator(tmp_path / "emu") as emu:
        emu.emulator.experiments.component_quota = 3
        yield emu


def _run(sm: Any, exp: str, run: str, group: str) -> str:
    name = f"{exp}-{run}"
    sm.create_trial_component(
        TrialComponentName=name,
        DisplayName=run,
        Tags=[{"Key": "sagemaker:trial-component-source", "Value": "run"}],
        Parameters={"lr": {"NumberValue": 0.1}, "opt": {"StringValue": "adam"}},
    )
    sm.associate_trial_component(TrialComponentName=name, TrialName=group)
    return name


def test_runs_group_search_and_quota(small_quota: EmbeddedEmulator) -> None:
    sm = boto3_client(small_quota.endpoint_url)
    sm.create_experiment(ExperimentName="exp")
    sm.create_trial(TrialName="Default-Run-Group-exp", ExperimentName="exp")
    with pytest.raises(ClientError) as dup:
        sm.create_experiment(ExperimentName="exp")
    assert dup.value.response["Error"]["Code"] == "ValidationException"
    assert "already exists" in dup.value.response["Error"]["Message"]  # what the SDK checks
    names = [_run(sm, "exp", f"r{i}", "Default-Run-Group-exp") for i in range(3)]
    with pytest.raises(ClientError) as full:
        _run(sm, "exp", "r3", "Default-Run-Group-exp")
    assert full.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert full.value.response["Error"]["Message"].startswith(QUOTA_MESSAGE)

    listed = sm.list_trial_components(ExperimentName="exp", MaxResults=100)
    assert sorted(c["TrialComponentName"] for c in listed["TrialComponentSummaries"]) == names
    found = sm.search(
        Resource="ExperimentTrialComponent",
        SearchExpression={
            "Filters": [
                {
                    "Name": "Parents.TrialName",
                    "Operator": "Equals",
                    "Value": "Default-Run-Group-exp",
                },
                {
                    "Name": "Tags.sagemaker:trial-component-source",
                    "Operator": "Equals",
                    "Value": "run",
                },
            ]
        },
        MaxResults=100,
    )["Results"]
    assert len(found) == 3
    component = found[0]["TrialComponent"]
    assert component["Parents"] == [{"TrialName": "Default-Run-Group-exp", "ExperimentName": "exp"}]
    assert component["Parameters"]["opt"] == {"StringValue": "adam"}


def test_batch_put_metrics_rolls_into_the_component(emulator: EmbeddedEmulator) -> None:
    sm = boto3_client(emulator.endpoint_url)
    metrics = boto3_client(emulator.endpoint_url, "sagemaker-metrics")
    sm.create_trial_component(TrialComponentName="exp-run-1")
    now = time.time()
    data = [
        {"MetricName": "loss", "Timestamp": now + i, "Step": i, "Value": 1.0 / (i + 1)}
        for i in range(10)
    ]
    assert "Errors" not in metrics.batch_put_metrics(
        TrialComponentName="exp-run-1", MetricData=data
    )
    with pytest.raises(ClientError) as too_many:  # at most 10 values per call
        metrics.batch_put_metrics(TrialComponentName="exp-run-1", MetricData=data + data[:1])
    assert too_many.value.response["Error"]["Code"] == "ValidationException"
    (summary,) = sm.describe_trial_component(TrialComponentName="exp-run-1")["Metrics"]
    assert (summary["MetricName"], summary["Count"], summary["Last"], summary["Max"]) == (
        "loss",
        10,
        pytest.approx(0.1),
        1.0,
    )


async def test_a_job_with_experiment_config_gets_its_own_component(
    sagemaker: Any, emulator: EmbeddedEmulator, code_dir: Path
) -> None:
    sm = boto3_client(emulator.endpoint_url)
    sm.create_experiment(ExperimentName="exp")
    sm.create_trial(TrialName="Default-Run-Group-exp", ExperimentName="exp")
    config = {"ExperimentName": "exp", "TrialName": "Default-Run-Group-exp", "RunName": "exp-r0"}
    await sagemaker.create_training_job(**job_request("xp-1", code_dir, ExperimentConfig=config))
    job = await wait_for_job(sagemaker, "xp-1")
    listed = sm.list_trial_components(SourceArn=job["TrainingJobArn"].lower())
    (summary,) = listed["TrialComponentSummaries"]
    assert summary["TrialComponentName"] == "xp-1-aws-training-job"
    component = sm.describe_trial_component(TrialComponentName="xp-1-aws-training-job")
    assert component["Status"]["PrimaryStatus"] == "Completed"
    assert component["Parameters"]["SageMaker.InstanceType"] == {"StringValue": "ml.m5.large"}
    assert component["Parameters"]["z"] == {"NumberValue": 1.5}
    assert {m["MetricName"] for m in component["Metrics"]} == {"loss"}
    assert component["OutputArtifacts"]["SageMaker.ModelArtifact"]["Value"].endswith("model.tar.gz")
    # SageMaker's own components do not count toward the 50 runs of a run group.
    assert json.dumps(component["Source"]["SourceType"]) == '"SageMakerTrainingJob"'
    with pytest.raises(ClientError) as missing:
        await sagemaker.create_training_job(
            **job_request("xp-2", code_dir, ExperimentConfig={"ExperimentName": "nope"})
        )
    assert missing.value.response["Error"]["Code"] == "ResourceNotFound"


def test_deletes_need_empty_parents_and_trials_are_capped(emulator: EmbeddedEmulator) -> None:
    sm = boto3_client(emulator.endpoint_url)
    metrics = boto3_client(emulator.endpoint_url, "sagemaker-metrics")
    sm.create_experiment(ExperimentName="e")
    sm.create_trial(TrialName="t", ExperimentName="e")
    sm.create_trial_component(TrialComponentName="c")
    sm.associate_trial_component(TrialComponentName="c", TrialName="t")
    for call, kwargs in (
        (sm.delete_experiment, {"ExperimentName": "e"}),  # it has a trial
        (sm.delete_trial, {"TrialName": "t"}),  # it has a component
        (sm.delete_trial_component, {"TrialComponentName": "c"}),  # it is in a trial
    ):
        with pytest.raises(ClientError) as refused:
            call(**kwargs)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
    sm.disassociate_trial_component(TrialComponentName="c", TrialName="t")
    sm.delete_trial_component(TrialComponentName="c")
    sm.delete_trial(TrialName="t")
    sm.delete_experiment(ExperimentName="e")
    assert sm.list_experiments()["ExperimentSummaries"] == []
    with pytest.raises(ClientError) as upper:  # sagemaker-metrics wants lowercase names
        metrics.batch_put_metrics(
            TrialComponentName="Exp-Run",
            MetricData=[{"MetricName": "m", "Timestamp": time.time(), "Value": 1.0}],
        )
    assert upper.value.response["Error"]["Code"] == "ValidationException"

    emulator.emulator.experiments.trial_quota = 2
    sm.create_experiment(ExperimentName="capped")
    sm.create_trial(TrialName="t1", ExperimentName="capped")
    sm.create_trial(TrialName="t2", ExperimentName="capped")
    with pytest.raises(ClientError) as full:
        sm.create_trial(TrialName="t3", ExperimentName="capped")
    assert full.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert (
        "'Total number of trials allowed in a single experiment' is 2 Trials"
        in (full.value.response["Error"]["Message"])
    )
