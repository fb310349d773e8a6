"""Promotion-based ASHA on virtual time: the rule itself, and sweeps whose trials pause at
rungs and resume from their checkpoints (a fake backend that trains from a trial's last
epoch), through crashes and with two orchestrators."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from sweeper.clock import VirtualClock
from sweeper.console import status_text
from sweeper.promotion import Rungs, Standing, promotion
from sweeper.study import PRUNED_AT
from sweeper.study.records import RUNGS, rungs_of
from sweeper.types import JobState, OnExit
from tests.helpers import objective
from tests.unit.test_scheduler import FakeBackend, make_scheduler

ASHA = {
    "kind": "asha",
    "mode": "promotion",
    "resource": "epochs",
    "min_resource": 1,
    "max_resource": 9,
    "reduction_factor": 3,
}
LEVELS = (1, 3, 9)


def rungs(maximize: bool = False, levels: tuple[int, ...] = LEVELS) -> Rungs:
    return Rungs("epochs", levels, 3, maximize)


def test_levels_rise_by_the_factor_and_end_at_max_resource(tmp_path: Path) -> None:
    clock = VirtualClock()
    _, study, _ = make_scheduler(tmp_path, FakeBackend(clock), clock, pruner=ASHA)
    assert Rungs.of(study._config) == rungs()
    odd = make_scheduler(tmp_path, FakeBackend(clock), clock, pruner={**ASHA, "max_resource": 20})[
        1
    ]
    assert Rungs.of(odd._config) == rungs(levels=(1, 3, 9, 20))
    stopping = {"kind": "asha", "mode": "stopping", "min_resource": 1, "reduction_factor": 3}
    assert (
        Rungs.of(make_scheduler(tmp_path, FakeBackend(clock), clock, pruner=stopping)[1]._config)
        is None
    )


def test_the_rule_promotes_from_the_top_third_highest_rung_first() -> None:
    table = [Standing(n, (v,), paused=True) for n, v in enumerate([0.5, 0.1, 0.9])]
    assert promotion(table, rungs(), {0, 1, 2}) == 1  # floor(3 / 3) = 1: the best
    assert promotion(table, rungs(), {0, 2}) is None  # the best is another's to promote
    assert promotion(table[:2], rungs(), {0, 1}) is None  # floor(2 / 3) = 0
    assert promotion(table[:2], rungs(), {0, 1}, finishing=True) == 1  # ceil: one
    assert promotion(table, rungs(maximize=True), {0, 1, 2}) == 2
    running = [*table[:1], Standing(1, (0.1,), paused=False), table[2]]
    assert promotion(running, rungs(), {0, 2}) is None  # the top one is no longer paused
    higher = [
        *(Standing(n, (0.2, 0.1 + n / 10), paused=n < 3) for n in range(3)),
        *(Standing(n, (0.05 * n,), paused=True) for n in range(3, 9)),
    ]
    assert promotion(higher, rungs(), set(range(9))) == 0  # rung 1 before rung 0
    top = [Standing(0, (0.1, 0.1, 0.1), paused=False), Standing(1, (0.2,), paused=True)]
    assert promotion(top, rungs(), {1}, finishing=True) is None  # the top rung is the end


@dataclass
class RungBackend(FakeBackend):
    """Jobs train ``epochs`` (a hyperparameter) on from their trial's checkpoint, one
    virtual second per epoch; the loss falls with epochs toward ``objective(x)``."""

    checkpoint: dict[int, int] = field(default_factory=dict)  # trial -> epochs trained
    trained: dict[str, tuple[int, int]] = field(default_factory=dict)  # job -> (from, to)

    async def create(self, request: dict[str, Any]) -> None:
        name = request["TrainingJobName"]
        fresh = name not in self.jobs
        await super().create(request)
        if not fresh:
            return
        trial, epochs = int(name.split("-")[1]), int(request["HyperParameters"]["epochs"])
        start = self.checkpoint.get(trial, 0)
        job = self.jobs[name]
        job.ends = job.created + (epochs - start)
        self.trained[name] = (start, epochs)
        self.checkpoint[trial] = epochs  # what its checkpoint holds once it ends

    def _state(self, name: str) -> JobState:
        state, job = super()._state(name), self.jobs[name]
        if not state.status.is_terminal:
            return state
        epochs = self.trained[name][1]
        loss = objective(job.x) + 1.0 / epochs
        return dataclasses.replace(
            state, final_metrics={"loss": loss}, billable_seconds=int(job.ends - job.created)
        )


def jobs_of(backend: RungBackend) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for name in backend.creates:
        out.setdefault(int(name.split("-")[1]), []).append(name)
    return out


async def test_trials_pause_at_rungs_and_the_best_resume_from_their_checkpoints(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    backend = RungBackend(clock)
    scheduler, study, events = make_scheduler(
        tmp_path, backend, clock, pruner=ASHA, max_trials=9, max_parallel=3
    )
    await scheduler.run()
    trials = await study.trials()
    assert len(trials) == 9 and backend.most_in_flight <= 3  # the budget, exactly
    assert len(backend.creates) == len(set(backend.creates))  # no job twice
    for number, names in jobs_of(backend).items():
        reached = rungs_of(trials[number].user_attrs)
        assert [r.job for r in reached] == names  # one job per rung reached
        assert [backend.trained[n] for n in names] == list(
            zip((0, *LEVELS[: len(names) - 1]), LEVELS[: len(names)], strict=True)
        )  # each resumed where the last rung left its checkpoint
        assert trials[number].intermediate_values == {r.resource: r.value for r in reached}
        billable = sum(backend.jobs[n].ends - backend.jobs[n].created for n in names)
        assert trials[number].user_attrs["billable_seconds"] == billable
        if len(names) == len(LEVELS):
            assert trials[number].state == TrialState.COMPLETE
            assert trials[number].value == reached[-1].value
        else:
            assert trials[number].state == TrialState.PRUNED
            assert trials[number].user_attrs[PRUNED_AT] == LEVELS[len(names) - 1]
    by_rung = Counter(len(rungs_of(t.user_attrs)) for t in trials)
    assert by_rung[3] >= 1 and by_rung[2] + by_rung[3] >= 3  # a third promoted, at least
    first = min(trials, key=lambda t: rungs_of(t.user_attrs)[0].value)
    assert len(rungs_of(first.user_attrs)) >= 2  # the best at rung 0 went on
    assert any("paused at epochs=1" in line for line, _ in events.lines)
    study.close()


async def test_status_shows_paused_trials_apart_from_running_ones(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    clock = VirtualClock()
    scheduler, study, events = make_scheduler(
        tmp_path, RungBackend(clock), clock, storage, pruner=ASHA, max_trials=9, max_parallel=3
    )
    events.on_note = lambda text: scheduler.interrupt(OnExit.LEAVE) if "paused" in text else None
    await scheduler.run()  # interrupted once a trial paused: it stays paused
    running, counts = await study.running(), await study.counts()
    paused = [r for r in running if r.paused]
    assert paused and counts.running == len(running)
    text = status_text(study._config, counts, [], running, None)
    assert f"{len(running) - len(paused)} running, {len(paused)} paused," in text
    for r in paused:
        assert f"trial {r.number:<4} attempt 1  paused at resource 1 (" in text
    study.close()


class Crash(Exception):
    pass


def asha_sweep(tmp_path: Path, backend: RungBackend, storage: str = "", trials: int = 9) -> Any:
    """A promotion sweep over ``backend`` on its clock, 3 jobs at a time."""
    return make_scheduler(
        tmp_path, backend, backend.clock, storage, pruner=ASHA, max_trials=trials, max_parallel=3
    )


async def test_a_crash_between_a_pause_and_its_record_resumes_it_paused(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    clock = VirtualClock()
    backend = RungBackend(clock)
    scheduler, study, events = asha_sweep(tmp_path, backend, storage)

    def crash(text: str) -> None:
        if "paused at" in text:
            raise Crash(text)  # judged in memory, nothing written yet

    events.on_note = crash
    with pytest.raises(Crash):
        await scheduler.run()
    paused = [
        t
        for t in await study.trials()
        if t.user_attrs.get("job_name") and RUNGS not in t.user_attrs
    ]
    assert all(t.state == TrialState.RUNNING for t in paused)
    study.close()
    before = len(backend.creates)
    scheduler, study, _ = asha_sweep(tmp_path, backend, storage)
    await scheduler.run()
    assert len(backend.creates) == len(set(backend.creates))  # nothing run again
    assert not [
        n for n in backend.creates[before:] if n.endswith("-1") and int(n.split("-")[1]) < 3
    ]
    trials = await study.trials()
    assert len(trials) == 9 and all(t.state != TrialState.RUNNING for t in trials)
    for number, names in jobs_of(backend).items():
        assert [r.job for r in rungs_of(trials[number].user_attrs)] == names
    study.close()


async def test_two_orchestrators_promote_each_paused_trial_once(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    clock = VirtualClock()
    backend = RungBackend(clock)
    first, study, events = asha_sweep(tmp_path, backend, storage, 12)
    seen: list[str] = []

    def crash(text: str) -> None:
        seen.append(text)
        if sum("paused at" in line for line in seen) == 4:
            raise Crash(text)

    events.on_note = crash
    with pytest.raises(Crash):
        await first.run()
    left = [
        t.number
        for t in await study.trials()
        if RUNGS in t.user_attrs and t.state == TrialState.RUNNING
    ]
    assert left, "the first orchestrator left paused trials behind"
    study.close()
    made = [asha_sweep(tmp_path, backend, storage, 12) for _ in range(2)]
    await asyncio.gather(*(scheduler.run() for scheduler, _, _ in made))
    assert len(backend.creates) == len(set(backend.creates))  # no job twice, none lost
    trials = await made[0][1].trials()
    assert all(t.state != TrialState.RUNNING for t in trials)
    assert (await made[0][1].counts()).dispatched == 12  # asked past it: closed unlaunched
    for number, names in jobs_of(backend).items():
        attempts = [int(n.split("-")[2]) for n in names]
        assert attempts == list(range(1, len(names) + 1))  # one job per rung, in turn
        assert [r.job for r in rungs_of(trials[number].user_attrs)] == names
    assert any(t.state == TrialState.COMPLETE for t in trials)
    owners = {made[0][1].owner, made[1][1].owner}
    assert all(trials[n].user_attrs["orchestrator"] in owners for n in left)  # each adopted once
    for _, s, _ in made:
        s.close()
