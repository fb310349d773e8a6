"""Managed spot in the emulator: which jobs are interrupted, checkpoints, billing.

A spot job (``EnableManagedSpotTraining``) is interrupted at most once, with
probability ``interruption_rate``: ``interruption_after_seconds`` into training, or,
for deterministic tests, at the first output line matching ``interrupt_on_log``. New
capacity takes ``restart_delay_seconds`` to come back; MaxWait keeps running meanwhile,
so a delay past it ends the job ``MaxWaitTimeExceeded`` (spot could not serve it).
Checkpoints are restored from and mirrored to ``CheckpointConfig.S3Uri`` around each
container run (:mod:`sweeper.emulator.transfer`), so a restarted job resumes.
Billable time is the training time less ``discount`` (the spot saving).
"""

from __future__ import annotations

import math
import random
from typing import Any

from sweeper.emulator.errors import validation
from sweeper.emulator.settings import SpotSettings


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


def check_request(params: dict[str, Any], stopping: dict[str, Any]) -> None:
    """Managed spot's rules (the messages of the last two are the emulator's own)."""
    spot = bool(params.get("EnableManagedSpotTraining"))
    max_wait = stopping.get("MaxWaitTimeInSeconds")
    if spot and (max_wait is None or max_wait < stopping["MaxRuntimeInSeconds"]):
        raise validation(
            "Invalid MaxWaitTimeInSeconds. It must be present and be greater than or equal "
            "to MaxRuntimeInSeconds"
        )
    if not spot and max_wait is not None:
        raise validation("MaxWaitTimeInSeconds is only supported for managed spot training.")
    if spot and (params.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds", 0) > 0:
        raise validation(
            "Warm pools (KeepAlivePeriodInSeconds) are not supported with managed spot training."
        )
