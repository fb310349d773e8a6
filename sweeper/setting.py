"""``sweep.py set SPACE key=value ...``: change a sweep's budget in its study, where every
orchestrator of the sweep takes it up at its next poll (:mod:`sweeper.study.budget`);
and the budget as ``sweep.py status`` shows it, each value with where it comes from."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from sweeper.config import SweepConfig, budget_with
from sweeper.config.fields import shown
from sweeper.errors import ConfigError
from sweeper.study.budget import KEYS, Setting, changes, checked, shown_value

DEFAULT = "default"  # key=default: follow the space file again


@dataclass(frozen=True, slots=True)
class Assignments:
    """What a ``set`` command line asks: values to set, keys to give back to the file."""

    values: dict[str, float | int | None]
    reset: list[str]


def parse(texts: Sequence[str]) -> Assignments:
    """``max_parallel=8 target=none max_trials=default``; ConfigError naming a bad one.
    Values are numbers (``none`` unsets an optional key); their types and ranges are
    checked with the space file's budget (:func:`sweeper.config.budget_with`)."""
    if not texts:
        raise ConfigError(f"give at least one key=value (keys: {', '.join(KEYS)})")
    values: dict[str, float | int | None] = {}
    reset: list[str] = []
    for text in texts:
        key, sep, raw = text.partition("=")
        if not sep or not raw:
            raise ConfigError(f"{shown(text)}: expected key=value, such as max_parallel=8")
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{shown(key)}: not a budget key{hint}; keys: {', '.join(KEYS)}")
        if key in values or key in reset:
            raise ConfigError(f"{key}: given twice")
        if raw == DEFAULT:
            reset.append(key)
            continue
        values[key] = _number(key, raw)
    return Assignments(values, reset)


def _number(key: str, raw: str) -> float | int | None:
    if raw.lower() in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    raise ConfigError(f"budget.{key}: expected a number or none, got {shown(raw)}")


async def set_budget(config: SweepConfig, asked: Assignments) -> list[str]:
    """Store ``asked`` in the sweep's study (checked against ``config`` first: ConfigError,
    nothing changed); what changed, in words."""
    from sweeper.study import SweepStudy

    budget_with(config, asked.values)  # a value wrong by itself: said before any storage
    study = SweepStudy.open(config, create=False)
    try:
        before = study.budget
        await study.set_budget(asked.values, asked.reset)
        return changes(before, study.budget)
    finally:
        study.close()


def budget_lines(config: SweepConfig, settings: dict[str, Setting]) -> list[str]:
    """The live budget, one key a line, each saying whether ``sweep.py set`` gave it."""
    budget = checked(config, settings)
    out = []
    for key in KEYS:
        value = getattr(budget, key)
        if key in settings:
            out.append(f"    {key:<21} {shown_value(value)}  (sweep.py set, {settings[key].at})")
        elif value is not None:
            out.append(f"    {key:<21} {shown_value(value)}  (space file)")
    return out
