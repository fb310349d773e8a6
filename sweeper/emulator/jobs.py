"""Training jobs inside the emulator: records, lifecycle, and the local process.

Status and secondary-status transitions follow SageMaker (see the reference):
``InProgress/Starting → Downloading → Training → Uploading → Completed``; a non-zero
exit gives ``Failed``; StopTrainingJob gives ``Stopping → Stopped``; MaxRuntime gives
``Stopping → Stopped/MaxRuntimeExceeded``. Whatever the script left in its model
directory is uploaded in every case but a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import tarfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper.clock import first_of
from sweeper.emulator import container
from sweeper.emulator.errors import AwsError
from sweeper.emulator.logs import LogStore, Stream

FAILURE_REASON_MAX = 1024


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """How the emulator runs jobs. Delays are real seconds on the emulator's side."""

    root: Path
    region: str = "us-east-1"
    account: str = "123456789012"
    cold_start_seconds: float = 0.0
    stop_grace_seconds: float = 120.0  # SageMaker's SIGTERM → SIGKILL grace


@dataclass(eq=False)
class Job:
    """One training job's record. Mutated only on the emulator's event loop."""

    request: dict[str, Any]
    arn: str
    created: float
    status: str = "InProgress"
    secondary: str = "Starting"
    transitions: list[dict[str, Any]] = field(default_factory=list)
    failure_reason: str | None = None
    metrics: dict[str, tuple[float, float]] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None
    modified: float = 0.0
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        return str(self.request["TrainingJobName"])

    def advance(self, secondary: str, message: str, status: str | None = None) -> None:
        """Enter a secondary status (closing the previous one), optionally a primary one."""
        now = time.time()
        if self.transitions:
            self.transitions[-1].setdefault("EndTime", now)
        self.transitions.append({"Status": secondary, "StartTime": now, "StatusMessage": message})
        self.secondary = secondary
        self.status = status or self.status
        self.modified = now

    def finish(self, status: str, secondary: str, message: str, reason: str | None = None) -> None:
        self.advance(secondary, message, status)
        self.transitions[-1]["EndTime"] = self.modified
        self.ended = self.modified
        self.failure_reason = reason[:FAILURE_REASON_MAX] if reason else None

    def describe(self) -> dict[str, Any]:
        """The DescribeTrainingJob response."""
        out = {k: v for k, v in self.request.items() if k != "Tags"}
        out.update(
            TrainingJobArn=self.arn,
            TrainingJobStatus=self.status,
            SecondaryStatus=self.secondary,
            CreationTime=self.created,
            LastModifiedTime=self.modified,
            SecondaryStatusTransitions=[dict(t) for t in self.transitions],
            ModelArtifacts={"S3ModelArtifacts": f"{self.output_prefix}/model.tar.gz"},
        )
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.metrics:
            out["FinalMetricDataList"] = [
                {"MetricName": n, "Value": v, "Timestamp": ts}
                for n, (v, ts) in self.metrics.items()
            ]
        if self.started is not None:
            out["TrainingStartTime"] = self.started
        if self.ended is not None:
            out["TrainingEndTime"] = self.ended
            seconds = max(1, round(self.ended - (self.started or self.ended)))
            out["TrainingTimeInSeconds"] = seconds
            out["BillableTimeInSeconds"] = seconds  # on-demand: billable = training
        return out

    def summary(self) -> dict[str, Any]:
        """The ListTrainingJobs summary."""
        out = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary,
        }
        if self.ended is not None:
            out["TrainingEndTime"] = self.ended
        return out

    @property
    def output_prefix(self) -> str:
        base = self.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return f"{base}/{self.name}/output"


