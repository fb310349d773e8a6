"""What a running job's output lines are matched against: its metric regexes, the
emulator's spot and fault triggers (see :mod:`sweeper.patterns` for the time bound)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from sweeper.emulator.jobs import Job
from sweeper.emulator.settings import SpotSettings
from sweeper.patterns import Pattern


class Watch:
    """What each output line of one container run is matched against: the metric
    regexes, the spot and fault triggers. Matching runs in the runner's regex threads,
    each search under :data:`sweeper.patterns.SECONDS`; past that, ``broken`` is set
    with the ``reason`` the job fails with."""

    def __init__(
        self,
        metrics: list[tuple[str, Pattern]],
        interrupt: Pattern | None = None,
        fault: Pattern | None = None,
    ) -> None:
        self.metrics = metrics
        self.interrupt = interrupt
        self.fault = fault
        self.broken = asyncio.Event()
        self.reason = ""

    @classmethod
    def of(cls, job: Job, spot: SpotSettings, internal_error_on_log: str | None) -> Watch:
        """The patterns for ``job``: its MetricDefinitions, the emulator's triggers."""
        metrics = [
            (m["Name"], Pattern(m["Regex"], f"MetricDefinitions {m['Name']!r} regex"))
            for m in job.request["AlgorithmSpecification"].get("MetricDefinitions", [])
        ]
        trigger, fault = spot.interrupt_on_log, internal_error_on_log
        return cls(
            metrics,
            Pattern(trigger, "spot_interrupt_on_log") if trigger and job.interruptible else None,
            Pattern(fault, "internal_error_on_log") if fault else None,
        )

    @property
    def idle(self) -> bool:
        return self.broken.is_set() or not (self.metrics or self.interrupt or self.fault)

    def scan(self, text: str) -> Seen:
        """What ``text`` holds (blocking: call it in a worker thread)."""
        values: dict[str, float] = {}
        for name, pattern in self.metrics:
            match = pattern.search(text)
            if match:
                with contextlib.suppress(ValueError, IndexError):
                    values[name] = float(match.group(1))
        interrupt = self.interrupt is not None and self.interrupt.search(text) is not None
        fault = self.fault is not None and self.fault.search(text) is not None
        return Seen(values, interrupt, fault)


@dataclass(frozen=True, slots=True)
class Seen:
    """What one output line held."""

    metrics: dict[str, float]
    interrupt: bool
    fault: bool
