"""Frozen value types and status enums shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class JobStatus(StrEnum):
    """``TrainingJobStatus`` as SageMaker reports it."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED)


@dataclass(frozen=True, slots=True)
class JobState:
    """What one poll learned about one training job."""

    name: str
    status: JobStatus
    secondary_status: str = ""
    failure_reason: str = ""
    final_metrics: dict[str, float] = field(default_factory=dict)
    created: datetime | None = None
    ended: datetime | None = None
    training_seconds: int | None = None
    billable_seconds: int | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from creation to end, on the service's own clock (None while running)."""
        if self.created is None or self.ended is None:
            return None
        return (self.ended - self.created).total_seconds()


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a sweep stands, for live display. ``jobs``: (trial, job, secondary status)."""

    done: int
    failed: int
    running: int
    limit: int
    best: float | None
    elapsed: float
    eta: float | None
    jobs: tuple[tuple[int, str, str], ...] = ()
