"""Managed spot in the emulator: which jobs are interrupted, checkpoints, billing.

A spot job (``EnableManagedSpotTraining``) is interrupted at most once, with
probability ``interruption_rate``: ``interruption_after_seconds`` into training, or,
for deterministic tests, at the first output line matching ``interrupt_on_log``.
Checkpoints: the job's checkpoint directory is filled from ``CheckpointConfig.S3Uri``
when each container run starts, and mirrored back (deletions included) when the
container stops, which is the state SageMaker's continuous sync would have reached.
Billable time is the training time less ``discount`` (the spot saving).
"""

from __future__ import annotations

import math
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class SpotSettings:
    interruption_rate: float = 0.0
    interruption_after_seconds: float = 1.0
    interrupt_on_log: str | None = None  # a regex; deterministic interruptions for tests
    discount: float = 0.7  # billable = training * (1 - discount)
    seed: int | None = None


class Spot:
    """Spot decisions for one emulator; not task-safe (emulator loop only)."""

    def __init__(self, settings: SpotSettings) -> None:
        self.settings = settings
        self._random = random.Random(settings.seed)

    def will_interrupt(self, request: dict[str, Any]) -> bool:
        """Decide, once per job at creation, whether this spot job is interrupted."""
        if not request.get("EnableManagedSpotTraining"):
            return False
        return self._random.random() < self.settings.interruption_rate

    def billable(self, request: dict[str, Any], training_seconds: int) -> int:
        if not request.get("EnableManagedSpotTraining"):
            return training_seconds
        return max(1, math.floor(training_seconds * (1 - self.settings.discount)))


def restore(source: Path | None, checkpoints: Path) -> None:
    """Fill the local checkpoint directory from its S3 stand-in (blocking)."""
    if source is not None and source.is_dir():
        shutil.copytree(source, checkpoints, dirs_exist_ok=True)


def save(checkpoints: Path, target: Path | None) -> None:
    """Mirror the local checkpoint directory to its S3 stand-in (blocking)."""
    if target is None or not checkpoints.is_dir():
        return
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(checkpoints, target)
