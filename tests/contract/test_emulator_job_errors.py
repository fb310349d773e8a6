"""What the request got wrong fails its job as ``ClientError: ...`` naming the cause,
never ``InternalServerError`` (which a sweep would retry as SageMaker's own fault)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from sweeper.emulator.embedded import EmbeddedEmulator
from tests.helpers import (
    PROBE,
    boto3_client,
    describe_until,
    job_request,
    s3_client,
    standalone_emulator,
    wait_for_job,
)


def _archive(*extra: tarfile.TarInfo) -> bytes:
    """A code archive with probe.py, plus ``extra`` members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        script = PROBE.encode()
        info = tarfile.TarInfo("probe.py")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
        for member in extra:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return buffer.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


ARCHIVES = {
    "escapes": (_archive(_member("../evil.py")), "outside the destination"),
    "absolute link": (_archive(_member("passwd", tarfile.SYMTYPE, "/etc/passwd")), "absolute"),
    "device": (_archive(_member("dev", tarfile.CHRTYPE)), "special file"),
    "not a tar": (b"just bytes", "cannot be extracted"),
}


def _with_code(name: str, code_uri: str, code_dir: Path) -> dict[str, Any]:
    request = job_request(name, code_dir)
    request["HyperParameters"]["sagemaker_submit_directory"] = f'"{code_uri}"'
    return request


@pytest.mark.parametrize("case", sorted(ARCHIVES))
async def test_a_bad_code_archive_is_a_client_error(
    sagemaker: Any, emulator: EmbeddedEmulator, code_dir: Path, case: str
) -> None:
    body, cause = ARCHIVES[case]
    s3_client(emulator.s3_endpoint_url).put_object(Bucket="bucket", Key="code.tar.gz", Body=body)
    name = "arch-" + case.replace(" ", "-")
    await sagemaker.create_training_job(**_with_code(name, "s3://bucket/code.tar.gz", code_dir))
    job = await wait_for_job(sagemaker, name)
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith("ClientError: the code archive s3://bucket/code.tar.gz"), reason
    assert cause in reason


@pytest.mark.parametrize(
    ("keys", "cause"),
    [
        (["data/" + "s" * 300], "File name too long"),
        (["data/ckpt", "data/ckpt/epoch1"], "cannot be a file"),
    ],
)
async def test_a_channel_key_that_cannot_be_a_file_is_a_client_error(
    sagemaker: Any, emulator: EmbeddedEmulator, code_dir: Path, keys: list[str], cause: str
) -> None:
    s3 = s3_client(emulator.s3_endpoint_url)
    for key in keys:
        s3.put_object(Bucket="bucket", Key=key, Body=b"x")
    channel = {
        "ChannelName": "train",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/data"}},
    }
    name = f"chan-{len(keys)}"
    await sagemaker.create_training_job(**job_request(name, code_dir, InputDataConfig=[channel]))
    job = await wait_for_job(sagemaker, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: S3 object s3://bucket/data/"), job
    assert cause in job["FailureReason"]


def test_a_missing_bucket_is_a_client_error_naming_it(tmp_path: Path, code_dir: Path) -> None:
    """boto3 against a standalone emulator, as a user sees it: not retryable, no Python
    internals in the reason."""
    with standalone_emulator(tmp_path / "state") as url:
        sm = boto3_client(url)
        request = job_request("nobucket-1", code_dir)
        request["OutputDataConfig"] = {"S3OutputPath": "s3://no-such-bucket/out"}
        sm.create_training_job(**request)
        job = describe_until(sm, "nobucket-1")
    reason = job["FailureReason"]
    assert job["TrainingJobStatus"] == "Failed"
    assert reason.startswith("ClientError: S3 NoSuchBucket"), reason
    assert "no-such-bucket" in reason and "TaskGroup" not in reason