class Runner:
    """Runs one job's lifecycle to the end. Task-safe per job: one task per job."""

    def __init__(self, settings: RunnerSettings, logs: LogStore) -> None:
        self.settings = settings
        self.s3_root = settings.root / "s3"
        self.logs = logs

    async def run(self, job: Job) -> None:
        """Drive ``job`` from Starting to a terminal status; never raises but cancellation."""
        try:
            await self._run(job)
        except AwsError as exc:
            job.finish("Failed", "Failed", "Training job failed", f"ClientError: {exc.message}")
        except asyncio.CancelledError:
            if job.status in ("InProgress", "Stopping"):
                job.finish(
                    "Failed",
                    "Failed",
                    "Training job failed",
                    "InternalServerError: the emulator shut down during the job",
                )
            raise
        except Exception as exc:  # the platform's fault, never the script's
            job.finish("Failed", "Failed", "Training job failed", f"InternalServerError: {exc}")

    async def _run(self, job: Job) -> None:
        s = self.settings
        job.advance("Starting", "Launching requested ML instances")
        if await _wait_stop(job, s.cold_start_seconds):
            job.advance("Stopping", "Stopping the training job", "Stopping")
            job.finish("Stopped", "Stopped", "The training job was stopped before it started")
            return
        job.advance("Downloading", "Downloading input data")
        layout = container.Layout(s.root / "jobs" / job.name)
        launch = await asyncio.to_thread(
            container.prepare, job.request, job.arn, layout, self.s3_root, s.region
        )
        job.advance("Training", "Training image download completed. Training in progress.")
        job.started = job.modified
        outcome, stderr_tail = await self._execute(job, launch, layout)
        if isinstance(outcome, int) and outcome != 0:
            reason = _failure_reason(layout, outcome, stderr_tail, launch.argv)
            job.finish("Failed", "Failed", "Training job failed", reason)
            return
        job.advance("Uploading", "Uploading generated training model")
        await asyncio.to_thread(self._upload, job, layout)
        if outcome == 0:
            job.finish("Completed", "Completed", "Training job completed")
        else:
            job.finish("Stopped", str(outcome), "Training job stopped")

    async def _execute(
        self, job: Job, launch: container.Launch, layout: container.Layout
    ) -> tuple[int | str, list[str]]:
        """Run the process; return its exit code or the stop reason, and its stderr tail."""
        regexes = [
            (m["Name"], re.compile(m["Regex"]))
            for m in job.request["AlgorithmSpecification"].get("MetricDefinitions", [])
        ]
        stream = self.logs.open(job.name)
        tail: deque[str] = deque(maxlen=20)
        proc = await asyncio.create_subprocess_exec(
            *launch.argv,
            cwd=launch.cwd,
            env=launch.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so a stop reaches its children
        )
        deadline = job.created + job.request["StoppingCondition"]["MaxRuntimeInSeconds"]
        outcome: int | str
        try:
            async with asyncio.TaskGroup() as tg:
                assert proc.stdout is not None and proc.stderr is not None
                tg.create_task(_pump(proc.stdout, self.logs, stream, regexes, job, None))
                tg.create_task(_pump(proc.stderr, self.logs, stream, regexes, job, tail))
                outcome = await self._supervise(job, proc, deadline)
        finally:
            if proc.returncode is None:
                _signal_group(proc, signal.SIGKILL)
                await proc.wait()
        return outcome, list(tail)

    async def _supervise(
        self, job: Job, proc: asyncio.subprocess.Process, deadline: float
    ) -> int | str:
        """Wait for exit, a stop request or MaxRuntime; stop the process for the last two."""
        stop_reason = "Stopped"
        try:
            async with asyncio.timeout(max(0.0, deadline - time.time())):
                await first_of(proc.wait(), job.stop_requested.wait())
                if proc.returncode is not None:
                    return proc.returncode
        except TimeoutError:
            stop_reason = "MaxRuntimeExceeded"
        job.advance("Stopping", "Stopping the training job", "Stopping")
        _signal_group(proc, signal.SIGTERM)
        try:
            async with asyncio.timeout(self.settings.stop_grace_seconds):
                await proc.wait()
        except TimeoutError:
            _signal_group(proc, signal.SIGKILL)
            await proc.wait()
        return stop_reason

    def _upload(self, job: Job, layout: container.Layout) -> None:
        """Tar the model (and output data) to where SageMaker would put them."""
        prefix = container.s3_path(job.output_prefix, self.s3_root)
        prefix.mkdir(parents=True, exist_ok=True)
        for source, name in (
            (layout.model, "model.tar.gz"),
            (layout.output / "data", "output.tar.gz"),
        ):
            with tarfile.open(prefix / name, "w:gz") as tar:
                for item in sorted(source.iterdir()):
                    tar.add(item, arcname=item.name)


async def _wait_stop(job: Job, seconds: float) -> bool:
    """Wait ``seconds`` unless a stop comes first; True if it did."""
    if seconds <= 0:
        return job.stop_requested.is_set()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await job.stop_requested.wait()
    return job.stop_requested.is_set()


async def _pump(
    reader: asyncio.StreamReader,
    logs: LogStore,
    stream: Stream,
    regexes: list[tuple[str, re.Pattern[str]]],
    job: Job,
    tail: deque[str] | None,
) -> None:
    """Copy output lines to the log stream, matching metric regexes (last value wins)."""
    while line := await reader.readline():
        text = line.decode("utf-8", errors="replace").rstrip("\n")
        logs.append(stream, text)
        if tail is not None and text.strip():
            tail.append(text)
        for name, regex in regexes:
            match = regex.search(text)
            if match:
                with contextlib.suppress(ValueError, IndexError):
                    job.metrics[name] = (float(match.group(1)), time.time())


def _signal_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _failure_reason(layout: container.Layout, code: int, tail: list[str], argv: list[str]) -> str:
    """The failure file if the script wrote one, else the toolkit's message with stderr."""
    if layout.failure_file.is_file():
        text = layout.failure_file.read_text(encoding="utf-8", errors="replace")
        return f"AlgorithmError: {text.strip()}"
    message = " ".join(tail[-5:])[-600:]
    command = " ".join(argv[1:])
    return (
        f"AlgorithmError: ExecuteUserScriptError:\nExitCode {code}\n"
        f'ErrorMessage "{message}"\nCommand "python {command}"'
    )
