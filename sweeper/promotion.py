"""Promotion-based ASHA: trials pause at rungs, and the promising resume from their
checkpoints (``pruner: {kind: asha, mode: promotion}``).

A trial's job is told how far to train through one hyperparameter, the *resource*
(``epochs``): rung ``k`` trains to ``min_resource * reduction_factor**k`` (the last rung to
``max_resource``). A job that ends at a rung below the top *pauses* its trial there; the
trial stays one Optuna trial (RUNNING), its value at the rung recorded. When a slot is
free, the rule of Li et al. (ASHA, 2020) picks what runs next: from the highest rung
down, a paused trial among the best ``n // reduction_factor`` of the ``n`` trials that
reached its rung is *promoted*, a new job of the same trial (same checkpoint prefix,
preferably on a warm pool) trained to the next rung; with none, a new trial starts. Once
no new trial may start, a rung's best ``ceil(n / reduction_factor)`` are promotable, so
the sweep ends with its best trials trained to ``max_resource``.

:func:`promotion` is the rule, a pure function; :class:`Promoter` holds the standings of
one sweep run (its own paused trials, and every trial's rung values) for the scheduler.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from optuna.trial import FrozenTrial

from sweeper.config import PrunerKind, SweepConfig
from sweeper.recording import Outcome
from sweeper.study import SweepStudy
from sweeper.study.records import RUNG, RUNGS, Rung, TrialRecord, rungs_of

REFRESH_SECONDS = 5.0  # how often the standings are read again (other orchestrators')


@dataclass(frozen=True, slots=True)
class Rungs:
    """The rungs of a promotion sweep: the resource's name and the level of each rung."""

    resource: str
    levels: tuple[int, ...]  # rising; the last is max_resource
    reduction_factor: int
    maximize: bool

    @classmethod
    def of(cls, config: SweepConfig) -> Rungs | None:
        """The space file's rungs; None unless ``pruner`` is asha in promotion mode."""
        options = config.pruner.options
        if config.pruner.kind != PrunerKind.ASHA or options.get("mode") != "promotion":
            return None
        low, high = options["min_resource"], options["max_resource"]
        eta = options["reduction_factor"]
        levels = [low]
        while levels[-1] * eta < high:
            levels.append(levels[-1] * eta)
        if levels[-1] != high:
            levels.append(high)
        maximize = config.goal.objectives[0].direction == "maximize"
        return cls(options["resource"], tuple(levels), eta, maximize)

    @property
    def top(self) -> int:
        """The last rung's index: a trial that ends there is complete."""
        return len(self.levels) - 1


@dataclass(frozen=True, slots=True)
class Standing:
    """A trial as the rule sees it: its value at each rung it reached, and whether it is
    paused at the last of them (no job runs; it waits for a promotion)."""

    number: int
    values: tuple[float, ...]
    paused: bool


def promotion(
    standings: Iterable[Standing], rungs: Rungs, mine: set[int], finishing: bool = False
) -> int | None:
    """The trial to promote now, of the paused ones in ``mine``; None: start a new one.

    From the highest rung below the top down, a paused trial is promotable when its value
    is among the best ``n // reduction_factor`` (``ceil`` when ``finishing``) of the ``n``
    values recorded at that rung, whoever's they are; the best promotable trial of the
    highest such rung wins. Ties go to the lower trial number."""
    table = list(standings)
    sign = -1.0 if rungs.maximize else 1.0
    for k in range(rungs.top - 1, -1, -1):
        reached = sorted((sign * s.values[k], s.number, s) for s in table if len(s.values) > k)
        share = len(reached) / rungs.reduction_factor
        quota = math.ceil(share) if finishing else math.floor(share)
        for _, number, s in reached[:quota]:
            if s.paused and len(s.values) == k + 1 and number in mine:
                return number
    return None


def standing_of(trial: FrozenTrial) -> Standing | None:
    """A stored trial's standing (None: it reached no rung yet). A RUNNING trial whose
    current rung has its value recorded is paused."""
    found = rungs_of(trial.user_attrs)
    if not found:
        return None
    rung = int(trial.user_attrs.get(RUNG, 0))
    paused = trial.state.name == "RUNNING" and len(found) > rung
    return Standing(trial.number, tuple(r.value for r in found), paused)


