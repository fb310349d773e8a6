"""The sweep's pure decisions: judging a finished job, and when to stop dispatching."""

from __future__ import annotations

import pytest

from sweeper.config import Budget, Goal, Objective
from sweeper.decisions import MAX_ATTEMPTS, Attempt, SweepState, Verdict, judge, stop_reason
from sweeper.types import JobState, JobStatus, StopReason

LOSS = Objective("loss", "minimize")
GOAL = Goal((LOSS,))


def state(status: JobStatus, reason: str = "", secondary: str = "", **metrics: float) -> JobState:
    return JobState("j", status, secondary, reason, final_metrics=dict(metrics))


def test_a_completed_job_gives_its_objective_value() -> None:
    found = judge(state(JobStatus.COMPLETED, loss=0.25), Attempt(1), GOAL)
    assert (found.verdict, found.values) == (Verdict.COMPLETE, (0.25,))


@pytest.mark.parametrize("metrics", [{}, {"loss": float("nan")}, {"other": 1.0}])
def test_a_completed_job_without_a_finite_value_fails(metrics: dict[str, float]) -> None:
    found = judge(state(JobStatus.COMPLETED, **metrics), Attempt(1), GOAL)
    assert found.verdict == Verdict.FAIL and "no value for objective metric 'loss'" in found.reason


def test_platform_failures_and_our_own_stops_are_retried_up_to_the_limit() -> None:
    internal = state(JobStatus.FAILED, "InternalServerError: host lost")
    assert judge(internal, Attempt(1), GOAL).verdict == Verdict.RETRY
    assert judge(internal, Attempt(MAX_ATTEMPTS), GOAL).verdict == Verdict.FAIL
    stopped = state(JobStatus.STOPPED, secondary="Stopped")
    assert judge(stopped, Attempt(1, stopped_on_exit=True), GOAL).verdict == Verdict.RETRY
    assert judge(stopped, Attempt(1), GOAL).verdict == Verdict.FAIL  # someone else stopped it


def test_a_script_failure_fails_the_trial_with_its_reason() -> None:
    found = judge(state(JobStatus.FAILED, "AlgorithmError: boom"), Attempt(1), GOAL)
    assert (found.verdict, found.reason) == (Verdict.FAIL, "AlgorithmError: boom")


def sweep(**kw: float | int | None) -> SweepState:
    base: dict[str, float | int | None] = dict(
        failures=0, elapsed=0.0, billable=0.0, best=None, since_best=0
    )
    return SweepState(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("budget", "now", "expected"),
    [
        (Budget(max_failures=2), sweep(failures=1), None),
        (Budget(max_failures=2), sweep(failures=2), StopReason.FAILURES),
        (Budget(max_wall_seconds=10), sweep(elapsed=10.0), StopReason.WALL),
        (Budget(max_billable_seconds=5), sweep(billable=4.0), None),
        (Budget(max_billable_seconds=5), sweep(billable=5.0), StopReason.BILLABLE),
        (Budget(target=0.1), sweep(best=0.2), None),
        (Budget(target=0.1), sweep(best=0.1), StopReason.TARGET),
        (Budget(target=0.1), sweep(best=0.05), StopReason.TARGET),
        (Budget(patience=3), sweep(since_best=3), StopReason.PATIENCE),
    ],
)
def test_stop_reason(budget: Budget, now: SweepState, expected: StopReason | None) -> None:
    assert stop_reason(budget, LOSS, now) == expected


def test_the_target_follows_the_direction() -> None:
    accuracy = Objective("acc", "maximize")
    assert stop_reason(Budget(target=0.9), accuracy, sweep(best=0.95)) == StopReason.TARGET
    assert stop_reason(Budget(target=0.9), accuracy, sweep(best=0.85)) is None
    assert accuracy.better(0.9, 0.8) and LOSS.better(0.8, 0.9) and not LOSS.better(0.8, 0.8)


def test_spot_that_capacity_could_not_serve_falls_back_on_demand_or_fails_saying_how() -> None:
    waited = state(JobStatus.STOPPED, secondary="MaxWaitTimeExceeded")
    found = judge(waited, Attempt(1, spot=True, fallback=True), GOAL)
    assert found.verdict == Verdict.ON_DEMAND
    failed = judge(waited, Attempt(1, spot=True), GOAL)
    assert failed.verdict == Verdict.FAIL and "spot_fallback: on_demand" in failed.reason
    capacity = state(JobStatus.FAILED, "CapacityError: Unable to provision requested ML compute")
    assert judge(capacity, Attempt(2, spot=True, fallback=True), GOAL).verdict == Verdict.ON_DEMAND
    # On demand already (or never spot), MaxWait is just a stop.
    assert judge(waited, Attempt(2, fallback=True), GOAL).verdict == Verdict.FAIL


def test_max_cost_counts_what_is_spent_and_what_runs() -> None:
    budget = Budget(max_cost=10.0)
    assert stop_reason(budget, LOSS, sweep(committed_cost=None)) is None  # nothing known yet
    assert stop_reason(budget, LOSS, sweep(committed_cost=10.0)) is None
    assert stop_reason(budget, LOSS, sweep(committed_cost=10.5)) == StopReason.COST


def test_a_job_the_pruner_stopped_is_pruned_unless_it_completed_first() -> None:
    stopped = state(JobStatus.STOPPED, secondary="Stopped")
    found = judge(stopped, Attempt(1, pruned_at=4), GOAL)
    assert (found.verdict, found.reason) == (Verdict.PRUNED, "pruned at step 4")
    lost = state(JobStatus.FAILED, "InternalServerError: host lost")
    assert judge(lost, Attempt(1, pruned_at=4), GOAL).verdict == Verdict.PRUNED  # not retried
    done = state(JobStatus.COMPLETED, loss=0.5)
    assert judge(done, Attempt(1, pruned_at=4), GOAL).verdict == Verdict.COMPLETE
