"""What the user reads: trial events as they happen, and the end-of-sweep summary."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from optuna.trial import FrozenTrial

from sweeper.clock import Clock
from sweeper.study import JOB_NAME, Counts


def format_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in params.items())


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class ConsoleReporter:
    """Prints one line per trial event, stamped with seconds since the sweep started."""

    def __init__(self, clock: Clock, metric: str, out: TextIO | None = None) -> None:
        self._clock = clock
        self._start = clock.now()
        self._metric = metric
        self._out = out

    def _line(self, text: str) -> None:
        print(
            f"[{self._clock.now() - self._start:7.1f}s] {text}",
            file=self._out or sys.stdout,
            flush=True,
        )

    def started(self, number: int, job: str, params: dict[str, Any]) -> None:
        self._line(f"trial {number:<3} started   {job}  {format_params(params)}")

    def finished(self, number: int, job: str, value: float, seconds: float | None) -> None:
        took = f" (job {seconds:.1f} s)" if seconds is not None else ""
        self._line(f"trial {number:<3} finished  {self._metric}={_short(value)}{took}")

    def failed(self, number: int, job: str, reason: str) -> None:
        first = " | ".join(line.strip() for line in reason.splitlines() if line.strip())
        self._line(f"trial {number:<3} failed    {job}: {first[:300]}")


def summary(
    name: str,
    metric: str,
    direction: str,
    counts: Counts,
    best: FrozenTrial | None,
    wall: float,
    stop_reason: str,
    storage_url: str,
) -> str:
    """The end-of-sweep summary: counts, why it stopped, the best trial, where it is stored."""
    lines = [
        f"Sweep {name}: {counts.total} trials ({counts.complete} complete, {counts.failed} failed,"
        f" {counts.running} running) in {wall:.1f} s; stopped: {stop_reason}",
    ]
    if best is None:
        lines.append("No trial completed, so there is no best trial.")
    else:
        lines += [
            f"Best trial {best.number}: {metric} = {_short(best.value)} ({direction})",
            f"  job:    {best.user_attrs.get(JOB_NAME, '?')}",
            "  params:",
            *(f"    {k}: {v!r}" for k, v in best.params.items()),
        ]
    lines.append(f"Study storage: {storage_url}  (run the same command again to continue)")
    return "\n".join(lines)
