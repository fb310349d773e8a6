"""A training job's record inside the emulator, as Describe and List show it.

:mod:`sweeper.emulator.runner` drives the record through its lifecycle.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sweeper.emulator import pools
from sweeper.emulator.mlflow_runs import MlflowRun
from sweeper.emulator.shelves import read_record, set_aside

FAILURE_REASON_MAX = 1024
_TRANSIENT = ("stop_requested", "interrupt", "fault", "record_path")  # not kept on disk


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
    training_seconds: float = 0.0  # across container runs (spot restarts)
    billable_seconds: int | None = None
    interruptible: bool = False  # a spot job chosen to be interrupted once
    warm: bool = False  # it took over a warm pool: it starts after the warm delay
    pool: str | None = None  # WarmPoolStatus, as stored (see pools.status for "now")
    pool_since: float | None = None  # when the pool became Available
    pool_expires: float = 0.0
    pool_ended: float | None = None  # when it stopped being Available (reuse, release)
    reused_by: str | None = None
    mlflow: dict[str, str] | None = None  # an MlflowRun as a dict (asdict): its run, if any
    record_path: Path | None = None  # where the record is kept across emulator restarts
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    interrupt: asyncio.Event = field(default_factory=asyncio.Event)
    fault: asyncio.Event = field(default_factory=asyncio.Event)  # the instance failed

    @property
    def name(self) -> str:
        return str(self.request["TrainingJobName"])

    def save(self) -> None:
        """Write the record (atomically) if it is kept on disk."""
        if self.record_path is None:
            return
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _TRANSIENT}
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.record_path)

    @classmethod
    def load_all(cls, directory: Path) -> dict[str, Job]:
        """Every record kept in ``directory``. Jobs that were running when the emulator
        stopped come back Failed (InternalServerError), their warm pools Terminated."""
        directory.mkdir(parents=True, exist_ok=True)
        jobs: dict[str, Job] = {}
        for path in sorted(directory.glob("*.json")):
            record = read_record(path)
            if record is None:
                continue  # not JSON: set aside already
            try:
                job = cls(**record, record_path=path)
            except TypeError as exc:  # JSON, but not a job record
                set_aside(path, str(exc))
                continue
            if job.status in ("InProgress", "Stopping"):
                reason = "InternalServerError: the emulator restarted while the job was running"
                job.finish("Failed", "Failed", "Training job failed", reason)
                pools.retain(job, reason)
            jobs[job.name] = job
        return jobs

    def advance(self, secondary: str, message: str, status: str | None = None) -> None:
        """Enter a secondary status (closing the previous one), optionally a primary one.
        Once Stopping, only a new primary status (the end) is entered.

        Only a new primary status is written to disk: a job that was in progress when
        the emulator stopped comes back Failed whatever its secondary status was, and a
        write per transition (seven per job) cost the emulator's loop a few milliseconds
        per job at its busiest moment, when one round of jobs ends and the next starts."""
        if self.status == "Stopping" and status is None:
            return
        self._enter(secondary, message, status)
        if status is not None:
            self.save()

    def _enter(self, secondary: str, message: str, status: str | None) -> None:
        now = time.time()
        if self.transitions:
            self.transitions[-1].setdefault("EndTime", now)
        self.transitions.append({"Status": secondary, "StartTime": now, "StatusMessage": message})
        self.secondary = secondary
        self.status = status or self.status
        self.modified = now

    def stopping(self) -> None:
        """Enter Stopping/Stopping, once (a StopTrainingJob shows at once, as on AWS)."""
        if self.status != "Stopping":
            self.advance("Stopping", "Stopping the training job", "Stopping")

    def finish(self, status: str, secondary: str, message: str, reason: str | None = None) -> None:
        """Enter the end (``status``: Completed, Failed, Stopped) and write the record."""
        self.failure_reason = reason[:FAILURE_REASON_MAX] if reason else None
        self._enter(secondary, message, status)
        self.transitions[-1]["EndTime"] = self.ended = self.modified
        self.save()

    def describe(self) -> dict[str, Any]:
        """The DescribeTrainingJob response."""
        out = {k: v for k, v in self.request.items() if k != "Tags"}
        # What AWS fills in when the request left it out (SDK code reads these).
        out["OutputDataConfig"] = {"KmsKeyId": "", **out["OutputDataConfig"]}
        out["AlgorithmSpecification"] = {
            "EnableSageMakerMetricsTimeSeries": False,
            **out["AlgorithmSpecification"],
        }
        for flag in (
            "EnableNetworkIsolation",
            "EnableInterContainerTrafficEncryption",
            "EnableManagedSpotTraining",
        ):
            out.setdefault(flag, False)
        out.update(
            TrainingJobArn=self.arn,
            TrainingJobStatus=self.status,
            SecondaryStatus=self.secondary,
            CreationTime=self.created,
            LastModifiedTime=self.modified,
            SecondaryStatusTransitions=[dict(t) for t in self.transitions],
            ModelArtifacts={"S3ModelArtifacts": f"{self.output_prefix}/model.tar.gz"},
        )
        if self.mlflow is not None:
            out["MlflowDetails"] = MlflowRun(**self.mlflow).details()
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.metrics:
            out["FinalMetricDataList"] = [
                {"MetricName": n, "Value": v, "Timestamp": ts}
                for n, (v, ts) in self.metrics.items()
            ]
        if self.started is not None:
            out["TrainingStartTime"] = self.started
        warm_pool = pools.describe(self)
        if warm_pool is not None:
            out["WarmPoolStatus"] = warm_pool
        if self.ended is not None:
            out["TrainingEndTime"] = self.ended
            out["TrainingTimeInSeconds"] = max(1, round(self.training_seconds))
            if self.billable_seconds is not None:
                out["BillableTimeInSeconds"] = self.billable_seconds
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
        warm_pool = pools.describe(self)
        if warm_pool is not None:
            out["WarmPoolStatus"] = warm_pool
        return out

    @property
    def output_prefix(self) -> str:
        base = self.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return f"{base}/{self.name}/output"
