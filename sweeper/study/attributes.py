"""What a study keeps beside its trials, in study attributes: notes, warm pools, runs,
and what is derived from all trials at once (counts, the best trial, importances).

Mixed into :class:`~sweeper.study.SweepStudy`, whose storage thread runs the work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeper.config import SweepConfig
from sweeper.errors import ConfigError
from sweeper.study import importance
from sweeper.study.records import NOTES, POOL_SECONDS, PRUNED_AT, RUN_PREFIX, WARM_POOLS, Counts

T = TypeVar("T")


class StudyAttributes:
    """The study-level records of a sweep. Needs ``_study``, ``_config`` and ``_run``."""

    _study: optuna.Study
    _config: SweepConfig

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
            lambda: importance.importances(trials or self._all(), self._study.direction)
        )

    async def counts(self) -> Counts:
        trials = await self._run(self._all)
        by = {s: sum(t.state == s for t in trials) for s in TrialState}
        pruned = sum(t.state == TrialState.PRUNED and PRUNED_AT in t.user_attrs for t in trials)
        return Counts(
            complete=by[TrialState.COMPLETE],
            failed=by[TrialState.FAIL],
            running=by[TrialState.RUNNING] + by[TrialState.WAITING],
            pruned=pruned,
            unlaunched=by[TrialState.PRUNED] - pruned,
        )

    async def best(self) -> FrozenTrial | None:
        """The best COMPLETE trial, or None when there is none yet."""
        done = [t for t in await self._run(self._all) if t.state == TrialState.COMPLETE]
        if not done:
            return None
        pick = max if self._config.objective.direction == "maximize" else min
        return pick(done, key=lambda t: t.value if t.value is not None else -math.inf)
