"""Reading a sweep from Python: its trials as a DataFrame, its best trial, its report,
notes; and the best job as an SDK Estimator.

Every call reads the study as it is now (opened for the call and closed again), so a
view may be used while this or another process runs the sweep; none of them launches
anything. Each blocks until it has its answer; inside a running event loop (a notebook
cell) it does its work on a thread of its own, so it may be called from there too.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sweeper import queries
from sweeper.config import SweepConfig
from sweeper.errors import SweepError

if TYPE_CHECKING:
    import pandas

T = TypeVar("T")

# The DataFrame's columns after ``number`` and before the parameters, from the report.
COLUMNS = (
    "state",
    "value",
    "values",
    "feasible",
    "on_front",
    "job",
    "attempt",
    "job_seconds",
    "billable_seconds",
    "pool_seconds",
    "cost",
    "pruned_at_step",
    "failure",
    "note",
    "experiment",
    "run",
    "orchestrator",
)


@dataclass(frozen=True, slots=True)
class Trial:
    """One trial as the report has it: ``state`` is complete, fail, running, pruned or
    not_launched; ``value`` a single objective's, ``values`` every objective's (None
    until complete); ``feasible`` None without constraints; ``job`` its last job;
    seconds and cost None until known."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    job: str | None
    job_seconds: float | None
    billable_seconds: float | None
    cost: float | None
    note: str | None
    run: str | None
    values: tuple[float, ...] | None = None
    feasible: bool | None = None
    on_front: bool = False

    @classmethod
    def of(cls, row: dict[str, Any]) -> Trial:
        """From a trial of the report document (``sweeper.report/2``)."""
        return cls(
            number=int(row["number"]),
            state=str(row["state"]),
            value=row["value"],
            params=dict(row["params"]),
            job=row["job"],
            job_seconds=row["job_seconds"],
            billable_seconds=row["billable_seconds"],
            cost=row["cost"],
            note=row["note"],
            run=row["run"],
            values=tuple(row["values"]) if row["values"] is not None else None,
            feasible=row["feasible"],
            on_front=bool(row["on_front"]),
        )


def blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine ``make()`` to its end: here, or on a thread of its own when
    this thread already runs an event loop (which must not be blocked by a nested one)."""
    if loop_running():
        return in_thread(lambda: asyncio.run(make()))
    return asyncio.run(make())


def loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def in_thread(work: Callable[[], T]) -> T:
    """``work()`` on a thread of its own, waited for; its error raised here."""
    box: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            box.append(work())
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="sweeper-call", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return box[0]


class SweepView:
    """The read side of a sweep (see the module's contract); :class:`sweeper.Sweep`
    adds running it. Thread-safe: each call opens the study for itself.

    ``detached``: made from the study alone (``sweeper.open(storage=..., name=...)``),
    knowing nothing of the sweep's jobs, tracking or backend."""

    def __init__(self, config: SweepConfig, estimator: Any = None, detached: bool = False) -> None:
        self.config = config
        self._estimator = estimator
        self._detached = detached

    @property
    def name(self) -> str:
        return self.config.name

    def report(self, top: int = 10) -> dict[str, Any]:
        """The document ``sweep.py report --json`` prints (schema ``sweeper.report/2``)."""
        return blocking(lambda: queries.report_document(self.config, top))

    def _trials(self, top: int) -> dict[str, Any]:
        """The report without the parameters' ranking."""
        return blocking(lambda: queries.report_document(self.config, top, rank=False))

    def trials_dataframe(self) -> pandas.DataFrame:
        """One row per trial, in trial order: ``number``, the report's fields
        (:data:`COLUMNS`), with several objectives one ``values_<metric>`` column each,
        then one ``params_<name>`` column per parameter (needs pandas:
        ``pip install 'sweeper[notebook]'``)."""
        try:
            import pandas
        except ImportError as exc:
            raise ImportError(
                "trials_dataframe() needs pandas: pip install 'sweeper[notebook]'"
            ) from exc
        goal = self.config.goal
        each = [] if goal.single else [f"values_{m}" for m in goal.metrics]
        rows = []
        for t in self._trials(0)["trials"]:
            row = {"number": t["number"], **{k: t[k] for k in COLUMNS}}
            values = t["values"] or [None] * len(each)
            row |= dict(zip(each, values, strict=False))
            rows.append(row | {f"params_{k}": v for k, v in t["params"].items()})
        names = [f"params_{p.name}" for p in self.config.space]
        return pandas.DataFrame(rows, columns=["number", *COLUMNS, *each, *names])

    @property
    def best_trial(self) -> Trial | None:
        """The best feasible completed trial so far; None before any completed. A sweep of
        several objectives has no one best: SweepError (see :meth:`pareto_front`)."""
        if not self.config.goal.single:
            raise SweepError(
                "best_trial: a sweep of several objectives has no one best trial; use"
                " pareto_front() (the trials no other beats on every objective)"
            )
        best = self._trials(1)["best"]
        return Trial.of(best) if best is not None else None

    def pareto_front(self) -> list[Trial]:
        """The Pareto front: the feasible completed trials no other beats on every
        objective, by the first objective, best first (one objective: the trials with
        the best value). Empty before any completed."""
        return [Trial.of(t) for t in self._trials(0)["front"]]

    def note(self, trial: int, text: str) -> None:
        """``text`` as trial ``trial``'s note (replacing an earlier one): in the study,
        which reports show, and on its Experiments and MLflow runs; a run that cannot be
        updated is a warning (the study has the note). Idempotent."""
        said = in_thread(lambda: queries.note(self.config, trial, text))
        if self._detached:
            said.append(
                (
                    False,
                    "its Experiments and MLflow runs, if any, were not updated:"
                    " the sweep was opened from its storage; open it from its space file for that",
                )
            )
        for done, sentence in said:
            if not done:
                warnings.warn(sentence, stacklevel=2)

    def best_estimator(self, trial: int | None = None) -> Any:
        """The best trial's job (or trial ``trial``'s, which a sweep of several objectives
        must name) as an SDK v2 Estimator (``Estimator.attach``; the class
        of the Estimator the sweep was given, if any): its hyperparameters, model
        artifacts and the rest as DescribeTrainingJob has them. On the sweep's own
        (embedded) emulator, which stops when this returns, read its fields; deploying
        needs SageMaker. Needs the SDK (``pip install 'sagemaker>=2.257,<3'``)."""
        from sweeper import backend

        if self._detached:
            raise SweepError(
                "best_estimator(): this view was opened from the sweep's storage, which does"
                " not say where its jobs ran; open it from its space file"
                " (sweeper.open('space.yaml')) to attach the best job"
            )
        job = queries.best_job(self._trials(1), trial)
        try:
            from sagemaker.estimator import Estimator
        except ImportError as exc:
            raise ImportError("best_estimator() needs the SageMaker SDK v2") from exc
        kind = type(self._estimator) if self._estimator is not None else Estimator

        def attach() -> Any:
            from sweeper.api.sdk_jobs import Described, sdk_session

            with backend.endpoints(self.config) as ends:
                session = sdk_session(ends, self._estimator)
                estimator = kind.attach(job, sagemaker_session=session)
                if ends.embedded:  # gone as the block ends: what it said stays readable
                    described = session.sagemaker_client.describe_training_job(TrainingJobName=job)
                    session.sagemaker_client = Described(job, described)
                return estimator

        return in_thread(attach)
