"""The study: Sweeper's only user of Optuna, and the sweep's source of truth.

Every trial lives in Optuna storage (SQLite by default). Each trial's job name is
written to the trial (user attribute ``job_name``) *before* its training job is
created, so a crash between the two can be repaired on resume.

Optuna's RDB storage is blocking; every method here that touches it is a coroutine
that runs the work on one dedicated worker thread, so the event loop keeps polling
while TPE samples, and storage calls never race each other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeper import space
from sweeper.config import SamplerKind, SweepConfig
from sweeper.errors import ConfigError

T = TypeVar("T")
JOB_NAME = "job_name"


@dataclass(frozen=True, slots=True)
class Counts:
    complete: int
    failed: int
    running: int
    pruned: int

    @property
    def total(self) -> int:
        return self.complete + self.failed + self.running + self.pruned


class SweepStudy:
    """Ask/tell over an Optuna study named after the sweep.

    Not thread-safe by itself; its coroutines serialise storage access on one thread,
    so any number of tasks may await them concurrently.
    """

    def __init__(self, study: optuna.Study, config: SweepConfig) -> None:
        self._study = study
        self._config = config
        self._distributions = space.distributions(config.space)
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="study")
        self._live: dict[int, optuna.Trial] = {}

    @classmethod
    def open(cls, config: SweepConfig, storage: str | None = None) -> SweepStudy:
        """Create the study, or load it if it exists (``storage`` overrides the config's)."""
        url = storage if storage is not None else config.storage_url
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            storage=_storage(url),
            study_name=config.name,
            sampler=make_sampler(config),
            direction=optuna.study.StudyDirection[config.objective.direction.upper()],
            load_if_exists=True,
        )
        return cls(study, config)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def trial_limit(self) -> int:
        """How many trials the sweep may hold in all: ``max_trials``, or the grid's size."""
        limit = self._config.budget.max_trials
        if self._config.sampler.kind == SamplerKind.GRID:
            limit = min(limit, space.grid_size(self._config.space))
        return limit

    async def ask(self, job_name: Callable[[int], str]) -> tuple[int, dict[str, Any], str]:
        """Start a trial, record its job name (``job_name(number)``) and return all three."""
        return await self._run(self._ask, job_name)

    def _ask(self, job_name: Callable[[int], str]) -> tuple[int, dict[str, Any], str]:
        trial = self._study.ask(self._distributions)
        name = job_name(trial.number)
        trial.set_user_attr(JOB_NAME, name)
        self._live[trial.number] = trial
        return trial.number, dict(trial.params), name

    async def tell_complete(self, number: int, value: float, attrs: dict[str, Any]) -> None:
        await self._run(self._tell, number, TrialState.COMPLETE, value, attrs)

    async def tell_failed(self, number: int, reason: str, attrs: dict[str, Any]) -> None:
        await self._run(self._tell, number, TrialState.FAIL, None, {**attrs, "failure": reason})

    def _tell(
        self, number: int, state: TrialState, value: float | None, attrs: dict[str, Any]
    ) -> None:
        trial = self._live.pop(number)
        for key, val in attrs.items():
            trial.set_user_attr(key, val)
        self._study.tell(trial, value, state=state)

    async def trials(self) -> list[FrozenTrial]:
        return await self._run(self._study.get_trials, False)

    async def counts(self) -> Counts:
        trials = await self.trials()
        by = {s: sum(t.state == s for t in trials) for s in TrialState}
        return Counts(
            complete=by[TrialState.COMPLETE],
            failed=by[TrialState.FAIL],
            running=by[TrialState.RUNNING] + by[TrialState.WAITING],
            pruned=by[TrialState.PRUNED],
        )

    async def best(self) -> FrozenTrial | None:
        """The best COMPLETE trial, or None when there is none yet."""
        done = [t for t in await self.trials() if t.state == TrialState.COMPLETE]
        if not done:
            return None
        pick = max if self._config.objective.direction == "maximize" else min
        return pick(done, key=lambda t: t.value if t.value is not None else -math.inf)


def _storage(url: str) -> optuna.storages.BaseStorage | None:
    """Optuna storage for ``url`` ("" means in memory).

    SQLite runs in WAL mode with ``synchronous=NORMAL``: a commit survives the
    orchestrator being killed (what resume relies on), only an OS crash may lose the
    last few, and each commit skips an fsync, which halves the cost of ask and tell.
    Optuna's schema-version check (about 0.35 s of loading migration scripts) is skipped
    only for a database file this call creates: it guards files older Optunas made.
    """
    if not url:
        return None
    if not url.startswith("sqlite:///"):
        return optuna.storages.RDBStorage(url)
    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=60, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return optuna.storages.RDBStorage(
        url, engine_kwargs={"creator": connect}, skip_compatibility_check=new
    )


def make_sampler(config: SweepConfig) -> optuna.samplers.BaseSampler:
    """The configured sampler; TPE uses ``constant_liar`` so parallel asks spread out."""
    kind, seed = config.sampler.kind, config.sampler.seed
    s = optuna.samplers
    if kind == SamplerKind.GRID:
        return _AskTellGridSampler(space.grid(config.space), seed=seed)
    if kind == SamplerKind.CMAES:
        _require("cmaes", "sampler.kind cmaes needs the 'cmaes' package: pip install cmaes")
        return s.CmaEsSampler(seed=seed)
    if kind == SamplerKind.GP:
        _require("torch", "sampler.kind gp needs PyTorch: pip install torch")
        return s.GPSampler(seed=seed)
    factories: dict[SamplerKind, Callable[[], s.BaseSampler]] = {
        SamplerKind.TPE: lambda: s.TPESampler(seed=seed, constant_liar=True),
        SamplerKind.RANDOM: lambda: s.RandomSampler(seed=seed),
        SamplerKind.QMC: lambda: s.QMCSampler(seed=seed),
        SamplerKind.NSGA2: lambda: s.NSGAIISampler(seed=seed),
    }
    return factories[kind]()


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler for ask/tell: Optuna's calls ``study.stop()`` when the grid is used up,
    which raises outside ``optimize``. The sweep bounds itself by the grid's size instead
    (:attr:`SweepStudy.trial_limit`)."""

    def after_trial(self, *args: Any, **kwargs: Any) -> None:
        return None


def _require(module: str, message: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(message)
