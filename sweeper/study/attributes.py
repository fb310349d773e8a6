"""What a study keeps beside its trials, in study attributes: notes, warm pools, runs,
and what is derived from all trials at once (counts, the best trial, importances).

Mixed into :class:`~sweeper.study.SweepStudy`, whose storage thread runs the work.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeper.config import SweepConfig
from sweeper.errors import ConfigError
from sweeper.study import importance
from sweeper.study.fronts import pareto_trials, ranked
from sweeper.study.reader import count_states
from sweeper.study.records import (
    NOTES,
    POOL_SECONDS,
    PRUNED_AT,
    QUOTA_REFUSED,
    REQUEUED,
    RUN_PREFIX,
    WARM_POOLS,
    Counts,
)
from sweeper.study.warm import WARM

T = TypeVar("T")


class StudyAttributes:
    """The study-level records of a sweep. Needs ``_study``, ``_config`` and ``_run``."""

    _study: optuna.Study
    _config: SweepConfig
    _rdb: optuna.storages.RDBStorage | None
    warm: frozenset[int]  # a warm start's parent trials (see sweeper.study.warm)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    def _all(self) -> list[FrozenTrial]:
        raise NotImplementedError

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

    async def importances(self, trials: list[FrozenTrial] | None = None) -> dict[str, float]:
        """Parameter importances (:func:`sweeper.study.importance.importances`).
        ``trials``: every trial, when the caller has read them already."""
        return await self._run(
            lambda: importance.importances(trials or self._all(), self._study.directions)
        )

    async def counts(self) -> Counts:
        """Trials by outcome (counting queries on a database: no trial is read). A trial
        an earlier version failed on a quota refusal, run again since (see
        :meth:`requeue_quota_refusals`), counts as never launched."""
        by, pruned = await self._run(self._count_states)
        requeued = len(await self._run(self._requeued))
        return Counts(
            complete=by.get(TrialState.COMPLETE, 0) - len(self.warm),
            failed=by.get(TrialState.FAIL, 0) - requeued,
            running=by.get(TrialState.RUNNING, 0),
            pruned=pruned,
            unlaunched=by.get(TrialState.PRUNED, 0) - pruned + requeued,
            warm=len(self.warm),
            waiting=by.get(TrialState.WAITING, 0),
        )

    async def warm_start(self) -> dict[str, Any]:
        """What the warm start added (:func:`sweeper.study.warm.apply`'s record; empty
        without one)."""
        return await self._run(lambda: dict(self._study.user_attrs.get(WARM, {})))

    def _requeued(self) -> list[int]:
        return [int(n) for n in self._study.user_attrs.get(REQUEUED, [])]

    async def requeue_quota_refusals(self) -> list[int]:
        """Run again, as new trials with the same parameters, the trials an earlier
        version failed because a quota refused their job (no job ran: it was not the
        trial's fault); return their numbers. Each is requeued once."""
        return await self._run(self._requeue_quota_refusals)

    def _requeue_quota_refusals(self) -> list[int]:
        done = set(self._requeued())
        found = [
            t
            for t in self._study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            if t.number not in done
            and str(t.user_attrs.get("failure", "")).startswith(QUOTA_REFUSED)
        ]
        for trial in found:
            self._study.enqueue_trial(trial.params, skip_if_exists=False)
        if found:
            numbers = sorted(done | {t.number for t in found})
            self._study.set_user_attr(REQUEUED, numbers)
        return [t.number for t in found]

    def _count_states(self) -> tuple[dict[TrialState, int], int]:
        if self._rdb is None:
            trials = self._study.get_trials(deepcopy=False)
            marked = sum(t.state == TrialState.PRUNED and PRUNED_AT in t.user_attrs for t in trials)
            return Counter(t.state for t in trials), marked
        study_id = self._rdb.get_study_id_from_name(self._study.study_name)
        return count_states(self._rdb.engine, study_id, PRUNED_AT)

    async def best(self) -> FrozenTrial | None:
        """The best feasible COMPLETE trial of a single-objective sweep, or None when there
        is none yet, or the sweep has several objectives (Optuna's own query: no trial but
        the best is read)."""
        return await self._run(self._best)

    def _best(self) -> FrozenTrial | None:
        if not self._config.goal.single:
            return None
        if self.warm:  # Optuna's best may be a parent's trial: this sweep's own only
            maximize = self._config.goal.objectives[0].direction == "maximize"
            done = sorted(ranked(self._all()), key=lambda t: t.values[0], reverse=maximize)
            return done[0] if done else None
        try:
            return self._study.best_trial
        except ValueError:  # no (feasible) COMPLETE trial yet
            return None

    async def front(self) -> list[FrozenTrial]:
        """The Pareto front: the feasible COMPLETE trials no other feasible one dominates,
        ordered by the first objective, best first (one objective: the best trial)."""
        return await self._run(self._front)

    def _front(self) -> list[FrozenTrial]:
        if self._config.goal.single:
            best = self._best()
            return [] if best is None else [best]
        return pareto_trials(self._all(), self._config.goal.directions)
