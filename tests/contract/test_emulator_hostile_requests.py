"""Hostile requests against both endpoints of a standalone emulator (SageMaker's and
S3's): unsigned, wrongly signed, replayed from two days ago or signed a year ahead,
a body swapped under its signed hash, browser preflights, and a flood of large unsigned
bodies. All are refused, nothing they carry is stored, and the emulator's memory stays
bounded."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import aiohttp
import pytest
from botocore.config import Config

from tests.helpers import (
    boto3_client,
    emulator_info,
    s3_client,
    signed_headers,
    standalone_emulator,
)

NOW = dt.datetime.now(dt.UTC)
TARGET = {"X-Amz-Target": "SageMaker.ListTrainingJobs"}
JSON_TYPE = {"Content-Type": "application/x-amz-json-1.1"}
MB = 1024 * 1024


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int]]:
    """(SageMaker URL, S3 URL, emulator pid) of one standalone emulator, with a bucket
    holding the code a sweep's next job would run."""
    with standalone_emulator(tmp_path_factory.mktemp("hostile") / "state") as url:
        s3_url = emulator_info(url)["s3_endpoint_url"]
        s3 = s3_client(s3_url)
        s3.create_bucket(Bucket="bucket")
        s3.put_object(Bucket="bucket", Key="code/sourcedir.tar.gz", Body=b"the user's code")
        with urllib.request.urlopen(f"{url}/_emulator/stats", timeout=10) as response:
            pid = json.load(response)["pid"]
        yield url, s3_url, pid


def _send(
    method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body or None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def _code(body: bytes) -> str:
    if body.startswith(b"{"):
        return str(json.loads(body)["__type"])
    return body.split(b"<Code>")[1].split(b"</Code>")[0].decode()


def _code_is_intact(s3_url: str) -> bool:
    body = s3_client(s3_url).get_object(Bucket="bucket", Key="code/sourcedir.tar.gz")["Body"]
    return bool(body.read() == b"the user's code")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("unsigned", "AccessDenied"),
        ("wrong secret", "SignatureDoesNotMatch"),
        ("two days ago", "RequestTimeTooSkewed"),
        ("a year ahead", "RequestTimeTooSkewed"),
        ("body swapped", "XAmzContentSHA256Mismatch"),
    ],
)
def test_s3_refuses_what_its_keys_did_not_sign(
    endpoints: tuple[str, str, int], name: str, expected: str
) -> None:
    _, s3_url, _ = endpoints
    url = f"{s3_url}/bucket/code/sourcedir.tar.gz"
    evil = b"import os; os.system('steal')"
    headers: dict[str, str] = {}
    if name == "wrong secret":
        headers = signed_headers("PUT", url, "s3", evil, secret="guess")
    elif name == "two days ago":
        headers = signed_headers("PUT", url, "s3", evil, when=NOW - dt.timedelta(days=2))
    elif name == "a year ahead":
        headers = signed_headers("PUT", url, "s3", evil, when=NOW + dt.timedelta(days=365))
    elif name == "body swapped":
        headers = signed_headers("PUT", url, "s3", b"harmless")
    status, _, body = _send("PUT", url, evil, headers)
    assert (status, _code(body)) == (400 if "Mismatch" in expected else 403, expected)
    assert _code_is_intact(s3_url)


@pytest.mark.parametrize(
    ("when", "message"),
    [(NOW - dt.timedelta(days=2), "Signature expired"), (NOW + dt.timedelta(days=365), "not yet")],
)
def test_sagemaker_refuses_a_signature_out_of_the_15_minute_window(
    endpoints: tuple[str, str, int], when: dt.datetime, message: str
) -> None:
    url, _, _ = endpoints
    headers = signed_headers("POST", f"{url}/", "sagemaker", b"{}", TARGET | JSON_TYPE, when=when)
    status, _, body = _send("POST", f"{url}/", b"{}", headers)
    assert status == 400
    assert json.loads(body)["__type"] == "InvalidSignatureException"
    assert message in json.loads(body)["message"]
    fresh = signed_headers("POST", f"{url}/", "sagemaker", b"{}", TARGET | JSON_TYPE)
    assert _send("POST", f"{url}/", b"{}", fresh)[0] == 200  # the same request, signed now


def test_no_cors_for_any_origin(endpoints: tuple[str, str, int]) -> None:
    _, s3_url, _ = endpoints
    url = f"{s3_url}/bucket/code/sourcedir.tar.gz"
    preflight = {
        "Origin": "http://evil.example",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization,x-amz-date",
    }
    status, headers, _ = _send("OPTIONS", url, headers=preflight)
    assert status == 403
    assert not any(h.lower().startswith("access-control-") for h in headers)
    signed = signed_headers("GET", url, "s3", headers={"Origin": "http://evil.example"})
    status, headers, body = _send("GET", url, headers=signed)
    assert (status, body) == (200, b"the user's code")
    assert not any(h.lower().startswith("access-control-") for h in headers)


def test_presigned_urls_work_until_they_expire(endpoints: tuple[str, str, int]) -> None:
    _, s3_url, _ = endpoints
    params = {"Bucket": "bucket", "Key": "code/sourcedir.tar.gz"}
    for config in (Config(s3={"addressing_style": "path"}), Config(signature_version="s3v4")):
        s3 = boto3_client(s3_url, "s3", config=config)
        good = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=60)
        assert _send("GET", good) == (200, mock.ANY, b"the user's code")
        forged = good.replace("sourcedir", "other")
        assert _send("GET", forged)[0] == 403
        with (
            mock.patch("time.time", return_value=NOW.timestamp() - 7200),
            mock.patch(
                "botocore.auth.get_current_datetime", return_value=NOW - dt.timedelta(hours=2)
            ),
        ):
            stale = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=60)
        status, _, body = _send("GET", stale)
        assert (status, _code(body)) == (403, "AccessDenied")


def _peak_rss(pid: int) -> int:
    """The high-water resident memory of ``pid`` and its children, in bytes."""
    total = 0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(c) for c in (task / "children").read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) * 1024
    return total


async def _flood(url: str, count: int, size: int, headers: dict[str, str]) -> list[int]:
    """``count`` requests at once, each with a ``size``-byte body; their statuses."""
    body = b"x" * size
    connector = aiohttp.TCPConnector(limit=count)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one() -> int:
            try:
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    return response.status
            except aiohttp.ClientError:  # refused before the body was sent: also a refusal
                return 0

        return await asyncio.gather(*(one() for _ in range(count)))


def test_a_flood_of_large_unsigned_bodies_is_refused_in_bounded_memory(
    endpoints: tuple[str, str, int],
) -> None:
    url, s3_url, pid = endpoints
    before = _peak_rss(pid)
    forged = {"Authorization": "AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/x/aws4_request"}
    statuses = asyncio.run(_flood(f"{url}/", 400, 8 * MB, TARGET | JSON_TYPE))
    statuses += asyncio.run(_flood(f"{url}/", 100, 8 * MB, TARGET | JSON_TYPE | forged))
    statuses += asyncio.run(_flood(f"{s3_url}/bucket/code/sourcedir.tar.gz", 200, 8 * MB, {}))
    grown = _peak_rss(pid) - before
    print(f"peak memory grew {grown / MB:.0f} MB over 700 requests of 8 MB")
    assert all(s in (0, 400, 403, 413) for s in statuses), sorted(set(statuses))
    assert grown < 200 * MB
    assert _code_is_intact(s3_url)
