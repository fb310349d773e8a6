"""When the sweep loop does its slow work (asks, writes of results) around its polls.

A round's jobs end a few milliseconds apart; the polls that look for those ends come a
poll's precision apart. An ask (tens of milliseconds: the sampler, the storage, a new
trial's Experiments run) or a write made between them delays seeing the next end, and
so the next job's start. So asks for a round are made in the long wait after it starts
(the first round's too), and writes give way to a poll that is due, within bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class Pacing:
    """What the loop's slow work took last, and since when writes have waited. Not
    task-safe; owned by the scheduler's loop."""

    ask_seconds: float = 0.0  # the last ask's duration
    write_seconds: float = 0.0  # a result's last write
    writes_deferred_at: float | None = None  # when writes first gave way to a poll due

    def asks_due(
        self,
        now: float,
        deadline: float,
        expected: float | None,
        launched: Sequence[float],
        have: int,
    ) -> int:
        """How many trials should be ready (pre-asked) now: one per job in flight (each
        ``launched`` at a time) expected (``expected`` seconds) to end before the next poll
        (``deadline``) is over by as long as the asks that may be needed take (one per job
        without a trial among the ``have`` ready), and a tenth of a job (ends cluster).

        Before any job has ended (``expected`` None) nothing tells when they will: one
        per job in flight, once the wait for the next poll (which grows with the jobs'
        age) can hold the asks, so that the first round's ends are refilled at once."""
        asks = max(1, len(launched) - have)
        if expected is None:
            return len(launched) if deadline - now >= asks * self.ask_seconds else have
        horizon = max(deadline, now) + asks * self.ask_seconds + 0.1 * expected
        return sum(horizon - at >= expected for at in launched)

    def wrote(self, seconds: float, count: int) -> None:
        """``count`` results were written in ``seconds``."""
        if count:
            self.write_seconds = seconds / count

    def writes_wait(self, now: float, deadline: float, pending: int, patience: float) -> bool:
        """Whether writing ``pending`` results now would run past the next poll (due for
        a job's end at ``deadline``), so that they should wait; not once they have waited
        ``patience`` seconds."""
        if now + self.write_seconds * pending <= deadline:
            self.writes_deferred_at = None
            return False
        if self.writes_deferred_at is None:
            self.writes_deferred_at = now
        if now - self.writes_deferred_at < patience:
            return True
        self.writes_deferred_at = None
        return False
