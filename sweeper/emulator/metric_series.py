"""Each job's metric values over time: what SageMaker publishes to CloudWatch metrics.

Every value a job's ``MetricDefinitions`` regexes capture is one point (time, metric,
value), appended to ``<root>/metric-series/<job>.jsonl`` as ``[time, name, value]``
lines. Points are written in batches (:meth:`MetricSeries.add` buffers, ``flush``
writes, reading a job flushes it first), so memory holds only what is not yet on disk
and the series survive an emulator restart. A line cut short by a crash is skipped; a
batch the disk refuses stays buffered (and readable) until a later flush succeeds.
Values that are not finite (``nan``, ``inf``) are not points: CloudWatch stores none.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sweeper.emulator.errors import AwsError

BATCH = 256  # points buffered per job before they are written


@dataclass(frozen=True, slots=True)
class Point:
    """One captured value: epoch seconds, the metric definition's name, the value."""

    time: float
    name: str
    value: float


class MetricSeries:
    """Points by job. Used on the emulator's event loop only (writes are small appends)."""

    def __init__(self, root: Path) -> None:
        self._dir = root / "metric-series"
        self._pending: dict[str, list[Point]] = {}
        self._warned = False

    def add(self, job: str, name: str, value: float, when: float) -> None:
        """Record one value of ``job``'s metric ``name`` seen at ``when``."""
        if not math.isfinite(value):
            return
        pending = self._pending.setdefault(job, [])
        pending.append(Point(when, name, value))
        if len(pending) >= BATCH:
            self.flush(job)

    def flush(self, job: str | None = None) -> None:
        """Write what is buffered for ``job`` (None: every job)."""
        for name in [job] if job is not None else list(self._pending):
            points = self._pending.pop(name, [])
            if not points:
                continue
            lines = "".join(json.dumps([p.time, p.name, p.value]) + "\n" for p in points)
            try:
                self._dir.mkdir(parents=True, exist_ok=True)
                with (self._dir / f"{name}.jsonl").open("a", encoding="utf-8") as f:
                    f.write(lines)
            except OSError as exc:
                self._pending[name] = points + self._pending.get(name, [])
                self._warn(exc)

    def points(self, job: str) -> list[Point]:
        """Every point of ``job``, oldest first (none for a job that printed no metric)."""
        self.flush(job)
        stored = list(self._read(job))
        return sorted([*stored, *self._pending.get(job, [])], key=lambda p: p.time)

    def _read(self, job: str) -> Iterator[Point]:
        try:
            text = (self._dir / f"{job}.jsonl").read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):  # nothing written yet
            return
        except OSError as exc:
            raise AwsError("InternalServiceFault", f"metric series unreadable: {exc}", 500) from exc
        for line in text.splitlines():
            try:
                when, name, value = json.loads(line)
                yield Point(float(when), str(name), float(value))
            except (ValueError, TypeError):  # a line cut short by a crash
                continue

    def _warn(self, exc: OSError) -> None:
        if not self._warned:
            self._warned = True
            print(
                f"emulator: cannot write metric series under {self._dir}: {exc}; "
                "kept in memory until the disk takes them",
                file=sys.stderr,
            )
