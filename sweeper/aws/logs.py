"""A training job's CloudWatch log, read through the Logs API (the emulator serves it too)."""

from __future__ import annotations

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
        """Every stream of the job, oldest first, with its (timestamp ms, message) events."""
        try:
            names = await self._streams(job)
            return [(name, await self._events(name)) for name in names]
        except BackendError as exc:
            if exc.code == "ResourceNotFoundException":
                return []
            raise

    async def _streams(self, job: str) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "logGroupName": GROUP,
                "logStreamNamePrefix": f"{job}/",
                "orderBy": "LogStreamName",
            }
            if token:
                kwargs["nextToken"] = token
            page = await self._retry.call(lambda k=kwargs: self._client.describe_log_streams(**k))  # type: ignore[misc]
            names += [s["logStreamName"] for s in page.get("logStreams", [])]
            token = page.get("nextToken")
            if not token:
                return names

    async def _events(self, stream: str) -> list[tuple[int, str]]:
        lines: list[tuple[int, str]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "logGroupName": GROUP,
                "logStreamName": stream,
                "startFromHead": True,
            }
            if token:
                kwargs["nextToken"] = token
            page = await self._retry.call(lambda k=kwargs: self._client.get_log_events(**k))  # type: ignore[misc]
            lines += [(int(e["timestamp"]), e["message"]) for e in page.get("events", [])]
            if not page.get("events") or page.get("nextForwardToken") == token:
                return lines
            token = page["nextForwardToken"]
