"""The regex guard judges the pattern, not the machine: a search whose thread was kept
from running past the engine's wall-clock limit is searched again, and only one that has
spent its CPU-time bound is slow."""

from __future__ import annotations

import pytest

from sweeper.patterns import Pattern, SlowPattern

BENIGN = r"objective=([-0-9.eE+]+)"
LINE = "objective=58.41039326619242"
SLOW = r"(.*){1,32000}[bc](\d)"  # backtracks for hours on a line without b or c


def test_a_benign_regex_is_never_slow_however_starved_its_thread() -> None:
    """The engine's wall limit made a nanosecond: every first attempt of every search
    runs out of wall time at once, as on a machine that keeps the thread descheduled
    past the limit. None of 10 000 searches is declared slow; each finds its value."""
    starved = Pattern(BENIGN, "metric 'objective' regex", wall=1e-9)
    for _ in range(10_000):
        match = starved.search(LINE)
        assert match is not None and match.group(1) == "58.41039326619242"
    assert starved.stalls >= 10_000  # the wall limit did run out, every time


def test_a_pathological_regex_is_still_refused_starved_or_not() -> None:
    for wall in (None, 1e-9):
        slow = Pattern(SLOW, "metric 'slow' regex", seconds=0.05, wall=wall)
        with pytest.raises(SlowPattern, match=r"more than 0\.05 s of CPU time"):
            slow.search("a" * 40)


def test_the_bound_is_cpu_time_as_the_injected_clock_tells_it() -> None:
    """A clock that says the thread spent its bound makes a timed-out search slow at its
    first attempt; one that says it spent nothing lets the search go on."""
    spent = iter([0.0, 10.0])
    slow = Pattern(BENIGN, seconds=1.0, wall=1e-9, cpu=lambda: next(spent))
    with pytest.raises(SlowPattern):
        slow.search(LINE)
    idle = Pattern(BENIGN, seconds=1.0, wall=1e-9, cpu=lambda: 0.0)
    assert idle.search(LINE) is not None and idle.stalls > 0


def test_the_emulator_drops_a_slow_pattern_once_and_matches_the_rest() -> None:
    from sweeper.emulator.watch import Watch

    slow = Pattern(SLOW, "MetricDefinitions 'slow' regex", seconds=0.05)
    watch = Watch(
        [("slow", slow), ("objective", Pattern(BENIGN))],
        fault=Pattern(SLOW, "internal_error_on_log", seconds=0.05),
    )
    first = watch.scan("a" * 40 + " " + LINE)
    assert first.metrics == {"objective": 58.41039326619242}
    assert len(first.dropped) == 2 and not first.fault
    assert "MetricDefinitions 'slow' regex" in first.dropped[0]
    assert "no longer matched on this job's output" in first.dropped[1]
    again = watch.scan("a" * 40 + " objective=1.5")
    assert again.metrics == {"objective": 1.5} and again.dropped == ()
    assert watch.fault is None and [name for name, _ in watch.metrics] == ["objective"]
