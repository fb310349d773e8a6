"""Metric values read from a job's log lines with the space file's ``metric_definitions``.

As SageMaker reads them: each definition's regex is searched in each line and its first
capture group is the value. The step of a value is a later named group ``step`` when
the regex has one (``acc=([0-9.]+) epoch=(?P<step>\\d+)``), else its position in the
job's series of that metric (0, 1, 2, ...). Used for the Experiments runs' series and
for the intermediate values of running jobs.

The regexes are the user's: :meth:`MetricReader.scan` runs them in a worker thread, each
search under a time bound (:mod:`sweeper.patterns`). A definition whose regex passes the
bound is dropped for the rest of the sweep, with one warning that names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sweeper.config import MetricDefinition
from sweeper.patterns import Pattern, SlowPattern


@dataclass(frozen=True, slots=True)
class MetricPoint:
    metric: str
    step: int
    value: float


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


class MetricReader:
    """Parses lines into points. Not task-safe; keep one per reader of a log."""

    def __init__(
        self, definitions: Iterable[MetricDefinition], warn: Callable[[str], None] = _warn
    ) -> None:
        self._regexes = [
            (m.name, Pattern(m.regex, f"metric_definitions {m.name!r} regex")) for m in definitions
        ]
        self._counts: dict[tuple[str, str], int] = {}  # (job, metric) -> values so far
        self._warn = warn

    async def scan(self, job: str, lines: Sequence[str]) -> list[tuple[int, MetricPoint]]:
        """The values of ``lines`` of ``job`` with the index of the line each came from,
        in order, found in a worker thread (the event loop never waits on a regex)."""
        if not lines or not self._regexes:
            return []
        return await asyncio.to_thread(self._scan, job, lines)

    def _scan(self, job: str, lines: Sequence[str]) -> list[tuple[int, MetricPoint]]:
        return [(i, point) for i, line in enumerate(lines) for point in self.points(job, line)]

    def points(self, job: str, line: str) -> list[MetricPoint]:
        """The values ``line`` of ``job`` holds, one per matching definition (blocking up
        to the time bound per definition: prefer :meth:`scan` on an event loop)."""
        found = []
        for name, regex in list(self._regexes):
            try:
                match = regex.search(line)
            except SlowPattern as exc:
                self._regexes.remove((name, regex))
                self._warn(f"{exc}; metric {name!r} is no longer read for this sweep")
                continue
            if match is None:
                continue
            with contextlib.suppress(ValueError, TypeError, IndexError):
                value = float(match.group(1))
                count = self._counts.get((job, name), 0)
                step = int(match.group("step")) if "step" in regex.groupindex else count
                self._counts[(job, name)] = count + 1
                found.append(MetricPoint(name, step, value))
        return found

    def forget(self, job: str) -> None:
        """Drop a finished job's counters."""
        self._counts = {k: v for k, v in self._counts.items() if k[0] != job}
