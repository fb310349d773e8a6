"""Regexes a user gives (metric definitions, the emulator's log triggers), under a bound
on the CPU time a search may take.

Python's ``re`` backtracks without limit and holds the GIL while it does, so one
pathological pattern (``(.*){1,32000}[bc]``) on one log line freezes the whole process,
every thread included. These patterns run on the ``regex`` engine instead: the same
syntax, far fewer catastrophic cases, a time limit per search, and the GIL released while
it searches, so a caller that searches in a worker thread never holds up its event loop.

The engine's limit is wall-clock time, and wall time judges the machine, not the pattern:
with a hundred jobs' processes on two cores a thread can sit descheduled for longer than
any sensible limit, and a linear pattern on a short line would be declared slow (a trial
lost whose job had run). So a search that hits the engine's limit is confirmed by the
CPU time its thread spent (``time.thread_time``): at least :data:`SECONDS` of it, and
the pattern is slow (:class:`SlowPattern`); less, and the thread was only kept waiting,
so the search runs again with twice the wall limit. A benign search costs microseconds of
CPU wherever it is scheduled, so however loaded the machine, it is never declared slow; a
pathological one accrues its CPU bound within an attempt or two, and is.

Why not RE2 (linear time, no limit needed)? Measured on a metric line (2 cores, one
run of 200 000 searches each): ``regex`` with its limit 2.5 µs a search, this guard 3.6 µs
(the ``thread_time`` call is 0.5 µs of it), RE2 through ``google-re2`` 3.9 µs. RE2 is no
faster here, and it refuses lookbehind and backreferences, which metric regexes may use
today: it would be a second engine and a second dialect, for nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import regex

SECONDS = 0.25  # CPU time per line; a metric regex takes microseconds on a normal line


class SlowPattern(Exception):
    """A search spent more CPU time than its bound (the pattern backtracks
    catastrophically)."""

    def __init__(self, what: str, pattern: str, seconds: float) -> None:
        super().__init__(
            f"{what} {pattern!r} took more than {seconds:g} s of CPU time on one line of"
            " output (catastrophic backtracking); simplify the regex"
        )
        self.what = what
        self.pattern = pattern


class Pattern:
    """A compiled user regex; ``what`` names it in errors (``metric 'loss' regex``).

    Not thread-safe for its :attr:`stalls` count only (a diagnostic); searching is."""

    __slots__ = ("_compiled", "_cpu", "seconds", "stalls", "text", "wall", "what")

    def __init__(
        self,
        text: str,
        what: str = "regex",
        seconds: float = SECONDS,
        *,
        wall: float | None = None,
        cpu: Callable[[], float] = time.thread_time,
    ) -> None:
        """Raise ``ValueError`` if ``text`` is not a regex. ``seconds``: the CPU time a
        search may take; ``wall``: the engine's first wall-clock limit (twice ``seconds``
        unless given: a starved thread's search is retried, doubling it); ``cpu``: the
        calling thread's CPU clock."""
        try:
            self._compiled = regex.compile(text, flags=regex.VERSION0)
        except regex.error as exc:
            raise ValueError(f"{what} {text!r} is not a valid regex: {exc}") from exc
        self.text = text
        self.what = what
        self.seconds = seconds
        self.wall = 2 * seconds if wall is None else wall
        self._cpu = cpu
        self.stalls = 0  # searches past the wall limit that the CPU time cleared

    @property
    def groups(self) -> int:
        return self._compiled.groups

    @property
    def groupindex(self) -> Mapping[str, int]:
        return self._compiled.groupindex

    def search(self, line: str) -> regex.Match[str] | None:
        """The first match in ``line`` or None; raise :class:`SlowPattern` once the
        search has spent its CPU bound (blocking: wall time is unbounded only as long as
        the machine keeps this thread from running)."""
        began, wall = self._cpu(), self.wall
        while True:
            try:
                return self._compiled.search(line, timeout=wall, concurrent=True)
            except TimeoutError as exc:
                if self._cpu() - began >= self.seconds:
                    raise SlowPattern(self.what, self.text, self.seconds) from exc
                self.stalls += 1
                wall *= 2
