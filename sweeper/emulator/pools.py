"""Warm pools and instance quotas.

A job with ``KeepAlivePeriodInSeconds`` > 0 shows ``InUse`` while it runs. When it
completes, is stopped, or fails through its own fault (not ``InternalServerError``),
its instances stay ``Available`` for the keep-alive period. A later job that also asks
for a keep-alive and matches exactly on the fields SageMaker compares (role, instance
type and count, volume size and KMS key, VPC, encryption, isolation) takes the pool:
the old job shows ``Reused`` with ``ReusedByJob``, the new one ``InUse``, and it starts
after the warm delay instead of the cold one. Expiry or a release (UpdateTrainingJob
with KeepAlive 0) gives ``Terminated``. ``ResourceRetainedBillableTimeInSeconds``
counts the Available time.

Choices where AWS does not document the behaviour (the emulator's own):

* status is evaluated when read, so expiry needs no timer;
* as on SageMaker, a pool becomes ``Available`` a moment after its job ends
  (``pool_available_delay_seconds``); until then it reads ``InUse``, cannot be
  reused, holds its instances and is not billed as retained;
* UpdateTrainingJob with KeepAlive > 0 on an Available pool keeps it for that many
  seconds from now;
* quotas are checked at CreateTrainingJob, per instance type: ``instance_quota`` counts
  instances of running jobs; ``warm_pool_quota`` counts instances held by Available
  pools plus those of running keep-alive jobs (a job that reuses a pool adds none).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sweeper.emulator.errors import AwsError

if TYPE_CHECKING:
    from sweeper.emulator.jobs import Job

AVAILABLE, IN_USE, REUSED, TERMINATED = "Available", "InUse", "Reused", "Terminated"


def keep_alive(job: Job) -> int:
    return int((job.request.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds", 0))


def _match_key(request: dict[str, Any]) -> tuple[Any, ...]:
    rc, vpc = request.get("ResourceConfig") or {}, request.get("VpcConfig") or {}
    return (
        request.get("RoleArn"),
        rc.get("InstanceType"),
        rc.get("InstanceCount"),
        rc.get("VolumeSizeInGB"),
        rc.get("VolumeKmsKeyId"),
        tuple(sorted(vpc.get("SecurityGroupIds", []))),
        tuple(sorted(vpc.get("Subnets", []))),
        bool(request.get("EnableInterContainerTrafficEncryption")),
        bool(request.get("EnableNetworkIsolation")),
    )


def _instances(job: Job) -> tuple[str, int]:
    rc = job.request.get("ResourceConfig") or {}
    return str(rc.get("InstanceType", "")), int(rc.get("InstanceCount", 1))


def status(job: Job, now: float | None = None) -> str | None:
    """The job's WarmPoolStatus now (None: it never asked for a warm pool)."""
    if job.pool is None:
        return None
    now = now or time.time()
    if job.pool == AVAILABLE and now >= job.pool_expires:
        return TERMINATED
    if job.pool == AVAILABLE and job.pool_since is not None and now < job.pool_since:
        return IN_USE  # still being handed back: not reusable yet
    return job.pool


def describe(job: Job) -> dict[str, Any] | None:
    """The WarmPoolStatus member of DescribeTrainingJob."""
    now = time.time()
    current = status(job, now)
    if current is None:
        return None
    out: dict[str, Any] = {"Status": current}
    if job.pool_since is not None and current != IN_USE:
        end = job.pool_ended or min(now, job.pool_expires)
        out["ResourceRetainedBillableTimeInSeconds"] = max(0, round(end - job.pool_since))
    if job.reused_by:
        out["ReusedByJob"] = job.reused_by
    return out


def retain(job: Job, failure_reason: str | None, delay: float = 0.0) -> None:
    """A keep-alive job ended: keep its instances unless the platform failed it; they
    are ``Available`` after ``delay`` seconds, for the keep-alive period."""
    if job.pool is None:
        return
    if failure_reason and failure_reason.startswith("InternalServerError"):
        job.pool = TERMINATED
    else:
        job.pool, job.pool_since = AVAILABLE, time.time() + delay
        job.pool_expires = job.pool_since + keep_alive(job)
    job.save()


def claim(job: Job, jobs: Iterable[Job]) -> bool:
    """Give ``job`` a matching Available pool if there is one; True if it got one."""
    if keep_alive(job) <= 0:
        return False
    job.pool = IN_USE
    key, now = _match_key(job.request), time.time()
    for other in jobs:
        if (
            other is not job
            and status(other, now) == AVAILABLE
            and _match_key(other.request) == key
        ):
            other.pool, other.pool_ended, other.reused_by = REUSED, now, job.name
            other.save()
            return True
    return False


def update(job: Job, seconds: int) -> None:
    """UpdateTrainingJob's KeepAlivePeriodInSeconds: 0 releases an Available pool."""
    job.request.setdefault("ResourceConfig", {})["KeepAlivePeriodInSeconds"] = seconds
    now = time.time()
    if status(job, now) not in (AVAILABLE, IN_USE) or job.pool != AVAILABLE:
        return
    if seconds == 0:
        job.pool, job.pool_ended = TERMINATED, now
    else:
        job.pool_expires = now + seconds
    job.save()


def check_quotas(
    job: Job, jobs: Iterable[Job], instance_quota: int | None, warm_pool_quota: int | None
) -> None:
    """Raise ResourceLimitExceeded if starting ``job`` would pass a quota."""
    kind, count = _instances(job)
    now = time.time()
    running = warm = 0
    reusable = False
    for other in jobs:
        active = other.status in ("InProgress", "Stopping")
        if other is job or not (active or other.pool == AVAILABLE):
            continue  # most jobs of a long sweep: ended, their pool gone (or none)
        other_kind, other_count = _instances(other)
        if other_kind != kind:
            continue
        if active:
            running += other_count
            warm += other_count if keep_alive(other) > 0 else 0
        elif other.pool == AVAILABLE and status(other, now) != TERMINATED:
            warm += other_count  # Available, or about to be: its instances are held
            reusable = reusable or (
                status(other, now) == AVAILABLE
                and _match_key(other.request) == _match_key(job.request)
            )
    if instance_quota is not None and running + count > instance_quota:
        raise _limit(f"{kind} for training job usage", instance_quota, running, count)
    delta = 0 if reusable else count
    if keep_alive(job) > 0 and warm_pool_quota is not None and warm + delta > warm_pool_quota:
        raise _limit(f"{kind} for training warm pool usage", warm_pool_quota, warm, delta)


def _limit(name: str, quota: int, used: int, delta: int) -> AwsError:
    return AwsError(
        "ResourceLimitExceeded",
        f"The account-level service limit '{name}' is {quota} Instances, with current "
        f"utilization of {used} Instances and a request delta of {delta} Instances. Please use "
        "AWS Service Quotas to request an increase for this quota. If AWS Service Quotas is "
        "not available, contact AWS support to request an increase for this quota.",
    )
