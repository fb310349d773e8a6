"""When the scheduler's slow work happens, on virtual time: asks and writes that take
longer than a poll's precision never delay seeing a job's end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweeper.clock import VirtualClock
from sweeper.study import SweepStudy
from tests.unit.test_scheduler import FakeBackend, make_scheduler

PRECISION = 0.05 * 10.0  # how late an overdue 10 s job may be seen (PollTiming.precision)


class SlowAsks:
    """A request hook that makes each ask after the first round's take ``seconds`` of the
    clock's time (an Experiments run made over a slow link); the first round's asks are
    free, so that the virtual clock sees one sleeper at a time."""

    def __init__(self, clock: VirtualClock, seconds: float, first_round: int) -> None:
        self.clock, self.seconds, self.free = clock, seconds, first_round
        self.made = set[int]()

    async def prepare(self, record: Any) -> None:
        if record.number >= self.free and record.number not in self.made:
            self.made.add(record.number)
            await self.clock.sleep(self.seconds)

    def fields(self, number: int) -> dict[str, Any]:
        return {}


class SlowObserver:
    """An observer that takes ``seconds`` of the clock's time per recorded outcome (a
    database over a slow link, a log saved)."""

    def __init__(self, clock: VirtualClock, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds

    async def recorded(self, outcome: Any) -> None:
        await self.clock.sleep(self.seconds)


async def _sweep(
    tmp_path: Path, spread: float, trials: int, slow: Callable[[VirtualClock], dict[str, Any]]
) -> tuple[list[float], SweepStudy]:
    """Four jobs at a time of 10 s plus up to ``spread``, with the slow parts ``slow``
    makes (``hooks`` or ``observers``); each gap after the first two rounds, from the
    end that freed a slot to the slot's next job's creation."""
    clock = VirtualClock()
    backend = FakeBackend(clock, duration=lambda x: 10.0 + x * spread)
    scheduler, study, _ = make_scheduler(
        tmp_path, backend, clock, max_trials=trials, max_parallel=4, **slow(clock)
    )
    outcome = await scheduler.run()
    assert outcome.completed == trials
    jobs = sorted(backend.jobs.values(), key=lambda j: j.created)
    ends = sorted(j.ends for j in jobs)
    gaps = [j.created - e for j, e in zip(jobs[4:], ends, strict=False)]
    return gaps[4:], study


async def test_the_asks_for_a_round_are_made_before_its_jobs_are_due(tmp_path: Path) -> None:
    """Four asks of half a second each, for jobs that end within half a second of each
    other: made in the long wait after a round starts rather than between the polls that
    look for its ends, so that no end is seen more than an ask late (beyond the polls'
    precision). Asking only an ask ahead of the first end saw some two asks late."""
    gaps, study = await _sweep(
        tmp_path, 0.5, 24, lambda clock: {"hooks": (SlowAsks(clock, 0.5, first_round=4),)}
    )
    assert max(gaps) <= PRECISION + 0.5, gaps
    study.close()


async def test_writing_results_waits_until_the_rest_of_a_round_is_seen(tmp_path: Path) -> None:
    """Each result takes a second to write; jobs end a few tenths of a second apart. The
    writes wait for the wait after the round (a tenth of a job at most), so no end is
    seen a write late."""
    gaps, study = await _sweep(
        tmp_path, 0.25, 20, lambda clock: {"observers": (SlowObserver(clock, 1.0),)}
    )
    assert len([t for t in await study.trials() if t.value is not None]) == 20  # all written
    assert max(gaps) <= PRECISION + 1e-6, gaps
    study.close()


async def test_the_last_rounds_results_are_written_as_its_jobs_end(tmp_path: Path) -> None:
    """Once the budget is spent no end can start a job, so its result need not wait for
    the rest of the round to be seen: the sweep ends one write (and a poll's precision)
    after its last job (1.6 s when the last round's writes waited for its ends to be
    seen, a write per job), not a write per job of the last round after it."""
    write = 0.4
    clock = VirtualClock()
    backend = FakeBackend(clock, duration=lambda x: 10.0 + x)
    scheduler, study, _ = make_scheduler(
        tmp_path,
        backend,
        clock,
        max_trials=12,
        max_parallel=4,
        observers=(SlowObserver(clock, write),),
    )
    outcome = await scheduler.run()
    assert outcome.completed == 12
    last_end = max(j.ends for j in backend.jobs.values())
    assert clock.now() - last_end <= write + PRECISION + 1e-6, clock.now() - last_end
    assert len([t for t in await study.trials() if t.value is not None]) == 12
    study.close()
