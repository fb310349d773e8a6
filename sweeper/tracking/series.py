"""A finished trial's metric series, read once from its job's log for every tracker."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence

from sweeper.aws.logs import JobLogs
from sweeper.config import MetricDefinition
from sweeper.metrics import MetricReader
from sweeper.study import JOB_NAME
from sweeper.study.records import rungs_of
from sweeper.types import Point, TrialResult


class JobSeries:
    """Each metric's values over time in a trial's job log (each rung's, in order, for a
    promotion sweep: one series, its positions running on), read with the space file's
    regexes as SageMaker reads them; the job's final values if the log has none. The
    last ``keep`` trials' reads are shared: the Experiments and MLflow trackers of one
    trial cost one log read. Task-safe on one event loop."""

    def __init__(
        self, definitions: Sequence[MetricDefinition], logs: JobLogs, keep: int = 64
    ) -> None:
        self._definitions, self._logs, self._keep = definitions, logs, keep
        self._reads: OrderedDict[int, asyncio.Task[list[Point]]] = OrderedDict()

    async def of(self, result: TrialResult) -> list[Point]:
        """Trial ``result``'s series; a failed read raises for every caller that shares it."""
        read = self._reads.get(result.number)
        if read is None or (read.done() and (read.cancelled() or read.exception() is not None)):
            read = asyncio.ensure_future(self._read(result))
            self._reads[result.number] = read
            while len(self._reads) > self._keep:
                self._reads.popitem(last=False)
        return list(await asyncio.shield(read))

    async def _read(self, result: TrialResult) -> list[Point]:
        points: list[Point] = []
        last = result.attrs.get(JOB_NAME)
        jobs = [r.job for r in rungs_of(result.attrs)]  # promotion: every rung's job
        reader, key = MetricReader(self._definitions), f"trial-{result.number}"
        for job in dict.fromkeys([*jobs, *([last] if last else [])]):  # one series over them
            for _, events in await self._logs.events(job):
                found = await reader.scan(key, [message for _, message in events])
                points += [Point(p.metric, events[i][0] / 1000, p.step, p.value) for i, p in found]
        if not points:
            ended = result.attrs.get("job_ended") or 0.0
            finals = result.attrs.get("final_metrics") or {}
            points = [Point(name, ended, 0, float(v)) for name, v in finals.items()]
        return points
