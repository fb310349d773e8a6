"""The batched log read (LogTail) against the emulator, through the real aiobotocore client:
each running job's new lines once, in order, across reads and pages, in one call a read."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sweeper.aws.logs import LogTail
from sweeper.aws.names import job_prefix
from sweeper.aws.retry import RetryPolicy
from sweeper.emulator.embedded import EmbeddedEmulator
from tests.helpers import aio_client, job_request, wait_for_job, wait_for_log

# Prints half its lines, waits for the gate file (the test's event), prints the rest.
GATED = textwrap.dedent(
    """
    import os, sys, time
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    name, gate = args["--name"], args["--gate"]
    for i in range(5):
        print(f"{name} line {i}", flush=True)
    print(f"{name} half", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    for i in range(5, 10):
        print(f"{name} line {i}", flush=True)
    """
)


@pytest.fixture
def gated_code(tmp_path: Path) -> Path:
    code = tmp_path / "gated"
    code.mkdir()
    (code / "probe.py").write_text(GATED)
    return code


@pytest.fixture
async def logs(emulator: EmbeddedEmulator) -> AsyncIterator[Any]:
    async with aio_client(emulator.endpoint_url, "logs") as client:
        yield client


def _request(name: str, code: Path, gate: Path) -> dict[str, Any]:
    request = job_request(name, code)
    request["HyperParameters"] = {
        "name": json.dumps(name),
        "gate": json.dumps(str(gate)),
        "sagemaker_program": json.dumps("probe.py"),
        "sagemaker_submit_directory": json.dumps(str(code)),
    }
    return request


@pytest.mark.parametrize("page_size", [10_000, 4])
async def test_each_new_line_comes_once_in_order_across_reads_and_pages(
    emulator: EmbeddedEmulator,
    sagemaker: Any,
    logs: Any,
    gated_code: Path,
    tmp_path: Path,
    page_size: int,
) -> None:
    gate = tmp_path / "go"
    jobs = ["tail-0-1", "tail-1-1", "tail-2-1"]
    others = ["tail-3-1", "other-0-1"]  # not asked for / another sweep's
    for name in jobs + others:
        await sagemaker.create_training_job(**_request(name, gated_code, gate))
    for name in jobs + others:
        await wait_for_log(emulator, name, f"{name} half")
    tail = LogTail(logs, RetryPolicy(), job_prefix("tail"), page_size=page_size)
    first = await tail.read(jobs)
    first_calls = tail.calls
    gate.write_text("go")
    for name in jobs + others:
        await wait_for_job(sagemaker, name)
    second = await tail.read(jobs)
    third = await tail.read(jobs)

    assert set(first) == set(jobs)  # no other job's lines
    for name in jobs:
        lines = [line for line in first[name] + second.get(name, []) if line.startswith(name)]
        expected = [f"{name} line {i}" for i in range(5)] + [f"{name} half"]
        expected += [f"{name} line {i}" for i in range(5, 10)]
        assert lines == expected  # each once, in order, split across the reads
        assert f"{name} half" in first[name]
    assert third == {}  # nothing new since
    if page_size == 10_000:
        assert first_calls == 1 and tail.calls == 3  # one call per read, whatever P
    else:
        assert first_calls > 1  # pages were followed
