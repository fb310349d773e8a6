"""CloudWatch metrics, as SageMaker publishes its jobs' metric definitions: the SDK v2's
``TrainingJobAnalytics`` and boto3's CloudWatch client, unmodified, against a standalone
emulator (botocore speaks Smithy RPC v2 CBOR to CloudWatch).

The probe job prints ``loss=1.0000``, ``0.5000`` and ``0.3333``. When each value is
read decides which period bucket it falls in, so the assertions hold for every split
of the three into buckets: counts, sums, extremes and order, not bucket boundaries.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from pathlib import Path
from typing import Any

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from tests.helpers import (
    boto3_client,
    describe_until,
    emulator_info,
    job_request,
    s3_client,
    sdk_session,
    standalone_emulator,
)

LOSSES = [1.0, 0.5, 0.3333]
NAMESPACE = "/aws/sagemaker/TrainingJobs"


def _run_probe(url: str, code: Path, name: str) -> dict[str, Any]:
    """Run the probe job ``name`` to its end; its final description."""
    s3_client(emulator_info(url)["s3_endpoint_url"]).create_bucket(Bucket="bucket")
    sm = boto3_client(url)
    sm.create_training_job(**job_request(name, code))
    job = describe_until(sm, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return job


def _window(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "StartTime": job["TrainingStartTime"] - dt.timedelta(minutes=1),
        "EndTime": job["TrainingEndTime"] + dt.timedelta(minutes=1),
    }


def _loss(name: str) -> dict[str, Any]:
    return {
        "Namespace": NAMESPACE,
        "MetricName": "loss",
        "Dimensions": [{"Name": "TrainingJobName", "Value": name}],
    }


def test_training_job_analytics_reads_each_metric_of_a_job(
    tmp_path: Path, code_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    with standalone_emulator(tmp_path / "state") as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", url)  # as the README says
        job = _run_probe(url, code_dir, "curve-1")
        from sagemaker.analytics import TrainingJobAnalytics

        frame = TrainingJobAnalytics("curve-1", sagemaker_session=sdk_session(url)).dataframe()
        stats = boto3_client(url, "cloudwatch").get_metric_statistics(
            **_loss("curve-1"), **_window(job), Period=60, Statistics=["Average", "SampleCount"]
        )["Datapoints"]
    assert set(frame["metric_name"]) == {"loss"}
    assert 1 <= len(frame) <= len(LOSSES)  # one row per minute that holds values
    assert sorted(frame["value"]) == pytest.approx(sorted(p["Average"] for p in stats))
    assert sum(p["SampleCount"] for p in stats) == len(LOSSES)
    assert list(frame["timestamp"]) == sorted(frame["timestamp"])


def test_statistics_data_and_listing_over_the_cbor_protocol(tmp_path: Path, code_dir: Path) -> None:
    with standalone_emulator(tmp_path / "state") as url:
        job = _run_probe(url, code_dir, "curve-2")
        cw = boto3_client(url, "cloudwatch")
        every = ["SampleCount", "Sum", "Minimum", "Maximum", "Average"]
        seconds = cw.get_metric_statistics(
            **_loss("curve-2"), **_window(job), Period=1, Statistics=every
        )["Datapoints"]
        median = cw.get_metric_statistics(
            **_loss("curve-2"), **_window(job), Period=3600, ExtendedStatistics=["p50"]
        )["Datapoints"]
        data = cw.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "low",
                    "MetricStat": {"Metric": _loss("curve-2"), "Period": 1, "Stat": "Minimum"},
                },
                {
                    "Id": "hidden",
                    "MetricStat": {"Metric": _loss("curve-2"), "Period": 60, "Stat": "Sum"},
                    "ReturnData": False,
                },
            ],
            **_window(job),
        )["MetricDataResults"]
        listed = cw.list_metrics(Namespace=NAMESPACE, Dimensions=[{"Name": "TrainingJobName"}])
        elsewhere = cw.get_metric_statistics(
            **{**_loss("curve-2"), "Dimensions": [{"Name": "Host", "Value": "curve-2/algo-1"}]},
            **_window(job),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
    assert sum(p["SampleCount"] for p in seconds) == len(LOSSES)
    assert sum(p["Sum"] for p in seconds) == pytest.approx(sum(LOSSES))
    assert min(p["Minimum"] for p in seconds) == pytest.approx(min(LOSSES))
    assert max(p["Maximum"] for p in seconds) == pytest.approx(max(LOSSES))
    assert all(p["Unit"] == "None" for p in seconds)
    assert [p["ExtendedStatistics"]["p50"] for p in median] == [pytest.approx(0.5)]
    [low] = data
    assert low["Id"] == "low" and low["StatusCode"] == "Complete" and low["Label"] == "loss"
    assert low["Timestamps"] == sorted(low["Timestamps"], reverse=True)  # newest first
    assert min(low["Values"]) == pytest.approx(min(LOSSES))
    assert listed["Metrics"] == [
        {
            "Namespace": NAMESPACE,
            "MetricName": "loss",
            "Dimensions": [{"Name": "TrainingJobName", "Value": "curve-2"}],
        }
    ]
    assert elsewhere == []  # only the exact dimensions match, as in CloudWatch


def test_requests_cloudwatch_refuses_are_answered_with_its_error_codes(
    tmp_path: Path, code_dir: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    day = {"StartTime": now - dt.timedelta(days=1), "EndTime": now}
    with standalone_emulator(tmp_path / "state") as url:
        cw = boto3_client(url, "cloudwatch")
        with pytest.raises(cw.exceptions.InvalidParameterValueException, match="Period"):
            cw.get_metric_statistics(**_loss("x"), **day, Period=7, Statistics=["Sum"])
        with pytest.raises(cw.exceptions.InvalidParameterCombinationException, match="1,440"):
            cw.get_metric_statistics(**_loss("x"), **day, Period=1, Statistics=["Sum"])
        with pytest.raises(cw.exceptions.InvalidParameterCombinationException):
            cw.get_metric_statistics(**_loss("x"), **day, Period=60)
        with pytest.raises(cw.exceptions.InvalidParameterValueException, match="StartTime"):
            cw.get_metric_statistics(
                **_loss("x"), StartTime=now, EndTime=now, Period=60, Statistics=["Sum"]
            )
        unknown = cw.get_metric_statistics(**_loss("x"), **day, Period=60, Statistics=["Sum"])
    assert unknown["Datapoints"] == [] and unknown["Label"] == "loss"


def test_the_json_protocol_and_a_restart_keep_the_series(tmp_path: Path, code_dir: Path) -> None:
    """Clients that pick CloudWatch's JSON 1.0 protocol get the same answers, and the
    series outlive the emulator that recorded them."""
    with standalone_emulator(tmp_path / "state") as url:
        job = _run_probe(url, code_dir, "curve-3")
    window = {k: v.timestamp() for k, v in _window(job).items()}
    request = {**_loss("curve-3"), **window, "Period": 3600, "Statistics": ["SampleCount"]}
    with standalone_emulator(tmp_path / "state") as url:
        answer = _json_10(url, "GetMetricStatistics", request)
        after = boto3_client(url, "cloudwatch").get_metric_statistics(**request)
    assert [p["SampleCount"] for p in answer["Datapoints"]] == [len(LOSSES)]
    assert isinstance(answer["Datapoints"][0]["Timestamp"], float)
    assert [p["SampleCount"] for p in after["Datapoints"]] == [len(LOSSES)]


def _json_10(url: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """A CloudWatch call in JSON 1.0 (the protocol botocore does not pick), SigV4-signed."""
    request = botocore.awsrequest.AWSRequest(
        method="POST",
        url=url + "/",
        data=json.dumps(params).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"GraniteServiceVersion20100801.{operation}",
        },
    )
    credentials = botocore.credentials.Credentials("test", "test")
    botocore.auth.SigV4Auth(credentials, "monitoring", "us-east-1").add_auth(request)
    prepared = urllib.request.Request(
        url + "/", data=request.body, headers=dict(request.headers), method="POST"
    )
    with urllib.request.urlopen(prepared, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("application/x-amz-json-1.0")
        answer: dict[str, Any] = json.load(response)
    return answer
