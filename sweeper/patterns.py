"""Regexes a user gives (metric definitions, the emulator's log triggers), under a time bound.

Python's ``re`` backtracks without limit and holds the GIL while it does, so one
pathological pattern (``(.*){1,32000}[bc]``) on one log line freezes the whole process,
every thread included. These patterns run on the ``regex`` engine instead: the same
syntax, far fewer catastrophic cases, a time bound per search (:data:`SECONDS`: past it
the search gives up with :class:`SlowPattern`), and the GIL released while it searches,
so a caller that searches in a worker thread never holds up its event loop.
"""

from __future__ import annotations

from collections.abc import Mapping

import regex

SECONDS = 0.25  # per line; a metric regex takes microseconds on a normal line


class SlowPattern(Exception):
    """A search took longer than its bound (the pattern backtracks catastrophically)."""

    def __init__(self, what: str, pattern: str, seconds: float) -> None:
        super().__init__(
            f"{what} {pattern!r} took more than {seconds:g} s on one line of output"
            " (catastrophic backtracking); simplify the regex"
        )
        self.what = what
        self.pattern = pattern


class Pattern:
    """A compiled user regex; ``what`` names it in errors (``metric 'loss' regex``)."""

    __slots__ = ("_compiled", "seconds", "text", "what")

    def __init__(self, text: str, what: str = "regex", seconds: float = SECONDS) -> None:
        """Raise ``ValueError`` if ``text`` is not a regex."""
        try:
            self._compiled = regex.compile(text, flags=regex.VERSION0)
        except regex.error as exc:
            raise ValueError(f"{what} {text!r} is not a valid regex: {exc}") from exc
        self.text = text
        self.what = what
        self.seconds = seconds

    @property
    def groups(self) -> int:
        return self._compiled.groups

    @property
    def groupindex(self) -> Mapping[str, int]:
        return self._compiled.groupindex

    def search(self, line: str) -> regex.Match[str] | None:
        """The first match in ``line`` or None; raise :class:`SlowPattern` past the
        time bound."""
        try:
            return self._compiled.search(line, timeout=self.seconds, concurrent=True)
        except TimeoutError as exc:
            raise SlowPattern(self.what, self.text, self.seconds) from exc
