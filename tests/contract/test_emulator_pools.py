"""Warm pools and quotas in the emulator, through the real aiobotocore client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sweeper.emulator.embedded import EmbeddedEmulator
from tests.helpers import aio_client, embedded_emulator, job_request, wait_for_job, wait_for_log


def resources(keep_alive: int = 0, volume: int = 1) -> dict[str, Any]:
    rc = {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": volume}
    return {"ResourceConfig": rc | ({"KeepAlivePeriodInSeconds": keep_alive} if keep_alive else {})}


def starting_seconds(job: dict[str, Any]) -> float:
    first = job["SecondaryStatusTransitions"][0]
    return float((first["EndTime"] - first["StartTime"]).total_seconds())


@pytest.fixture
def pool_emulator(tmp_path: Path) -> Iterator[EmbeddedEmulator]:
    with embedded_emulator(
        tmp_path / "emulator",
        cold_start_seconds=0.6,
        warm_start_seconds=0.0,
        instance_quota=2,
        warm_pool_quota=2,
        stop_grace_seconds=5,
        pool_available_delay_seconds=0.0,
    ) as emu:
        yield emu


@pytest.fixture
async def sm(pool_emulator: EmbeddedEmulator) -> AsyncIterator[Any]:
    async with aio_client(pool_emulator.endpoint_url) as client:
        yield client


async def _warm_pool(sm: Any, name: str) -> dict[str, Any]:
    status: dict[str, Any] = (await sm.describe_training_job(TrainingJobName=name))[
        "WarmPoolStatus"
    ]
    return status


async def test_a_matching_job_reuses_the_pool_and_starts_warm(sm: Any, code_dir: Path) -> None:
    await sm.create_training_job(**job_request("pool-a", code_dir, **resources(keep_alive=60)))
    first = await wait_for_job(sm, "pool-a")
    assert first["WarmPoolStatus"]["Status"] == "Available"
    await sm.create_training_job(**job_request("pool-b", code_dir, **resources(keep_alive=60)))
    second = await wait_for_job(sm, "pool-b")
    old = await _warm_pool(sm, "pool-a")
    assert old["Status"] == "Reused"
    assert old["ReusedByJob"] == "pool-b"
    assert old["ResourceRetainedBillableTimeInSeconds"] >= 0
    assert second["WarmPoolStatus"]["Status"] == "Available"  # it ended: its pool is next
    assert (
        second["SecondaryStatusTransitions"][0]["StatusMessage"]
        == "Reusing the instances of a warm pool"
    )
    # Cold (0.6 s, waited on the loop's monotonic clock, stamped in wall time), then warm.
    assert starting_seconds(first) >= 0.5 > starting_seconds(second)


async def test_a_job_that_does_not_match_starts_cold(sm: Any, code_dir: Path) -> None:
    await sm.create_training_job(**job_request("nm-a", code_dir, **resources(keep_alive=60)))
    await wait_for_job(sm, "nm-a")
    await sm.create_training_job(
        **job_request("nm-b", code_dir, **resources(keep_alive=60, volume=2))
    )
    other = await wait_for_job(sm, "nm-b")
    assert (await _warm_pool(sm, "nm-a"))["Status"] == "Available"
    assert starting_seconds(other) >= 0.5


async def test_a_pool_expires_and_a_released_one_terminates(sm: Any, code_dir: Path) -> None:
    await sm.create_training_job(**job_request("exp-a", code_dir, **resources(keep_alive=1)))
    await sm.create_training_job(**job_request("rel-a", code_dir, **resources(keep_alive=600)))
    await wait_for_job(sm, "exp-a")
    await wait_for_job(sm, "rel-a")
    await sm.update_training_job(
        TrainingJobName="rel-a", ResourceConfig={"KeepAlivePeriodInSeconds": 0}
    )
    assert (await _warm_pool(sm, "rel-a"))["Status"] == "Terminated"
    async with asyncio.timeout(10):
        while (await _warm_pool(sm, "exp-a"))["Status"] != "Terminated":
            await asyncio.sleep(0.1)
    assert (await _warm_pool(sm, "exp-a"))["ResourceRetainedBillableTimeInSeconds"] == 1
    listed = await sm.list_training_jobs(WarmPoolStatusEquals="Terminated")
    assert sorted(s["TrainingJobName"] for s in listed["TrainingJobSummaries"]) == [
        "exp-a",
        "rel-a",
    ]


async def test_quotas_answer_resource_limit_exceeded(
    sm: Any, pool_emulator: EmbeddedEmulator, code_dir: Path
) -> None:
    for name in ("q-1", "q-2"):  # the instance quota is 2
        await sm.create_training_job(
            **job_request(name, code_dir, "hang", **resources(keep_alive=60))
        )
    with pytest.raises(sm.exceptions.ResourceLimitExceeded) as err:
        await sm.create_training_job(**job_request("q-3", code_dir, **resources()))
    assert err.value.response["Error"]["Message"].startswith(
        "The account-level service limit 'ml.m5.large for training job usage' is 2 Instances, "
        "with current utilization of 2 Instances and a request delta of 1 Instances."
    )
    await wait_for_log(pool_emulator, "q-1", "ready")
    await sm.stop_training_job(TrainingJobName="q-1")
    await wait_for_job(sm, "q-1")  # its pool is Available: 2 warm-pool instances in use
    with pytest.raises(sm.exceptions.ResourceLimitExceeded) as warm:
        await sm.create_training_job(
            **job_request("q-4", code_dir, **resources(keep_alive=60, volume=9))
        )
    assert (
        "'ml.m5.large for training warm pool usage' is 2 Instances"
        in warm.value.response["Error"]["Message"]
    )
    await sm.stop_training_job(TrainingJobName="q-2")


async def test_a_pool_is_not_reusable_until_it_is_available(tmp_path: Path, code_dir: Path) -> None:
    """SageMaker hands a pool back a moment after its job ends; the emulator's lag is set
    past any test's length here, so the order of events, not timing, decides."""
    with embedded_emulator(
        tmp_path / "lag", cold_start_seconds=0.6, pool_available_delay_seconds=600
    ) as emu:
        async with aio_client(emu.endpoint_url) as sm:
            await sm.create_training_job(**job_request("lag-a", code_dir, **resources(60)))
            await wait_for_job(sm, "lag-a")
            pool = await _warm_pool(sm, "lag-a")
            assert pool == {"Status": "InUse"}  # ended, not yet Available: nothing billed
            await sm.create_training_job(**job_request("lag-b", code_dir, **resources(60)))
            cold = await wait_for_job(sm, "lag-b")
            assert starting_seconds(cold) >= 0.5  # it could not take lag-a's pool
            assert (await _warm_pool(sm, "lag-a"))["Status"] == "InUse"
            await sm.update_training_job(
                TrainingJobName="lag-a", ResourceConfig={"KeepAlivePeriodInSeconds": 0}
            )
            assert (await _warm_pool(sm, "lag-a"))["Status"] == "Terminated"
