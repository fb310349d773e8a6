"""How a sweep run lets go of what it holds when its loop ends.

Interrupted with ``--on-exit stop``, its jobs in flight are stopped (their trials stay
RUNNING and are rerun on resume); ended, the trials it asked ahead and no longer needs
are closed as not launched.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from sweeper.aws.training import JobBackend
from sweeper.decisions import Policy
from sweeper.judging import InFlight
from sweeper.study import SweepStudy, TrialRecord
from sweeper.types import StopReason


async def stop_in_flight(
    policy: Policy, study: SweepStudy, backend: JobBackend, flights: Iterable[InFlight]
) -> None:
    """Stop every job in flight; their trials stay RUNNING and are rerun on resume.
    Their warm pools are released first (a stopped job would otherwise leave one
    billing after the sweep has exited), unless the space file keeps pools."""
    release = policy.warm_pools and not policy.keep_pools
    for flight in flights:
        await study.mark_stopped_on_exit(flight.trial.number)
        if release:
            await backend.release_pool(flight.job)
        await backend.stop(flight.job)


async def close_unlaunched(
    study: SweepStudy, ready: deque[TrialRecord], stop: StopReason | None
) -> None:
    """Close pre-asked trials the sweep no longer needs (it stopped early)."""
    reason = f"not launched: the sweep stopped ({stop or StopReason.BUDGET})"
    while ready:
        await study.tell_pruned(ready.popleft().number, reason)
