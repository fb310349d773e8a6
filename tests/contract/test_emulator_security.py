"""The emulator lets in only signed requests, and nothing in a request escapes its state."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sweeper.emulator.embedded import EmbeddedEmulator
from sweeper.emulator.settings import EmulatorSettings, RunnerSettings
from tests.helpers import boto3_client, job_request, wait_for_job


def _boto3(url: str, key: str, secret: str) -> Any:
    return boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


async def test_an_unsigned_request_is_refused(emulator: EmbeddedEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            emulator.endpoint_url,
            data=json.dumps({"TrainingJobName": "x"}),
            headers={
                "X-Amz-Target": "SageMaker.DescribeTrainingJob",
                "Content-Type": "application/x-amz-json-1.1",
            },
        )
        assert response.status == 403
        body = await response.json(content_type=None)
    assert body["__type"] == "MissingAuthenticationTokenException"


@pytest.mark.parametrize(
    ("key", "secret", "code"),
    [
        ("test", "wrong", "InvalidSignatureException"),
        ("nobody", "test", "UnrecognizedClientException"),
    ],
)
def test_a_wrongly_signed_request_is_refused(
    emulator: EmbeddedEmulator, key: str, secret: str, code: str
) -> None:
    with pytest.raises(ClientError) as err:
        _boto3(emulator.endpoint_url, key, secret).list_training_jobs()
    assert err.value.response["Error"]["Code"] == code
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_tampered_body_is_refused(emulator: EmbeddedEmulator) -> None:
    client = _boto3(emulator.endpoint_url, "test", "test")

    def tamper(request: Any, **kwargs: Any) -> None:  # after signing, before sending
        request.body = request.body.replace(b"job-a", b"job-b")

    client.meta.events.register_last("before-send.sagemaker.DescribeTrainingJob", tamper)
    with pytest.raises(ClientError) as err:
        client.describe_training_job(TrainingJobName="job-a")
    assert err.value.response["Error"]["Code"] == "InvalidSignatureException"


async def test_path_escapes_are_refused(
    sagemaker: Any, emulator: EmbeddedEmulator, s3: Any, code_dir: Path, tmp_path: Path
) -> None:
    channel = job_request(
        "esc-1",
        code_dir,
        InputDataConfig=[
            {
                "ChannelName": "..",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/data"}
                },
            }
        ],
    )
    with pytest.raises(ClientError) as err:
        await sagemaker.create_training_job(**channel)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "channel" in err.value.response["Error"]["Message"].lower()

    # S3 keys may hold "..": they are S3 keys, never paths on this machine.
    s3.put_object(Bucket="bucket", Key="data/../../../escaped.txt", Body=b"x")
    s3.put_object(Bucket="bucket", Key="data/fine.txt", Body=b"y")
    outside = job_request(
        "esc-2",
        code_dir,
        OutputDataConfig={"S3OutputPath": "s3://bucket/../../../../tmp"},
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/data/"}
                },
            }
        ],
    )
    await sagemaker.create_training_job(**outside)
    job = await wait_for_job(sagemaker, "esc-2")
    assert job["TrainingJobStatus"] == "Completed"
    channel_dir = tmp_path / "emulator/jobs/esc-2/opt/ml/input/data/train"
    assert sorted(p.name for p in channel_dir.rglob("*")) == ["fine.txt"]
    s3.head_object(Bucket="bucket", Key="../../../../tmp/esc-2/output/model.tar.gz")
    emulator.close()  # the S3 server writes its objects to disk
    assert await asyncio.to_thread(_nothing_escaped, tmp_path)


def _nothing_escaped(tmp_path: Path) -> bool:
    escaped = list(tmp_path.parent.glob("**/escaped.txt"))
    return not escaped and not (tmp_path / "esc-2").exists() and not Path("/tmp/esc-2").exists()


@pytest.mark.parametrize(
    ("rates", "code", "message", "status"),
    [
        ({"throttle_rate": 1.0}, "ThrottlingException", "Rate exceeded", 400),
        ({"internal_failure_rate": 1.0}, "InternalFailure", "An internal error occurred.", 500),
    ],
)
def test_injected_faults_look_like_aws(
    tmp_path: Path, rates: dict[str, float], code: str, message: str, status: int
) -> None:
    settings = EmulatorSettings(RunnerSettings(root=tmp_path / "emu"), **rates)
    with EmbeddedEmulator(settings) as emu:
        client = boto3_client(emu.endpoint_url, config=Config(retries={"total_max_attempts": 1}))
        with pytest.raises(ClientError) as err:
            client.list_training_jobs()
    assert err.value.response["Error"] == {"Code": code, "Message": message}
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
