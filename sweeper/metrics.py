"""Metric values read from a job's log lines with the space file's ``metric_definitions``.

As SageMaker reads them: each definition's regex is searched in each line and its first
capture group is the value. The step of a value is a later named group ``step`` when
the regex has one (``acc=([0-9.]+) epoch=(?P<step>\\d+)``), else its position in the
job's series of that metric (0, 1, 2, ...). Used for the Experiments runs' series and
for the intermediate values of running jobs.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sweeper.config import MetricDefinition


@dataclass(frozen=True, slots=True)
class MetricPoint:
    metric: str
    step: int
    value: float


class MetricReader:
    """Parses lines into points. Not task-safe; keep one per reader of a log."""

    def __init__(self, definitions: Iterable[MetricDefinition]) -> None:
        self._regexes = [(m.name, re.compile(m.regex)) for m in definitions]
        self._counts: dict[tuple[str, str], int] = {}  # (job, metric) -> values so far

    def points(self, job: str, line: str) -> list[MetricPoint]:
        """The values ``line`` of ``job`` holds, one per matching definition."""
        found = []
        for name, regex in self._regexes:
            match = regex.search(line)
            if match is None:
                continue
            with contextlib.suppress(ValueError, TypeError, IndexError):
                value = float(match.group(1))
                count = self._counts.get((job, name), 0)
                step = int(match.group("step")) if "step" in regex.groupindex else count
                self._counts[(job, name)] = count + 1
                found.append(MetricPoint(name, step, value))
        return found

    def feed(self, job: str, lines: Iterable[str]) -> list[MetricPoint]:
        """The values of each of ``lines`` of ``job``, in order."""
        return [point for line in lines for point in self.points(job, line)]

    def forget(self, job: str) -> None:
        """Drop a finished job's counters."""
        self._counts = {k: v for k, v in self._counts.items() if k[0] != job}
