from __future__ import annotations

import math
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from sweeper.aws.retry import RetryPolicy, classify
from sweeper.errors import BackendError, CapacityError, TransientError
from sweeper.polling import EMULATOR_TIMING, SAGEMAKER_TIMING, PollPlanner, PollTiming

TIMING = PollTiming(min_interval=0.05, max_interval=2.0, ratio=0.25)


def test_before_any_completion_polls_back_off_with_the_youngest_age() -> None:
    planner = PollPlanner(TIMING)
    assert planner.delay([0.0]) == 0.05  # clamped to the minimum
    assert planner.delay([4.0, 1.0]) == 0.25  # a quarter of the youngest age
    assert planner.delay([100.0]) == 2.0  # clamped to the maximum


@pytest.mark.parametrize("timing", [EMULATOR_TIMING, SAGEMAKER_TIMING])
@pytest.mark.parametrize("duration", [1.0, 60.0, 1800.0])
def test_the_first_jobs_are_seen_within_a_tenth_of_their_run_in_few_polls(
    timing: PollTiming, duration: float
) -> None:
    """Before any job has ended there is nothing to expect: the planner's polls, followed
    on a fake clock, find a job that ends at ``duration`` at most a tenth of it late
    (or one minimum interval, or at most the maximum), in logarithmically many polls
    (then one per maximum interval)."""
    planner, now, polls = PollPlanner(timing), 0.0, 0
    while now < duration:
        now += planner.delay([now])
        polls += 1
    late = min(0.1 * duration, timing.max_interval)  # the slowest poll rate is the cap
    assert now - duration <= max(late, timing.min_interval) + 1e-9
    backing_off = math.log(max(duration, timing.min_interval) / timing.min_interval) / math.log(1.1)
    assert polls <= backing_off + duration / timing.max_interval + 12


def test_after_completions_polls_at_the_expected_end_then_back_off() -> None:
    planner = PollPlanner(TIMING)
    for duration in (1.2, 1.0, 1.1):
        planner.record(duration)
    assert planner.expected == 1.0
    assert planner.delay([0.3]) == pytest.approx(0.7)  # exactly when it should end
    assert planner.delay([1.0]) == 0.05  # due now: poll within 5% of the duration
    assert planner.delay([5.0]) == pytest.approx(1.0)  # long overdue: back off


def test_overdue_polls_scale_with_the_expected_duration() -> None:
    planner = PollPlanner(PollTiming(min_interval=0.05, max_interval=60.0, precision=0.05))
    planner.record(100.0)
    assert planner.delay([100.5]) == pytest.approx(5.0)  # 5% of 100 s, not the minimum


def test_one_poll_serves_the_job_due_first() -> None:
    planner = PollPlanner(TIMING)
    planner.record(1.0)
    assert planner.delay([0.1, 0.9, 0.5]) == pytest.approx(0.1)


def _client_error(code: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "CreateTrainingJob")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_client_error("ThrottlingException", 400), TransientError),
        (_client_error("InternalFailure", 500), TransientError),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), TransientError),
        (_client_error("ResourceLimitExceeded", 400), CapacityError),
        (_client_error("ValidationException", 400), BackendError),
        (_client_error("ResourceInUse", 400), BackendError),
    ],
)
def test_errors_are_classified(error: Exception, kind: type) -> None:
    assert type(classify(error)) is kind


async def test_transient_errors_are_retried_with_backoff_on_the_injected_sleep() -> None:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise _client_error("ThrottlingException", 400)
        return "ok"

    policy = RetryPolicy(attempts=6, initial=1.0, maximum=30.0, sleep=fake_sleep)
    assert await policy.call(flaky) == "ok"
    assert calls == 4
    assert len(sleeps) == 3
    assert all(0 <= s <= 30 for s in sleeps)


async def test_permanent_errors_are_not_retried_and_transient_ones_give_up() -> None:
    async def no_sleep(seconds: float) -> None:
        return None

    calls = 0

    async def invalid() -> None:
        nonlocal calls
        calls += 1
        raise _client_error("ValidationException", 400)

    with pytest.raises(BackendError, match="ValidationException"):
        await RetryPolicy(sleep=no_sleep).call(invalid)
    assert calls == 1

    async def throttled() -> None:
        nonlocal calls
        calls += 1
        raise _client_error("ThrottlingException", 400)

    calls = 0
    with pytest.raises(TransientError):
        await RetryPolicy(attempts=3, sleep=no_sleep).call(throttled)
    assert calls == 3
