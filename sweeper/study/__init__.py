"""The study: Sweeper's only user of Optuna, and the sweep's source of truth.

Every trial lives in Optuna storage (SQLite by default). Each trial's job name and
attempt are written to the trial (user attributes) *before* its training job is
created, so a crash between the two is repaired on resume: the scheduler looks the
recorded name up and re-attaches, harvests, or creates it.

The study also keeps the part of the space file that defines it (objective and
parameters); a space file that no longer matches is refused, naming what changed.

Optuna's RDB storage is blocking; every method here that touches it is a coroutine
that runs the work on one dedicated worker thread, so the event loop keeps polling
while TPE samples, and storage calls never race each other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeper import space
from sweeper.config import SamplerKind, SweepConfig
from sweeper.errors import ConfigError
from sweeper.study.algorithms import first_params, make_pruner, make_sampler
from sweeper.study.spec import check_spec
from sweeper.study.storage import open_storage

T = TypeVar("T")
__all__ = [
    "Counts",
    "SweepStudy",
    "TrialRecord",
    "first_params",
    "make_pruner",
    "make_sampler",
]
JOB_NAME = "job_name"
ATTEMPT = "attempt"
STOPPED_ON_EXIT = "stopped_on_exit"
ON_DEMAND = "on_demand"  # a spot sweep's trial that falls back to on-demand capacity
PRUNED_AT = "pruned_at_step"  # the pruner stopped the trial's job at this step
RUN_PREFIX = "sweeper:run:"  # study attribute per trial: its Experiments Run
NOTES = "sweeper:notes"
WARM_POOLS = "sweeper:warm_pools"
POOL_SECONDS = "sweeper:pool_seconds"


@dataclass(frozen=True, slots=True)
class Counts:
    complete: int
    failed: int
    running: int
    pruned: int  # stopped early by the pruner
    unlaunched: int = 0  # closed before a job ran (Optuna's PRUNED too)

    @property
    def total(self) -> int:
        return self.complete + self.failed + self.running + self.pruned + self.unlaunched

    @property
    def dispatched(self) -> int:
        """Trials that count toward the budget: all but those never launched."""
        return self.complete + self.failed + self.running + self.pruned


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """A trial as the scheduler sees it: parameters and its current job."""

    number: int
    params: dict[str, Any]
    job_name: str | None
    attempt: int = 1
    stopped_on_exit: bool = False
    on_demand: bool = False  # its job runs on on-demand capacity (spot fallback)
    pruned_at: int | None = None  # the pruner decided to stop it at this step


JobNamer = Callable[[int, int], str]  # (trial number, attempt) -> job name


class SweepStudy:
    """Ask/tell over an Optuna study named after the sweep.

    Not thread-safe by itself; its coroutines serialise storage access on one thread,
    so any number of tasks may await them concurrently.
    """

    def __init__(self, study: optuna.Study, config: SweepConfig) -> None:
        self._study = study
        self._config = config
        self._distributions = space.distributions(config.space)
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="study")
        self._live: dict[int, optuna.Trial] = {}
        self._reported: dict[int, set[int]] = {}  # steps told to a running trial

    @classmethod
    def open(
        cls, config: SweepConfig, storage: str | None = None, *, create: bool = True
    ) -> SweepStudy:
        """Create the study or load it (``storage`` overrides the config's URL).

        Raises ConfigError if the space file no longer matches the stored study, or,
        with ``create=False``, if there is no such study yet. A loaded study's sampler
        is reseeded from (seed, trials so far), so a resumed seeded sweep does not replay
        the configurations it started with.
        """
        url = storage if storage is not None else config.storage_url
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if not create:
            try:
                study = optuna.load_study(study_name=config.name, storage=open_storage(url) or url)
            except KeyError as exc:
                raise ConfigError(f"no sweep named {config.name!r} in {url} yet") from exc
        else:
            study = optuna.create_study(
                storage=open_storage(url),
                study_name=config.name,
                direction=optuna.study.StudyDirection[config.objective.direction.upper()],
                load_if_exists=True,
            )
        check_spec(study, config, url)
        study.sampler = make_sampler(config, offset=len(study.get_trials(deepcopy=False)))
        study.pruner = make_pruner(config)
        return cls(study, config)

    @property
    def study(self) -> optuna.Study:
        """The Optuna study itself, read-only by convention: for Optuna's visualization."""
        return self._study

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def trial_limit(self) -> int:
        """How many trials the sweep may hold in all: ``max_trials``, or the grid's size."""
        limit = self._config.budget.max_trials
        if self._config.sampler.kind == SamplerKind.GRID:
            limit = min(limit, space.grid_size(self._config.space))
        return limit

    async def ask(self, job_name: JobNamer) -> TrialRecord:
        """Start a trial and record its first job's name; return it."""
        return await self._run(self._ask, job_name)

    def _ask(self, job_name: JobNamer) -> TrialRecord:
        trial = self._study.ask(self._distributions)
        name = job_name(trial.number, 1)
        trial.set_user_attr(JOB_NAME, name)
        trial.set_user_attr(ATTEMPT, 1)
        self._live[trial.number] = trial
        return TrialRecord(trial.number, dict(trial.params), name)

    async def running(self, *, repair: bool = True) -> list[TrialRecord]:
        """Every RUNNING trial (left by an earlier run, or by another orchestrator).

        With ``repair``, a trial whose sampling itself was cut short (Optuna stores each
        parameter separately) is closed as PRUNED, "not launched": no job can have been
        created for it, and it does not count toward the budget.
        """
        return await self._run(self._running, repair)

    def _running(self, repair: bool) -> list[TrialRecord]:
        out = []
        for frozen in self._study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            # Optuna has no public way from a FrozenTrial to its live Trial but the id.
            self._live[frozen.number] = optuna.trial.Trial(self._study, frozen._trial_id)
            self._reported[frozen.number] = set(frozen.intermediate_values)
            if repair and set(frozen.params) != set(self._distributions):
                reason = "not launched: its sampling was interrupted"
                self._tell(frozen.number, TrialState.PRUNED, None, {"pruned": reason})
                continue
            attrs = frozen.user_attrs
            out.append(
                TrialRecord(
                    frozen.number,
                    dict(frozen.params),
                    attrs.get(JOB_NAME),
                    int(attrs.get(ATTEMPT, 1)),
                    bool(attrs.get(STOPPED_ON_EXIT, False)),
                    bool(attrs.get(ON_DEMAND, False)),
                    attrs.get(PRUNED_AT),
                )
            )
        return out

    async def assign_job(
        self, number: int, job_name: str, attempt: int, on_demand: bool = False
    ) -> None:
        """Record a trial's (next) job before it is created."""
        attrs = {JOB_NAME: job_name, ATTEMPT: attempt, STOPPED_ON_EXIT: False}
        await self._run(self._set_attrs, number, attrs | ({ON_DEMAND: True} if on_demand else {}))

    async def mark_stopped_on_exit(self, number: int) -> None:
        """The sweep stopped this trial's job as it exited: resume runs it again."""
        await self._run(self._set_attrs, number, {STOPPED_ON_EXIT: True})

    def _set_attrs(self, number: int, attrs: dict[str, Any]) -> None:
        for key, val in attrs.items():
            self._live[number].set_user_attr(key, val)

    async def tell_complete(self, number: int, value: float, attrs: dict[str, Any]) -> None:
        await self._run(self._tell, number, TrialState.COMPLETE, value, attrs)

    async def tell_failed(self, number: int, reason: str, attrs: dict[str, Any]) -> None:
        await self._run(self._tell, number, TrialState.FAIL, None, {**attrs, "failure": reason})

    async def tell_pruned(self, number: int, reason: str) -> None:
        """Close a trial that never ran (the sweep stopped before launching it)."""
        await self._run(self._tell, number, TrialState.PRUNED, None, {"pruned": reason})

    async def report(self, number: int, points: list[tuple[int, float]]) -> bool:
        """Record a running trial's new intermediate values, as (step, value); return
        whether the pruner says to stop it. A step already reported is skipped."""
        return await self._run(self._report, number, points)

    def _report(self, number: int, points: list[tuple[int, float]]) -> bool:
        trial = self._live[number]
        done = self._reported.setdefault(number, set())
        for step, value in points:
            if step not in done:
                trial.report(value, step)
                done.add(step)
        return bool(trial.should_prune())

    async def mark_pruning(self, number: int, step: int) -> None:
        """The pruner stopped this trial at ``step``: recorded before its job is stopped,
        so a crash between the two resumes to the same decision."""
        await self._run(self._set_attrs, number, {PRUNED_AT: step})

    async def tell_stopped_early(self, number: int, step: int, attrs: dict[str, Any]) -> None:
        """Close a trial the pruner stopped (Optuna's PRUNED, valued at its last step)."""
        self._reported.pop(number, None)
        reason = f"pruned at step {step}"
        attrs = {**attrs, PRUNED_AT: step, "pruned": reason}
        await self._run(self._tell, number, TrialState.PRUNED, None, attrs)

    def _tell(
        self, number: int, state: TrialState, value: float | None, attrs: dict[str, Any]
    ) -> None:
        trial = self._live.pop(number)
        for key, val in attrs.items():
            trial.set_user_attr(key, val)
        self._study.tell(trial, value, state=state)

    async def trials(self) -> list[FrozenTrial]:
        return await self._run(self._study.get_trials, False)

    async def counts(self) -> Counts:
        trials = await self.trials()
        by = {s: sum(t.state == s for t in trials) for s in TrialState}
        pruned = sum(t.state == TrialState.PRUNED and PRUNED_AT in t.user_attrs for t in trials)
        return Counts(
            complete=by[TrialState.COMPLETE],
            failed=by[TrialState.FAIL],
            running=by[TrialState.RUNNING] + by[TrialState.WAITING],
            pruned=pruned,
            unlaunched=by[TrialState.PRUNED] - pruned,
        )

    async def add_note(self, number: int, text: str) -> None:
        """Attach a comment to a trial (kept on the study: Optuna freezes finished trials)."""
        await self._run(self._add_note, number, text)

    def _add_note(self, number: int, text: str) -> None:
        if not 0 <= number < len(self._study.get_trials(deepcopy=False)):
            raise ConfigError(f"sweep {self._config.name!r} has no trial {number}")
        notes = dict(self._study.user_attrs.get(NOTES, {}))
        notes[str(number)] = text
        self._study.set_user_attr(NOTES, notes)

    async def notes(self) -> dict[int, str]:
        stored = await self._run(lambda: self._study.user_attrs.get(NOTES, {}))
        return {int(k): str(v) for k, v in stored.items()}

    async def set_warm_pools(self, pools: dict[str, str], seconds: dict[str, int]) -> None:
        """Each job's last-seen WarmPoolStatus (``Reused`` counts a pool taken over) and
        its pool's retained billable seconds."""
        await self._run(self._study.set_user_attr, WARM_POOLS, pools)
        await self._run(self._study.set_user_attr, POOL_SECONDS, seconds)

    async def warm_pools(self) -> tuple[dict[str, str], dict[str, int]]:
        """What :meth:`set_warm_pools` stored: (status by job, retained seconds by job)."""
        attrs = await self._run(lambda: dict(self._study.user_attrs))
        return dict(attrs.get(WARM_POOLS, {})), dict(attrs.get(POOL_SECONDS, {}))

    async def set_run(self, number: int, run: dict[str, Any]) -> None:
        """Where a trial's Experiments Run is and whether it is complete (a study attribute
        per trial: finished trials are frozen, and one key each never races)."""
        await self._run(self._study.set_user_attr, f"{RUN_PREFIX}{number}", run)

    async def runs(self) -> dict[int, dict[str, Any]]:
        """Every trial's run record (see :meth:`set_run`), by trial number."""
        attrs = await self._run(lambda: dict(self._study.user_attrs))
        return {
            int(k.removeprefix(RUN_PREFIX)): v for k, v in attrs.items() if k.startswith(RUN_PREFIX)
        }

    async def importances(self) -> dict[str, float]:
        """Parameter importances (Optuna's default evaluator); empty under two results."""
        return await self._run(self._importances)

    def _importances(self) -> dict[str, float]:
        done = self._study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(done) < 2:
            return {}
        try:
            found = optuna.importance.get_param_importances(self._study)
        except (RuntimeError, ValueError):  # e.g. no parameter ever varied
            return {}
        return {k: float(v) for k, v in found.items()}

    async def best(self) -> FrozenTrial | None:
        """The best COMPLETE trial, or None when there is none yet."""
        done = [t for t in await self.trials() if t.state == TrialState.COMPLETE]
        if not done:
            return None
        pick = max if self._config.objective.direction == "maximize" else min
        return pick(done, key=lambda t: t.value if t.value is not None else -math.inf)
