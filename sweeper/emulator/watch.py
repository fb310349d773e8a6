"""What a running job's output lines are matched against: its metric regexes, the
emulator's spot and fault triggers (see :mod:`sweeper.patterns` for the time bound)."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

import regex

from sweeper.emulator.jobs import Job
from sweeper.emulator.settings import SpotSettings
from sweeper.patterns import Pattern, SlowPattern


class Watch:
    """What each output line of one container run is matched against: the metric
    regexes, the spot and fault triggers. Matching runs in the runner's regex threads,
    each search under :data:`sweeper.patterns.SECONDS` of CPU time. A pattern past that
    is dropped for the rest of the run, and said once (:attr:`Seen.dropped`); reading
    metrics never decides the job's fate: the job runs to its own end, without that
    metric's values. Thread-safe: a job's two streams are scanned at once."""

    def __init__(
        self,
        metrics: list[tuple[str, Pattern]],
        interrupt: Pattern | None = None,
        fault: Pattern | None = None,
    ) -> None:
        self.metrics = metrics
        self.interrupt = interrupt
        self.fault = fault
        self._lock = threading.Lock()

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
        return not (self.metrics or self.interrupt or self.fault)

    def scan(self, text: str) -> Seen:
        """What ``text`` holds (blocking: call it in a worker thread)."""
        values: dict[str, float] = {}
        dropped: list[str] = []
        for name, pattern in self.metrics:
            match = self._search(pattern, text, dropped)
            if match:
                with contextlib.suppress(ValueError, IndexError):
                    values[name] = float(match.group(1))
        interrupt = self.interrupt is not None and bool(self._search(self.interrupt, text, dropped))
        fault = self.fault is not None and bool(self._search(self.fault, text, dropped))
        return Seen(values, interrupt, fault, tuple(dropped))

    def _search(self, pattern: Pattern, text: str, dropped: list[str]) -> regex.Match[str] | None:
        """``pattern``'s match in ``text``; a slow one is dropped, said in ``dropped``."""
        try:
            return pattern.search(text)
        except SlowPattern as exc:
            with self._lock:  # said once, though both streams may find it slow at once
                known = self._drop(pattern)
            if known:
                dropped.append(f"{exc}; it is no longer matched on this job's output")
            return None

    def _drop(self, pattern: Pattern) -> bool:
        """Stop matching ``pattern``; whether it was still matched."""
        kept = [m for m in self.metrics if m[1] is not pattern]
        known = len(kept) < len(self.metrics) or pattern in (self.interrupt, self.fault)
        self.metrics = kept
        if self.interrupt is pattern:
            self.interrupt = None
        if self.fault is pattern:
            self.fault = None
        return known


@dataclass(frozen=True, slots=True)
class Seen:
    """What one output line held; ``dropped``: what to say of patterns it made slow."""

    metrics: dict[str, float]
    interrupt: bool
    fault: bool
    dropped: tuple[str, ...] = ()
