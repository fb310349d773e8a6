"""Quota messages and the pool gate, on their own."""

from __future__ import annotations

from sweeper.capacity import PoolGate, PoolTiming, quota
from sweeper.types import JobState, JobStatus


def test_a_quota_is_read_from_aws_s_message() -> None:
    q = quota(
        "The account-level service limit 'ml.g5.xlarge for training warm pool usage' is 0"
        " Instances, with current utilization of 0 Instances and a request delta of 1 Instances."
    )
    assert (q.name, q.limit, q.warm_pool, q.spot) == (
        "ml.g5.xlarge for training warm pool usage",
        0,
        True,
        False,
    )
    assert quota(
        "The account-level service limit 'ml.p3.2xlarge for spot training job usage' is 4 Instances"
    ).spot
    assert quota("Something else entirely").limit is None


def ended(name: str, pool: str | None) -> JobState:
    return JobState(name, JobStatus.COMPLETED, "Completed", warm_pool=pool)


def test_the_gate_holds_a_slot_until_the_pool_is_available_or_the_wait_ends() -> None:
    gate = PoolGate(PoolTiming(poll=0.5, wait=30.0))
    gate.ended(ended("a", "InUse"), now=0.0)  # pool on its way
    gate.ended(ended("b", "Available"), now=0.0)  # ready already: nothing held
    gate.ended(ended("c", None), now=0.0)  # no pool at all
    gate.ended(ended("d", "InUse"), now=0.0)
    assert (gate.held, gate.jobs) == (2, ["a", "d"])
    assert gate.update({"a": ended("a", "InUse"), "d": ended("d", "InUse")}, now=1.0) == []
    assert gate.update({"a": ended("a", "Available"), "d": ended("d", "InUse")}, now=2.0) == ["a"]
    assert gate.update({"d": ended("d", "InUse")}, now=30.0) == ["d"]  # waited long enough
    assert gate.held == 0
