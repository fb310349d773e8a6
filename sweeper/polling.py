"""When to poll next: few calls for long jobs, quick detection for short ones.

A fixed poll interval trades API calls against idle slots: polling every 0.1 s wastes
calls on hour-long jobs, polling every 30 s leaves a slot idle for 15 s on average
after each job ends. The planner instead polls

* at the moment a running job is *expected* to end, once completed jobs have shown
  how long jobs take (the shortest of the recent ones, so early finishers are caught);
* then, while it is overdue, every ``precision`` * the expected duration (a job is
  seen at most that share of its run late), or after ``ratio`` * its overdue time once
  that is longer, so a job that runs far longer than expected costs only
  logarithmically many polls;
* before any job has completed, after ``ratio`` * the youngest job's age: the first
  jobs are seen at most that share of their run late (a tenth: a 30-minute first round
  leaves its slots idle 1.5 minutes on average, where a quarter left them 3.75), for
  about ln(d / min_interval) / ln(1 + ratio) polls (70 for 30 minutes on SageMaker).

The result is clamped to ``[min_interval, max_interval]``. One poll covers every job
in flight (a batched Search), so the delay is the minimum over the jobs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PollTiming:
    min_interval: float = 0.05
    max_interval: float = 2.0
    ratio: float = 0.1
    precision: float = 0.05  # tolerated detection delay, as a share of the expected duration
    window: int = 8  # how many recent durations inform the expectation


# Loopback calls cost next to nothing: poll tightly so a freed slot is seen at once.
EMULATOR_TIMING = PollTiming(min_interval=0.005, max_interval=2.0, precision=0.01)
SAGEMAKER_TIMING = PollTiming(min_interval=2.0, max_interval=60.0)


class PollPlanner:
    """Not task-safe; owned by the scheduler's loop."""

    def __init__(self, timing: PollTiming) -> None:
        self.timing = timing
        self._recent: deque[float] = deque(maxlen=timing.window)

    def record(self, duration: float) -> None:
        """A job completed after ``duration`` seconds (service clock, create to end)."""
        self._recent.append(max(0.0, duration))

    @property
    def expected(self) -> float | None:
        """The shortest recent duration: when the next job may end."""
        return min(self._recent) if self._recent else None

    @property
    def mean(self) -> float | None:
        """The mean recent duration: how long a job takes, for estimates."""
        return sum(self._recent) / len(self._recent) if self._recent else None

    def delay(self, ages: Iterable[float]) -> float:
        """Seconds until the next poll, given the ages of the jobs in flight."""
        t = self.timing
        expected = self.expected
        best = t.max_interval
        for age in ages:
            if expected is None:
                wait = t.ratio * age
            elif age < expected:
                wait = expected - age
            else:
                wait = max(t.precision * expected, t.ratio * (age - expected))
            best = min(best, wait)
        return min(max(best, t.min_interval), t.max_interval)
