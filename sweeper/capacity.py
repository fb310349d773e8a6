"""Capacity the sweep manages: warm pools its replacements wait for, quotas it works around.

* :class:`PoolGate`: on SageMaker a finished job's warm pool turns ``Available`` a
  moment after the job reads ``Completed``. A replacement created before that would
  cold-start beside an idle pool that is then billed for nothing, so the slot the job
  freed is held until its pool is ``Available`` (then the replacement takes it over),
  gone, or a bounded wait has passed.
* :func:`settle_pools`: at the end of a sweep, every pool its jobs left is released
  (unless the space file keeps them), and what each pool was retained is recorded.
* :func:`quota`: which quota a ``ResourceLimitExceeded`` names, and its limit, so the
  sweep can say in plain words what to raise, and go on without a warm pool (or spot)
  when that quota is the one spent.
* :class:`QuotaWait`: a quota refusal never fails a trial. With jobs in flight the
  trial waits for one to end; with none, it is tried again after a growing wait, until
  refusals have gone on for a bound (then the sweep stops, every trial kept for a rerun).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sweeper.aws.training import JobBackend
from sweeper.errors import BackendError, TransientError
from sweeper.study import JOB_NAME, SweepStudy
from sweeper.types import JobState

AVAILABLE, IN_USE = "Available", "InUse"
_QUOTA = re.compile(r"service limit '([^']+)' is (\d+)")


@dataclass(frozen=True, slots=True)
class Quota:
    """A quota a request passed, as ``ResourceLimitExceeded`` names it."""

    name: str  # e.g. "ml.m5.large for training warm pool usage"
    limit: int | None

    @property
    def warm_pool(self) -> bool:
        return "warm pool" in self.name

    @property
    def spot(self) -> bool:
        return "spot" in self.name

    def advice(self) -> str:
        """One line: which quota, and where to raise it."""
        limit = "" if self.limit is None else f" (now {self.limit})"
        return (
            f"quota '{self.name}'{limit} is spent; request an increase in the Service Quotas"
            " console (Amazon SageMaker) under that name"
        )


def quota(message: str) -> Quota:
    """The quota a ResourceLimitExceeded message names (AWS's wording); ``message`` itself
    when it names none."""
    found = _QUOTA.search(message)
    if found is None:
        return Quota(message.split(".")[0][:200], None)
    return Quota(found.group(1), int(found.group(2)))


@dataclass(frozen=True, slots=True)
class QuotaBackoff:
    """Waits between tries while a quota refuses and nothing runs: ``initial`` doubling
    up to ``maximum``; refusals going on for ``give_up`` seconds stop the sweep."""

    initial: float = 5.0
    maximum: float = 120.0
    give_up: float = 1800.0


class QuotaWait:
    """When to try again after a refusal with nothing in flight, said with the quota to
    raise. Not task-safe; owned by the scheduler's loop, on its clock."""

    def __init__(self, backoff: QuotaBackoff, note: Callable[[str], None]) -> None:
        self.backoff = backoff
        self._note = note
        self._since: float | None = None  # the first refusal of this run of refusals
        self._next = 0.0
        self._delay = backoff.initial

    def refused(self, message: str, now: float) -> float | None:
        """When to try again (one time for the refusals of one round), or None once
        refusals have gone on past the bound; ``message`` is ResourceLimitExceeded's."""
        if self._since is None:
            self._since = now
        if now < self._next:
            return self._next
        advice = quota(message).advice()
        if now - self._since >= self.backoff.give_up:
            self._note(
                f"{advice}; no job could start for {self.backoff.give_up / 60:g} min: stopping."
                " Every trial is kept: run the same command again once the quota allows one"
            )
            return None
        self._next = now + self._delay
        self._note(f"{advice}; nothing is running to free it: trying again in {self._delay:g} s")
        self._delay = min(self._delay * 2, self.backoff.maximum)
        return self._next

    def cleared(self) -> None:
        """A job was created: the next refusal starts a new run of waits."""
        self._since, self._next, self._delay = None, 0.0, self.backoff.initial


@dataclass(frozen=True, slots=True)
class PoolTiming:
    poll: float  # how often a pool on its way is looked at
    wait: float  # how long a slot is held for it at most


class PoolGate:
    """Slots held for warm pools on their way. Not task-safe; owned by the scheduler loop.

    A job that ended while its WarmPoolStatus still reads ``InUse`` has a pool coming:
    :meth:`ended` holds its slot; :meth:`update`, fed by the same batched poll as the jobs
    in flight, frees it once the pool is ``Available`` (or anything else: reused,
    terminated, gone) or the wait has passed.
    """

    def __init__(self, timing: PoolTiming) -> None:
        self.timing = timing
        self._held: dict[str, float] = {}  # job -> when to stop waiting for its pool

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def jobs(self) -> list[str]:
        return sorted(self._held)

    def ended(self, state: JobState, now: float) -> None:
        """A job ended; hold its slot if its pool is not yet ``Available``."""
        if state.warm_pool == IN_USE:
            self._held[state.name] = now + self.timing.wait

    def update(self, states: Mapping[str, JobState], now: float) -> list[str]:
        """Free the slots whose pool is ready, gone or too late; return those jobs' names."""
        freed = []
        for job, until in list(self._held.items()):
            state = states.get(job)
            if now >= until or state is None or state.warm_pool != IN_USE:
                del self._held[job]
                freed.append(job)
        return freed

    def release_all(self) -> None:
        """Stop waiting (the sweep dispatches nothing more)."""
        self._held.clear()


EMULATOR_POOLS = PoolTiming(poll=0.1, wait=10.0)
SAGEMAKER_POOLS = PoolTiming(poll=2.0, wait=60.0)  # a cold start takes minutes there


@dataclass(frozen=True, slots=True)
class PoolsSettled:
    """What the end of a sweep did with its warm pools."""

    released: int
    kept: int  # left Available (keep_pools_after_sweep)
    running: int  # pools of jobs still running (left to the rerun)
    retained_seconds: int  # billed while Available, over every job of the sweep so far

    def summary(self) -> str:
        parts = [f"{self.retained_seconds} s retained in all"]
        if self.released:
            parts.append(f"{self.released} released")
        if self.kept:
            parts.append(
                f"{self.kept} left Available (estimator.keep_pools_after_sweep): billed"
                " until they expire or are reused"
            )
        if self.running:
            parts.append(f"{self.running} still in use by running jobs, left to the rerun")
        return "Warm pools: " + "; ".join(parts)


async def settle_pools(study: SweepStudy, jobs: JobBackend, keep: bool) -> PoolsSettled | None:
    """Release (unless ``keep``) every pool the sweep's jobs hold that no running job uses,
    and record each job's pool status and retained seconds in the study. One batched
    poll per 100 jobs; None when the jobs cannot be read (the report then lacks them)."""
    names = [str(t.user_attrs[JOB_NAME]) for t in await study.trials() if JOB_NAME in t.user_attrs]
    try:
        states = await jobs.poll(names)
    except (BackendError, TransientError):
        return None
    pooled = {n: s for n, s in states.items() if s.warm_pool}
    idle = [
        n for n, s in pooled.items() if s.status.is_terminal and s.warm_pool in (AVAILABLE, IN_USE)
    ]
    released = 0
    for name in [] if keep else idle:
        try:
            await jobs.release_pool(name)
            released += 1
        except (BackendError, TransientError):
            pass  # said below: it stays counted as kept
    statuses, seconds = await study.warm_pools()
    statuses.update({n: str(s.warm_pool) for n, s in pooled.items()})
    seconds.update({n: s.pool_seconds for n, s in pooled.items() if s.pool_seconds is not None})
    await study.set_warm_pools(statuses, seconds)
    running = sum(not s.status.is_terminal for s in pooled.values())
    return PoolsSettled(released, len(idle) - released, running, sum(seconds.values()))