class Promoter:
    """One sweep run's promotions: the standings it ranks by, and the trials paused here.

    Paused trials are this orchestrator's (it claims them, as it claims its running
    ones); another's are ranked with, never promoted. Not thread-safe: the scheduler's
    loop owns it."""

    def __init__(self, rungs: Rungs) -> None:
        self.rungs = rungs
        self._standings: dict[int, Standing] = {}
        self._paused: dict[int, TrialRecord] = {}  # here, by number
        self._read_at: float | None = None

    @property
    def paused(self) -> Mapping[int, TrialRecord]:
        return self._paused

    def load(self, trials: Iterable[FrozenTrial]) -> None:
        """Take every trial's standing from the study (at start, and from other
        orchestrators on the lease's beat); what this run knows better stays."""
        for trial in trials:
            found, known = standing_of(trial), self._standings.get(trial.number)
            if found is None or trial.number in self._paused:
                continue
            if known is None or len(found.values) >= len(known.values):
                self._standings[trial.number] = found

    async def refresh(self, study: SweepStudy, now: float) -> None:
        """Read the standings again if :data:`REFRESH_SECONDS` have passed since."""
        if self._read_at is None or now >= self._read_at + REFRESH_SECONDS:
            self._read_at = now
            self.load(await study.trials())

    def reached(self, record: TrialRecord) -> None:
        """``record``'s job ended at its rung, valued (``record.rungs`` has the value):
        paused if the rung is below the top."""
        values = tuple(r.value for r in record.rungs)
        paused = record.rung < self.rungs.top
        self._standings[record.number] = Standing(record.number, values, paused)
        if paused:
            self._paused[record.number] = record

    def take(self, free: int, finishing: bool, note: Callable[[str], None]) -> list[TrialRecord]:
        """Up to ``free`` promotions, best first, as their next jobs; each is said."""
        out: list[TrialRecord] = []
        while len(out) < free and (record := self.promote(finishing)) is not None:
            level = self.rungs.levels[record.rung]
            note(f"trial {record.number}: promoted to {self.rungs.resource}={level}")
            out.append(record)
        return out

    def promote(self, finishing: bool) -> TrialRecord | None:
        """The next paused trial the rule promotes, as its next job (no name yet)."""
        number = promotion(self._standings.values(), self.rungs, set(self._paused), finishing)
        if number is None:
            return None
        record = self._paused.pop(number)
        self._standings[number] = dataclasses.replace(self._standings[number], paused=False)
        return dataclasses.replace(
            record, job_name=None, attempt=record.attempt + 1, rung=record.rung + 1
        )

    def close_all(self) -> list[Outcome]:
        """The trials still paused here, closed as stopped at their rung (the sweep is
        over: none will be promoted); their runs end with them."""
        out = []
        for record in self._paused.values():
            level = self.rungs.levels[record.rung]
            reason = f"paused at {self.rungs.resource}={level}: not promoted"
            out.append(Outcome(record, None, reason, rung_attrs(record), pruned_at=level))
        self._paused = {}
        return out


def value_at(record: TrialRecord, rungs: Rungs, value: float, billable: float) -> TrialRecord:
    """``record`` with its current rung's result: ``value``, the job that reached it."""
    assert record.job_name is not None
    done = Rung(rungs.levels[record.rung], value, record.attempt, billable, record.job_name)
    return dataclasses.replace(record, rungs=(*record.rungs[: record.rung], done))


def rung_attrs(record: TrialRecord) -> dict[str, object]:
    """What the study keeps of ``record``'s rungs (a list per rung reached), and its
    billable seconds, summed over them. The rung its next job trains to is recorded
    with that job (:meth:`SweepStudy.assign_job`), after these."""
    billable = sum(r.billable for r in record.rungs)
    return {RUNGS: [dataclasses.astuple(r) for r in record.rungs], "billable_seconds": billable}


async def store_rung(study: SweepStudy, record: TrialRecord) -> None:
    """Before a promoted trial's next job is recorded, the rung it reached is stored (a
    crash between the two then finds it paused, never at the next rung without the last
    one's value). Idempotent; nothing for any other record."""
    if record.rung and len(record.rungs) == record.rung:
        last = record.rungs[-1]
        await study.pause(record.number, rung_attrs(record), last.resource, last.value)
