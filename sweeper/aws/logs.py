"""Training jobs' CloudWatch logs, read through the Logs API (the emulator serves it too):
a whole job's log (:class:`JobLogs`), or the new lines of many running jobs at once
(:class:`LogTail`)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from sweeper.aws.retry import RetryPolicy
from sweeper.errors import BackendError

GROUP = "/aws/sagemaker/TrainingJobs"


class JobLogs:
    """Reads every stream of a job (one per container run, oldest first). Task-safe."""

    def __init__(self, client: Any, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def text(self, job: str) -> str:
        """The job's log lines; streams after the first are preceded by a header line.
        Empty if the job wrote nothing (or the log group does not exist yet)."""
        streams = await self.events(job)
        parts = ["".join(f"{message}\n" for _, message in events) for _, events in streams]
        if len(parts) <= 1:
            return "".join(parts)
        return "".join(
            f"==> {name} <==\n{part}" for (name, _), part in zip(streams, parts, strict=True)
        )

    async def events(self, job: str) -> list[tuple[str, list[tuple[int, str]]]]:
        """Every stream of the job with events, oldest first (by name: SageMaker's
        ``<job>/algo-1-<epoch>``), with its (timestamp ms, message) events in order.

        One FilterLogEvents per page over the job's streams, rather than a
        DescribeLogStreams and, per stream, GetLogEvents until a page repeats its token:
        a third of the calls for a job's log."""
        streams: dict[str, list[tuple[int, str]]] = {}
        kwargs: dict[str, Any] = {"logGroupName": GROUP, "logStreamNamePrefix": f"{job}/"}

        async def page_of(request: dict[str, Any]) -> dict[str, Any]:
            page: dict[str, Any] = await self._client.filter_log_events(**request)
            return page

        try:
            while True:
                page = await self._retry.call(partial(page_of, dict(kwargs)))
                for e in page.get("events", []):
                    stream = streams.setdefault(e["logStreamName"], [])
                    stream.append((int(e["timestamp"]), e["message"]))
                if not page.get("nextToken"):
                    return sorted(streams.items())
                kwargs["nextToken"] = page["nextToken"]
        except BackendError as exc:
            if exc.code == "ResourceNotFoundException":
                return []
            raise


class LogTail:
    """The new log lines of a sweep's running jobs, each once and in order, in as few calls
    as the API allows: one FilterLogEvents (per page of ``page_size`` events) per read,
    over every stream whose name starts with the sweep's job-name ``prefix``, from the
    newest timestamp the last read saw. Not task-safe: one reader (the scheduler's poll).

    Events stored late with an earlier timestamp (CloudWatch ingests with some delay)
    are still found within ``overlap_ms``: each read reaches back that far, and events
    already returned are recognised by their ``eventId``. ``since_ms`` skips what was
    logged before (a resumed sweep need not read its finished jobs' logs again).
    """

    def __init__(
        self,
        client: Any,
        retry: RetryPolicy,
        prefix: str,
        overlap_ms: int = 0,
        page_size: int = 10_000,
        since_ms: int = 0,
    ) -> None:
        self._client = client
        self._retry = retry
        self._prefix = prefix
        self._overlap = overlap_ms
        self._page = page_size
        self._since = since_ms  # the newest event timestamp seen (ms)
        self._seen: dict[str, int] = {}  # eventId -> timestamp, within the overlap
        self.calls = 0

    async def read(self, jobs: Iterable[str]) -> dict[str, list[str]]:
        """New lines of each of ``jobs`` (a job with none is absent), oldest first."""
        wanted = set(jobs)
        start = max(0, self._since - self._overlap)
        found: dict[str, list[str]] = {}
        token: str | None = None
        while True:
            page = await self._page_of(start, token)
            for event in page.get("events", []):
                self._take(event, wanted, found)
            token = page.get("nextToken")
            if not token:
                break
        floor = self._since - self._overlap
        self._seen = {k: t for k, t in self._seen.items() if t >= floor}
        return found

    async def _page_of(self, start: int, token: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "logGroupName": GROUP,
            "logStreamNamePrefix": self._prefix,
            "startTime": start,
            "limit": self._page,
        }
        if token:
            kwargs["nextToken"] = token
        self.calls += 1
        try:
            page: dict[str, Any] = await self._retry.call(
                lambda: self._client.filter_log_events(**kwargs)
            )
        except BackendError as exc:
            if exc.code == "ResourceNotFoundException":  # no job has logged yet
                return {}
            raise
        return page

    def _take(self, event: dict[str, Any], wanted: set[str], found: dict[str, list[str]]) -> None:
        key, stamp = str(event.get("eventId")), int(event["timestamp"])
        if key in self._seen:
            return
        self._seen[key] = stamp
        self._since = max(self._since, stamp)
        job = str(event["logStreamName"]).split("/", 1)[0]
        if job in wanted:
            found.setdefault(job, []).append(str(event["message"]))
