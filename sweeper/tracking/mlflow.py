"""Every trial an MLflow run too: one parent run per sweep, one nested run per trial.

Runs are found by their tags (:mod:`sweeper.tracking.mlflow_store`), not by memory: a
resumed sweep, or a second orchestrator, adopts the runs there are, makes those that are
missing and completes those a crash left RUNNING. MLflow's client is synchronous: its
calls run one at a time, in order, in a process of their own
(:mod:`sweeper.tracking.mlflow_worker`), from the tracker's own task (:meth:`drain`)
and off the dispatch path; only with a SageMaker MLflow ARN does a trial's launch wait
for its run, which the job's ``MlflowConfig`` names. An MLflow error never costs a
trial: it is said once, and what it left undone is done at the next start.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from optuna.trial import TrialState

from sweeper.config import SweepConfig
from sweeper.pareto import Front
from sweeper.recording import Outcome
from sweeper.study import PRUNED_AT, SweepStudy, TrialRecord
from sweeper.study.records import ran_here, result_of
from sweeper.tracking.experiments import run_name
from sweeper.tracking.mlflow_store import (
    BEST_TAG,
    FRONT_TAG,
    NOTE_TAG,
    PARENT_TAG,
    ROLE_TAG,
    SWEEP_TAG,
    TERMINAL,
    TRIAL_TAG,
    MlflowStore,
    Run,
    trial_status,
)
from sweeper.tracking.mlflow_worker import MlflowCalls
from sweeper.tracking.series import JobSeries
from sweeper.types import Point, TrialResult

Step = Callable[[], Awaitable[None]]


def sweep_params(config: SweepConfig) -> dict[str, str]:
    """The parent run's params: the space file's settings (not its environment)."""
    params = {f"space.{p.name}": _shown(dataclasses.asdict(p)) for p in config.space}
    for i, o in enumerate(config.goal.objectives):
        where = "objective" if config.goal.single else f"objectives.{i}"
        params |= {f"{where}.metric": o.metric, f"{where}.direction": o.direction}
    for c in config.goal.constraints:
        side, bound = ("max", c.max) if c.max is not None else ("min", c.min)
        params[f"constraints.{c.metric}.{side}"] = f"{bound:g}"
    for section in ("budget", "sampler", "pruner"):
        for name, value in dataclasses.asdict(getattr(config, section)).items():
            params[f"{section}.{name}"] = _shown(value)
    skip = {"environment", "hyperparameters", "metric_definitions", "role"}
    for name, value in dataclasses.asdict(config.estimator).items():
        if name not in skip and value not in (None, {}, ()):
            params[f"estimator.{name}"] = _shown(value)
    return params


def _shown(value: Any) -> str:
    return str(value.value if hasattr(value, "value") else value)


class MlflowTracker:
    """A sweep's MLflow runs: a request hook (``MlflowConfig`` for a SageMaker MLflow
    ARN) and an observer. Task-safe on one event loop; MLflow calls happen in
    :meth:`drain`, which waits for the store, starts (:meth:`start`) and runs until
    :meth:`close`: nothing else waits for MLflow but, with an ARN, a trial's launch."""

    def __init__(
        self,
        store: MlflowCalls,
        config: SweepConfig,
        study: SweepStudy,
        series: JobSeries,
        note: Callable[[str], None],
        job_link: Callable[[str], str | None],
        model_uri: Callable[[str], str],
    ) -> None:
        self._store, self._config, self._study, self._series = store, config, study, series
        self._note, self._job_link, self._model_uri = note, job_link, model_uri
        self._arn = config.tracking.mlflow is not None and config.tracking.mlflow.arn
        self._parent = ""
        self._runs: dict[int, Run] = {}  # trial -> its run, as found or made
        self._begun: dict[int, asyncio.Future[None]] = {}
        self._queue: asyncio.Queue[Step | None] = asyncio.Queue()
        self._front = Front(config.goal.directions)  # the feasible trials' best
        self._notes: dict[int, str] = {}  # sweep.py note's, as the study had them at start
        self._failed = 0  # steps an MLflow error left undone (the next start does them)
        self._started = False
        self._catch_up: list[Step] = []  # what start found unrecorded: drain's first steps
        self._recorded: set[int] = set()  # trials whose results this run queued itself
        self._down = ""  # why nothing is recorded this run: MLflow did not open or start

    async def start(self) -> int:
        """Wait for the store; find or make the sweep's parent run; list the completion of
        every finished trial whose run is not complete (:meth:`drain` does those first).
        Returns how many were listed."""
        self._started = True
        await self._store.ready()
        parent = await self._find_parent()
        self._notes = await self._study.notes()
        front = await self._study.front()
        for trial in front:
            self._front.add(trial.number, tuple(trial.values))
        if front and parent.best_trial != self._front_tag(front[0].number)[0]:
            # trials an earlier run did not record: the parent learns the best first
            self._catch_up.append(partial(self._tag_front, front[0].number))
        queued = 0
        for trial in await self._study.trials():
            done = ran_here(trial) and (
                trial.state in (TrialState.COMPLETE, TrialState.FAIL)
                or PRUNED_AT in trial.user_attrs
            )
            found = self._runs.get(trial.number)
            if trial.number in self._recorded:
                continue  # ended in this run before MLflow started: queued already
            if done and (found is None or found.status not in TERMINAL):
                self._catch_up.append(partial(self._complete, result_of(trial)))
                queued += 1
        return queued

    async def _find_parent(self) -> Run:
        """The sweep's parent run, found (reopened) or made; the trials' runs noted."""
        name = self._config.name
        runs = await self._store.call(MlflowStore.runs, name)
        parents = [r for r in runs if r.trial is None]
        if not parents:
            tags = {
                SWEEP_TAG: name,
                ROLE_TAG: "sweep",
                "sweeper.space_file": str(self._config.path.resolve()),
            }
            params = sweep_params(self._config)
            parents = await self._store.call(MlflowStore.make_parent, name, tags, params)
        self._parent = parents[0].run_id
        if parents[0].status != "RUNNING":
            await self._store.call(MlflowStore.reopen, self._parent)
        for run in runs:
            if run.trial is not None and run.trial not in self._runs:
                self._runs[run.trial] = run  # the oldest, should two have been made
        return parents[0]

    async def prepare(self, record: TrialRecord) -> None:
        """The request hook's side: the trial's run is begun; with an ARN, before its job."""
        number = record.number
        if self._down:
            return
        if number not in self._begun:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._begun[number] = done
            self._queue.put_nowait(partial(self._begin, number, record.params, done))
        if self._arn:
            await asyncio.shield(self._begun[number])

    def fields(self, number: int) -> dict[str, Any]:
        """With a SageMaker MLflow ARN: the job's ``MlflowConfig``, naming the trial's run."""
        mlflow = self._config.tracking.mlflow
        if not self._arn or mlflow is None or number not in self._runs:
            return {}
        return {
            "MlflowConfig": {
                "MlflowResourceArn": mlflow.tracking_uri,
                "MlflowExperimentName": mlflow.experiment,
                "MlflowRunName": run_name(number),
            }
        }

    async def recorded(self, outcome: Outcome) -> None:
        """The observer's side: the trial's result is in the study; complete its run."""
        result = outcome.result()
        self._recorded.add(result.number)
        self._queue.put_nowait(partial(self._complete, result))

    async def _begin(self, number: int, params: dict[str, Any], done: asyncio.Future[None]) -> None:
        try:
            await self._ensure_run(number, params)
        finally:
            if not done.done():
                done.set_result(None)

    async def _ensure_run(self, number: int, params: dict[str, Any]) -> Run:
        run = self._runs.get(number)
        if run is None:
            run_id = await self._store.call(
                MlflowStore.create, run_name(number), self._trial_tags(number), self._params(params)
            )
            run = self._runs[number] = Run(run_id, "RUNNING", number, 0)
        return run

    def _trial_tags(self, number: int) -> dict[str, str]:
        return {
            SWEEP_TAG: self._config.name,
            ROLE_TAG: "trial",
            TRIAL_TAG: str(number),
            PARENT_TAG: self._parent,
        }

    def _params(self, params: dict[str, Any]) -> dict[str, str]:
        merged = {**self._config.estimator.hyperparameters, **params}
        return {name: str(value) for name, value in merged.items()}

    async def _complete(self, result: TrialResult) -> None:
        """Complete the trial's run, once: a trial that ends while the tracker starts is
        both caught up and recorded."""
        found = self._runs.get(result.number)
        if found is not None and found.status in TERMINAL:
            return
        run = await self._ensure_run(result.number, result.params)
        points = await self._series.of(result)
        tags = self._final_tags(result)
        ended = result.attrs.get("job_ended")
        status = trial_status(result)
        params = self._params(result.params)  # again: a crash may have come between
        end_ms = int(ended * 1000) if ended else None
        await self._store.call(
            MlflowStore.complete, run.run_id, points, params, tags, status, end_ms
        )
        self._runs[result.number] = dataclasses.replace(run, status=status)
        if result.completed and result.values is not None and result.feasible:
            before = self._front.keys
            improved = self._front.add(result.number, result.values)
            if improved or (not self._config.goal.single and self._front.keys != before):
                await self._tag_front(result.number)

    def _final_tags(self, result: TrialResult) -> dict[str, str]:
        a = result.attrs
        tags: dict[str, str] = {}
        job = a.get("job_name")
        if job:
            tags["sweeper.job"] = str(job)
            link = self._job_link(str(job))
            if link:
                tags["sweeper.job_url"] = link
            if result.completed:
                tags["sweeper.model_uri"] = self._model_uri(str(job))
        if a.get("failure"):
            tags["sweeper.failure"] = str(a["failure"])
        if a.get(PRUNED_AT) is not None:
            tags["sweeper.pruned_at_step"] = str(a[PRUNED_AT])
        note = self._notes.get(result.number)
        if note:
            tags[NOTE_TAG] = note
        return tags

    def _front_tag(self, number: int) -> tuple[str, dict[str, str], Point]:
        """What the parent run records of the best: one objective, the best trial (its
        number and value, and a ``best <metric>`` series over trials); several, the
        Pareto front's trial numbers (and the front's size over trials)."""
        goal, now = self._config.goal, time.time()
        if goal.single:
            value = self._front.best or 0.0
            tags = {BEST_TAG: str(number), "sweeper.best_value": repr(value)}
            return str(number), tags, Point(f"best {goal.metrics[0]}", now, number, value)
        numbers = ",".join(map(str, self._front.keys))
        size = float(len(self._front.entries))
        return numbers, {FRONT_TAG: numbers}, Point("pareto front size", now, number, size)

    async def _tag_front(self, number: int) -> None:
        """Keep the parent's best trial (or Pareto front) current; ``number`` just
        improved it."""
        _, tags, point = self._front_tag(number)
        await self._store.call(MlflowStore.log, self._parent, [point], None, tags)

    def close(self) -> None:
        """No more trials: :meth:`drain` returns once what is queued is done."""
        self._queue.put_nowait(None)

    async def drain(self) -> None:
        """Start (unless started), then do the queued MLflow steps in order until
        :meth:`close`; say the first error. If MLflow cannot start, say so and record
        nothing: the next run of the sweep catches up."""
        if not self._started:
            try:
                queued = await self.start()
            except Exception as exc:  # any MLflow or network error
                self._stand_down(exc)
            else:
                if queued:
                    self._note(f"MLflow: completing {queued} runs an earlier run left unrecorded")
        for earlier in self._catch_up:  # even when close() came first: all done already
            await self._do(earlier)
        self._catch_up.clear()
        while (step := await self._queue.get()) is not None:
            await self._do(step)

    async def _do(self, step: Step) -> None:
        if self._down:
            return
        try:
            await step()
        except Exception as exc:  # any MLflow or network error: a note
            self._failed += 1
            if self._failed == 1:
                self._note(f"MLflow: {brief(exc)}; what is not recorded is on the next run")

    def _stand_down(self, exc: Exception) -> None:
        mlflow = self._config.tracking.mlflow
        where = mlflow.tracking_uri if mlflow else "MLflow"
        self._down = f"MLflow at {where} did not answer ({brief(exc)})"
        self._note(f"{self._down}; the sweep goes on, and its next run records the runs")
        for begun in self._begun.values():  # launches waiting for their run go without
            if not begun.done():
                begun.set_result(None)

    async def finish(self, interrupted: bool) -> None:
        """Mark the parent run FINISHED, or KILLED when interrupted (a rerun reopens it)."""
        if not self._parent:
            return
        status = "KILLED" if interrupted else "FINISHED"
        try:
            await self._store.call(MlflowStore.end, self._parent, status)
        except Exception as exc:
            self._failed += 1
            self._note(f"MLflow: the sweep's run was not ended ({brief(exc)})")

    def summary(self) -> str:
        """Where the runs are, and how many wait for the next run."""
        if self._down:
            return f"{self._down}: nothing recorded; the next run catches up"
        mlflow = self._config.tracking.mlflow
        where = f"{mlflow.tracking_uri}, experiment {mlflow.experiment}" if mlflow else ""
        done = sum(r.status in TERMINAL for r in self._runs.values())
        left = f"; {self._failed} step(s) failed (done on the next run)" if self._failed else ""
        return f"MLflow: {done} trial runs under run {self._parent} in {where}{left}"


def brief(exc: BaseException) -> str:
    """An error in one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    kind = getattr(exc, "kind", type(exc).__name__)  # a worker's MlflowError: MLflow's type
    return f"{kind}: {text[0][:300] if text else ''}"
