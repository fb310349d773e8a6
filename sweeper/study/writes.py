"""Writing a running trial: its job, intermediate values, pruning marks and verdict.

Mixed into :class:`~sweeper.study.SweepStudy`, whose storage thread runs the work. Only
trials this orchestrator holds (``_live``) are written; one another orchestrator took
over and closed meanwhile (it took this one for dead) is let go, its word standing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import optuna
from optuna.trial import TrialState

from sweeper.study.ownership import Leases
from sweeper.study.records import ATTEMPT, JOB_NAME, ON_DEMAND, PRUNED_AT, RUNG, STOPPED_ON_EXIT
from sweeper.study.user_attrs import set_user_attrs

T = TypeVar("T")
# A trial this orchestrator still holds was closed by another, which took it for dead
# (its lease lapsed while it was silent): the other's word stands.
CLOSED_ELSEWHERE = optuna.exceptions.UpdateFinishedTrialError


class TrialWrites:
    """A sweep's writes to its running trials. Needs ``_study``, ``_live``, ``_reported``,
    ``told``, ``_leases``, ``_rdb``, ``owner`` and ``_run``."""

    _study: optuna.Study
    _live: dict[int, optuna.Trial]
    told: int  # trials this orchestrator has closed: their values may now guide the pruner
    _reported: dict[int, set[int]]
    _leases: Leases
    _rdb: optuna.storages.RDBStorage | None

    @property
    def owner(self) -> str:
        raise NotImplementedError

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def assign_job(
        self, number: int, job_name: str, attempt: int, on_demand: bool = False, rung: int = 0
    ) -> None:
        """Record a trial's (next) job, and the rung it trains to, before it is created."""
        attrs: dict[str, Any] = {JOB_NAME: job_name, ATTEMPT: attempt, STOPPED_ON_EXIT: False}
        attrs |= ({ON_DEMAND: True} if on_demand else {}) | ({RUNG: rung} if rung else {})
        await self._run(self._set_attrs, number, attrs)

    async def mark_stopped_on_exit(self, number: int) -> None:
        """The sweep stopped this trial's job as it exited: resume runs it again."""
        await self._run(self._set_attrs, number, {STOPPED_ON_EXIT: True})

    def _set_attrs(self, number: int, attrs: dict[str, Any]) -> None:
        trial = self._live.get(number)
        if trial is None:
            return
        try:
            set_user_attrs(trial, attrs, self._rdb)
        except CLOSED_ELSEWHERE:  # adopted and closed while this one was silent
            del self._live[number]

    async def tell_complete(
        self,
        number: int,
        values: Sequence[float],
        attrs: dict[str, Any],
        violations: Mapping[str, float] | None = None,
    ) -> None:
        """Close a trial with its objectives' ``values``; ``violations`` (each
        constraint's, <= 0 when it holds) are set on it first, where the samplers that
        take constraints read them."""
        await self._run(
            self._tell, number, TrialState.COMPLETE, list(values), attrs, dict(violations or {})
        )

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
        trial = self._live.get(number)
        if trial is None:
            return False
        done = self._reported.setdefault(number, set())
        try:
            for step, value in points:
                if step not in done:
                    trial.report(value, step)
                    done.add(step)
        except CLOSED_ELSEWHERE:  # adopted and closed while this one was silent
            del self._live[number]
            return False
        return bool(trial.should_prune())

    async def pause(self, number: int, attrs: dict[str, Any], step: int, value: float) -> None:
        """Record a trial paused at a rung (promotion): ``attrs`` (its rungs), and its
        value there as the intermediate value at ``step`` (the rung's resource). It stays
        RUNNING, claimed here; idempotent."""
        await self._run(self._pause, number, attrs, step, value)

    def _pause(self, number: int, attrs: dict[str, Any], step: int, value: float) -> None:
        self._set_attrs(number, attrs)
        self._report(number, [(step, value)])

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
        self,
        number: int,
        state: TrialState,
        values: list[float] | None,
        attrs: dict[str, Any],
        violations: dict[str, float] | None = None,
    ) -> None:
        """Close a trial this orchestrator holds; one it no longer holds (adopted by
        another while this one was silent: its claim says so), or already closed, is
        left as it is."""
        trial = self._live.get(number)  # kept until the tell is stored: an outage retries
        if trial is None:
            return
        if self._leases.owners([number]).get(number) != self.owner:
            del self._live[number]
            return
        try:
            set_user_attrs(trial, attrs, self._rdb)
            if violations:
                told = trial.constraints  # a tell retried after an outage set some
                for key, violation in violations.items():
                    if key not in told:
                        trial.set_constraint(key, violation)
            self._study.tell(trial, values, state=state, skip_if_finished=True)
            self.told += 1
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another orchestrator closed it: its word stands
        del self._live[number]
