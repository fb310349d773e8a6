"""The live budget: the space file gives a sweep's first budget, ``sweep.py set`` changes
it in the study, and every orchestrator of the sweep reads it back at each poll.

Each key set is a study attribute of its own (:data:`PREFIX` + key, holding the value and
when it was set), so two ``set`` commands changing different keys never race, and one
read of the keys with that prefix (not of every study attribute: a sweep keeps one per
trial) gives the whole budget.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import optuna
import sqlalchemy
from optuna.trial import TrialState

from sweeper import space
from sweeper.config import Budget, SamplerKind, SweepConfig, budget_with
from sweeper.errors import ConfigError
from sweeper.study.records import is_unlaunched
from sweeper.study.storage import trial_count

T = TypeVar("T")

PREFIX = "sweeper:budget:"
KEYS = tuple(f.name for f in dataclasses.fields(Budget))


@dataclass(frozen=True, slots=True)
class Setting:
    """A budget key as ``sweep.py set`` left it: its value, and when (ISO 8601, UTC)."""

    value: float | int | None
    at: str


def read(study: optuna.Study, rdb: optuna.storages.RDBStorage | None) -> dict[str, Setting]:
    """Every budget key set on ``study``, in one query on an RDB storage. Reads only."""
    if rdb is None:
        stored = {k: v for k, v in study.user_attrs.items() if k.startswith(PREFIX)}
    else:
        query = sqlalchemy.text(
            "SELECT key, value_json FROM study_user_attributes"
            " WHERE study_id = :study AND key LIKE :prefix"
        )
        study_id = rdb.get_study_id_from_name(study.study_name)
        with rdb.engine.connect() as conn:
            rows = conn.execute(query, {"study": study_id, "prefix": PREFIX + "%"}).all()
        stored = {str(key): json.loads(value) for key, value in rows}
    out = {}
    for key, raw in stored.items():
        name = key.removeprefix(PREFIX)
        if name in KEYS and isinstance(raw, dict) and not raw.get("space_file"):
            out[name] = Setting(raw.get("value"), str(raw.get("at", "")))
    return out


def write(study: optuna.Study, values: Mapping[str, float | int | None]) -> None:
    """Store each of ``values`` as set now (each key one upsert: idempotent)."""
    at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    for key, value in values.items():
        study.set_user_attr(PREFIX + key, {"value": value, "at": at})


def forget(study: optuna.Study, keys: list[str]) -> None:
    """Let ``keys`` follow the space file again (Optuna deletes no study attribute: the
    key is marked so)."""
    at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    for key in keys:
        study.set_user_attr(PREFIX + key, {"space_file": True, "at": at})


def changes(old: Budget, new: Budget) -> list[str]:
    """``max_parallel 4 → 8`` for each key that differs."""
    return [
        f"{key} {shown_value(getattr(old, key))} → {shown_value(getattr(new, key))}"
        for key in KEYS
        if getattr(old, key) != getattr(new, key)
    ]


def shown_value(value: Any) -> str:
    """A budget value as the CLI reads it back."""
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


class LiveBudget:
    """The live budget of a :class:`~sweeper.study.SweepStudy`, and what of it is used
    (mixed in; needs ``_study``, ``_rdb``, ``_config``, ``_run``, ``_requeued`` and
    ``warm``). ``budget`` is what this orchestrator decides with; :meth:`refresh_budget`
    brings it up to date."""

    _study: optuna.Study
    _config: SweepConfig
    _rdb: optuna.storages.RDBStorage | None
    budget: Budget
    warm: frozenset[int]

    def _requeued(self) -> list[int]:
        raise NotImplementedError

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    def _load_budget(self) -> None:
        """At open, on the caller's thread: the budget as last set. ConfigError if what
        ``sweep.py set`` gave no longer holds with this space file."""
        settings = read(self._study, self._rdb)
        try:
            self.budget = checked(self._config, settings)
        except ConfigError as exc:
            raise ConfigError(
                f"sweep {self._config.name!r}: the budget `sweep.py set` gave it no longer"
                f" holds with this space file: {exc} (change it with sweep.py set)"
            ) from None

    async def budget_settings(self) -> dict[str, Setting]:
        """The keys ``sweep.py set`` changed (the others follow the space file)."""
        return await self._run(read, self._study, self._rdb)

    async def refresh_budget(self) -> list[str]:
        """Read the budget back (one query); what changed since the last read, in words
        (``max_parallel 4 → 8``). A value that does not hold with this orchestrator's space
        file is left out, and said."""
        settings = await self.budget_settings()
        try:
            new = checked(self._config, settings)
        except ConfigError as exc:
            return [f"ignored: {exc}"]
        said, self.budget = changes(self.budget, new), new
        return said

    @property
    def trial_limit(self) -> int:
        """How many trials the sweep may hold in all: ``max_trials`` (as last read: see
        :meth:`refresh_budget`), or the grid's size."""
        limit = self.budget.max_trials
        if self._config.sampler.kind == SamplerKind.GRID:
            limit = min(limit, space.grid_size(self._config.space))
        return limit

    async def budget_used(self) -> int:
        """How many trials count toward the budget now, whoever asked them (a count,
        not a read of every trial)."""
        return await self._run(self._budget_used)

    def _budget_used(self) -> int:
        return self._rank(trial_count(self._rdb, self._study, self._study.study_name))

    def _rank(self, number: int) -> int:
        """How many trials numbered below ``number`` count toward the budget (not those
        never launched, requeued, from a warm start's parents, or waiting to be asked)."""
        states = (TrialState.PRUNED, TrialState.WAITING)
        closed = self._study.get_trials(deepcopy=False, states=states)
        skipped = sum(
            t.number < number and (t.state == TrialState.WAITING or is_unlaunched(t))
            for t in closed
        )
        others = sum(n < number for n in self._requeued()) + sum(n < number for n in self.warm)
        return number - skipped - others

    async def set_budget(self, values: Mapping[str, float | int | None], reset: list[str]) -> None:
        """Set ``values``, and let ``reset`` follow the space file again, for every
        orchestrator of the sweep (checked first: ConfigError if the result would not
        hold). Idempotent."""
        settings = await self.budget_settings()
        settings = {k: v for k, v in settings.items() if k not in reset}
        settings |= {k: Setting(v, "") for k, v in values.items()}
        self.budget = checked(self._config, settings)
        await self._run(write, self._study, values)
        await self._run(forget, self._study, reset)


def checked(config: SweepConfig, settings: Mapping[str, Setting]) -> Budget:
    """The space file's budget with ``settings`` in place, validated as the file is."""
    return budget_with(config, {k: s.value for k, s in settings.items()})
