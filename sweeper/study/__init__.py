"""The study: Sweeper's only user of Optuna, and the sweep's source of truth.

Every trial lives in Optuna storage (SQLite by default). Each trial's job name and
attempt are written to the trial (user attributes) *before* its training job is
created, so a crash between the two is repaired on resume: the scheduler looks the
recorded name up and re-attaches, harvests, or creates it.

Several orchestrators may share a study (:mod:`sweeper.study.ownership`): each RUNNING
trial is claimed by the one that runs it, and only trials whose owner is dead are
adopted. The budget holds across all of them: trials are numbered by the storage, and a
new trial whose rank among those counting toward the budget reaches ``max_trials`` is
closed at once, never launched. The budget itself lives in the study
(:mod:`sweeper.study.budget`): ``sweep.py set`` changes it for every orchestrator.

The study also keeps the part of the space file that defines it (objective and
parameters); a space file that no longer matches is refused, naming what changed.

Optuna's RDB storage is blocking; every method here that touches it is a coroutine
that runs the work on one dedicated worker thread, so the event loop keeps polling
while TPE samples, and storage calls never race each other. A storage outage (a dropped
connection, a database restart) is retried for up to two minutes
(:data:`sweeper.aws.retry.STORAGE`), then raises :class:`StorageUnavailable`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import optuna
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState

from sweeper import space
from sweeper.aws.retry import STORAGE
from sweeper.config import SamplerKind, SweepConfig
from sweeper.errors import ConfigError, StorageFault, StorageUnavailable, TransientError
from sweeper.study import warm
from sweeper.study.algorithms import first_params, make_pruner, make_sampler
from sweeper.study.attributes import StudyAttributes
from sweeper.study.budget import LiveBudget
from sweeper.study.ownership import DEFAULT_LEASE_SECONDS, Leases, new_owner
from sweeper.study.reader import read_trials
from sweeper.study.records import (
    ATTEMPT,
    JOB_NAME,
    NOTES,
    ON_DEMAND,
    OWNER,
    POOL_SECONDS,
    PRUNED_AT,
    RUN_PREFIX,
    STOPPED_ON_EXIT,
    WARM_POOLS,
    Adopted,
    Counts,
    JobNamer,
    TrialRecord,
    record_of,
)
from sweeper.study.spec import check_spec
from sweeper.study.storage import (
    STORAGE_ERRORS,
    describe,
    fault,
    memory_engine,
    no_study_yet,
    open_storage,
    redacted,
    release,
    stamp_schema,
    trial_count,
    uncached,
)
from sweeper.study.user_attrs import set_user_attrs
from sweeper.study.writes import CLOSED_ELSEWHERE, TrialWrites

T = TypeVar("T")
__all__ = [
    "ATTEMPT",
    "JOB_NAME",
    "NOTES",
    "ON_DEMAND",
    "OWNER",
    "POOL_SECONDS",
    "PRUNED_AT",
    "RUN_PREFIX",
    "STOPPED_ON_EXIT",
    "WARM_POOLS",
    "Adopted",
    "Counts",
    "JobNamer",
    "SweepStudy",
    "TrialRecord",
    "first_params",
    "make_pruner",
    "make_sampler",
]


class SweepStudy(TrialWrites, StudyAttributes, LiveBudget):
    """Ask/tell over an Optuna study named after the sweep.

    Not thread-safe by itself; its coroutines serialise storage access on one thread,
    so any number of tasks may await them concurrently.
    """

    def __init__(
        self,
        study: optuna.Study,
        config: SweepConfig,
        leases: Leases,
        rdb: optuna.storages.RDBStorage | None = None,
        url: str = "",
    ) -> None:
        self._study = study
        self._rdb = rdb
        self._url = url
        self._down: StorageUnavailable | None = None
        self._config = config
        self.budget = config.budget
        self.warm: frozenset[int] = frozenset()  # a warm start's parent trials (never run)
        self._leases = leases
        self._distributions = space.distributions(config.space)
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="study")
        self._live: dict[int, optuna.Trial] = {}
        self._reported: dict[int, set[int]] = {}  # steps told to a running trial
        self.told = 0  # trials closed here (see TrialWrites)
        self._stash: list[Adopted] = []  # taken over while asking; for the next adopt()
        self._retry = STORAGE
        self._settled = rdb is None
        self.note: Callable[[str], None] = lambda text: None

    @classmethod
    def open(
        cls,
        config: SweepConfig,
        storage: str | None = None,
        *,
        create: bool = True,
        read_only: bool = False,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> SweepStudy:
        """Create the study or load it (``storage`` overrides the config's URL).

        Raises ConfigError if the space file no longer matches the stored study, or,
        with ``create=False``, if there is no such study yet; StorageFault if its
        database is damaged, full or read-only (``read_only``: for reading, which works
        on a read-only one). A loaded study's sampler is reseeded from (seed, trials so
        far), so a resumed seeded sweep does not replay the configurations it started with.
        """
        url = storage if storage is not None else config.storage_url
        if read_only and no_study_yet(url):
            raise ConfigError(f"no sweep named {config.name!r} in {redacted(url)} yet")
        try:
            return cls._open(config, url, create, read_only, lease_seconds)
        except sqlalchemy.exc.DatabaseError as exc:
            if (meaning := fault(exc, url)) is None:
                raise
            raise StorageFault(meaning) from exc

    @classmethod
    def _open(
        cls, config: SweepConfig, url: str, create: bool, read_only: bool, lease_seconds: float
    ) -> SweepStudy:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        fresh = create and config.warm_start is not None and no_study_yet(url)
        planned = warm.plan(config) if fresh else None  # refused: not even a file is made
        rdb = open_storage(url, read_only, idle_seconds=lease_seconds)
        if create and planned is None and warm.due(config, rdb, url):
            planned = warm.plan(config)
        if not create:
            try:
                study = optuna.load_study(study_name=config.name, storage=rdb or url)
            except KeyError as exc:
                raise ConfigError(f"no sweep named {config.name!r} in {redacted(url)} yet") from exc
        else:
            study = optuna.create_study(
                storage=rdb,
                study_name=config.name,
                directions=[optuna.study.StudyDirection[d.upper()] for d in config.goal.directions],
                load_if_exists=True,
            )
        check_spec(study, config, redacted(url), write=not read_only)
        if planned is not None and warm.WARM not in study.user_attrs:
            warm.apply(study, config, planned)
        if rdb is not None and config.sampler.kind in (SamplerKind.RANDOM, SamplerKind.QMC):
            uncached(study, rdb)
        study.sampler = make_sampler(config, offset=trial_count(rdb, study, config.name))
        study.pruner = make_pruner(config)
        engine = rdb.engine if rdb is not None else memory_engine()
        leases = Leases(engine, config.name, new_owner(), lease_seconds, read_only=read_only)
        opened = cls(study, config, leases, rdb, url)
        opened._load_budget()
        opened.warm = frozenset(study.user_attrs.get(warm.WARM, {}).get("numbers", ()))
        return opened

    @property
    def study(self) -> optuna.Study:
        """The Optuna study itself, read-only by convention: for Optuna's visualization."""
        return self._study

    @property
    def owner(self) -> str:
        """This orchestrator's identity among those sharing the study."""
        return self._leases.owner

    @property
    def renew_every(self) -> float:
        """How often (seconds) :meth:`heartbeat` must run to keep this orchestrator's lease."""
        return self._leases.renew_every

    def close(self) -> None:
        """Let the storage thread finish, then close every connection to the database.

        The last connection to close a SQLite study folds its write-ahead log
        (``<name>.db-wal``, where every commit of a sweep lands first) into the ``.db``
        file and removes it, so that the file alone holds the whole study, to copy,
        share or open elsewhere. Never raises; a second call does nothing more."""
        if self._rdb is not None:
            with contextlib.suppress(RuntimeError):  # closed already: no thread to ask
                self._executor.submit(release, self._rdb).result()  # the thread's session
        self._executor.shutdown(wait=True)
        if self._rdb is not None:
            release(self._rdb)  # the caller's thread's session, if it read through Optuna

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the storage thread; wait out an outage (:data:`STORAGE`)."""
        loop = asyncio.get_running_loop()

        async def once() -> T:
            try:
                return await loop.run_in_executor(self._executor, fn, *args)
            except STORAGE_ERRORS as exc:
                if (meaning := fault(exc, self._url)) is not None:
                    raise StorageFault(meaning) from exc  # waiting will not fix it
                raise TransientError(describe(exc)) from exc

        if self._down is not None:  # given up on already: fail fast, once more
            policy = dataclasses.replace(self._retry, attempts=1)
        else:
            policy = dataclasses.replace(self._retry, on_retry=self._retrying)
        try:
            return await policy.call(once)
        except TransientError as exc:
            self._down = self._down or StorageUnavailable(
                f"the study's storage ({redacted(self._url)}) has not answered for"
                f" {policy.within:.0f} s: {exc}"
            )
            raise self._down from exc

    async def settle(self) -> None:
        """The storage's deferred upkeep (a new database's schema stamp:
        :func:`stamp_schema`), once, on the storage thread; for a sweep to call when its
        first jobs are under way. Returns at once, without yielding, once done."""
        if self._settled:
            return
        self._settled = True
        assert self._rdb is not None
        await self._run(stamp_schema, self._rdb)

    def _retrying(self, error: BaseException, wait: float) -> None:
        self.note(f"storage unavailable ({error}); retrying in {wait:.1f} s")

    async def join(self) -> None:
        """Take this orchestrator's lease; renew it with :meth:`heartbeat`."""
        await self._run(self._leases.join)

    async def heartbeat(self) -> bool:
        """Renew the lease; False if it had lapsed, so others may have adopted trials we
        run (see :meth:`still_mine`)."""
        return await self._run(self._leases.renew)

    async def stop_asking(self) -> None:
        await self._run(self._leases.stop_asking)

    async def leave(self) -> None:
        """Give up the lease: others may adopt what this orchestrator leaves RUNNING."""
        await self._run(self._leases.leave)

    async def ask(self, job_name: JobNamer) -> TrialRecord | None:
        """Start a trial, claim it and record its first job's name; return it. None when
        the budget is spent (other orchestrators took the last trials): the trial asked
        is closed as not launched."""
        return await self._run(self._ask, job_name)

    def _ask(self, job_name: JobNamer) -> TrialRecord | None:
        while True:
            number = -1  # none yet
            try:
                trial = self._study.ask(self._distributions)
                number = trial.number
                if not self._leases.claim(number):
                    continue
                self._live[number] = trial
                return self._keep(trial, job_name)
            except CLOSED_ELSEWHERE:  # taken for dead mid-ask: another closed the trial
                self._live.pop(number, None)
            except BaseException:  # an outage: the trial is ours to take up (see _adopt)
                self._live.pop(number, None)
                raise

    def _keep(self, trial: optuna.Trial, job_name: JobNamer) -> TrialRecord | None:
        """A trial just asked and claimed: within the budget, name its first job."""
        if trial.number >= self.trial_limit and self._rank(trial.number) >= self.trial_limit:
            # Asks an outage cut short hold places in the budget: close or take them up.
            self._stash += self._adopt()
            if self._rank(trial.number) >= self.trial_limit:
                reason = "not launched: the budget was spent (by another orchestrator)"
                self._tell(trial.number, TrialState.PRUNED, None, {"pruned": reason})
                return None
        name = job_name(trial.number, 1)
        set_user_attrs(trial, {JOB_NAME: name, ATTEMPT: 1, OWNER: self.owner}, self._rdb)
        return TrialRecord(trial.number, dict(trial.params), name, owner=self.owner)

    async def running(self) -> list[TrialRecord]:
        """Every RUNNING trial, with its owner (None: nobody claims it). Reads only."""
        return await self._run(self._running)

    def _running(self) -> list[TrialRecord]:
        frozen = self._study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        owners = self._leases.owners(t.number for t in frozen)
        return [record_of(t, owners.get(t.number)) for t in frozen]

    async def adopt(self) -> list[Adopted]:
        """Take over every RUNNING trial whose orchestrator is dead (at start: those an
        earlier run left behind), and return them.

        A trial whose sampling itself was cut short (Optuna stores each parameter
        separately) is closed as PRUNED, "not launched": no job can have been created for
        it, and it does not count toward the budget.
        """
        return await self._run(self._adopt)

    def _adopt(self) -> list[Adopted]:
        out, self._stash = self._stash, []
        frozen = {
            t.number: t
            for t in self._study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.number not in self._live
        }
        for taken in self._leases.adoptable(frozen):
            trial = frozen[taken.number]
            # Optuna has no public way from a FrozenTrial to its live Trial but the id.
            self._live[trial.number] = optuna.trial.Trial(self._study, trial._trial_id)
            self._reported[trial.number] = set(trial.intermediate_values)
            if set(trial.params) != set(self._distributions):
                reason = "not launched: its sampling was interrupted"
                self._tell(trial.number, TrialState.PRUNED, None, {"pruned": reason})
                continue
            try:
                self._live[trial.number].set_user_attr(OWNER, self.owner)
            except CLOSED_ELSEWHERE:  # closed since it was read, by its owner as it left
                del self._live[trial.number]
                continue
            out.append(Adopted(record_of(trial, self.owner), taken.previous))
        return out

    async def live_orchestrators(self) -> list[str]:
        """The orchestrators whose lease on the sweep holds now (this one aside)."""
        return list(await self._run(self._leases.live))

    async def others_running(self) -> Counter[str]:
        """RUNNING trials other orchestrators hold, counted by owner ("" for unclaimed);
        paused ones (promotion) run no job: what waits on them is their owner's rule."""
        records = await self.running()
        return Counter(r.owner or "" for r in records if r.owner != self.owner and not r.paused)

    async def still_mine(self, numbers: list[int]) -> set[int]:
        """Which of ``numbers`` this orchestrator still claims (after a lapsed lease)."""
        owners = await self._run(self._leases.owners, numbers)
        lost = [n for n in numbers if owners.get(n) != self.owner]
        for number in lost:
            self._live.pop(number, None)
        return set(numbers) - set(lost)

    async def trials(self) -> list[FrozenTrial]:
        """Every trial, by number (read in a few queries: see :mod:`.reader`)."""
        return await self._run(self._all)

    def _all(self) -> list[FrozenTrial]:
        if self._rdb is None:
            return self._study.get_trials(deepcopy=False)
        return read_trials(
            self._rdb.engine, self._rdb.get_study_id_from_name(self._study.study_name)
        )
