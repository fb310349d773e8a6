"""Every trial a SageMaker Experiments Run, sharded before the 50-runs-per-group limit.

Trial ``n``'s run is ``trial-<n>`` in experiment shard ``n // runs_per_experiment``
(``<name>``, ``<name>-2``, ...): deterministic, so orchestrators sharing a study agree.
Experiments and run groups are created lazily, once per shard. If AssociateTrialComponent
still answers ResourceLimitExceeded (a lower quota, runs that are not ours), the run
moves to the next shard, which is then known to be full, and the sweep goes on.

A run is begun before its trial's first job (so the job's ``ExperimentConfig`` names
it) and completed after the trial's result is in the study: status and message, start
and end, parameters, the metric series read from the job's log, the model artifact.
Recording never costs a trial: an Experiments error becomes a note; the study records
what is done (``sweeper:run:<n>``), and what is not is completed at the next start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from optuna.trial import TrialState

from sweeper.aws.experiments import (
    ExperimentsApi,
    component_name,
    experiment_config,
    experiment_name,
    parameters,
)
from sweeper.config import SweepConfig
from sweeper.errors import BackendError, CapacityError, TransientError
from sweeper.recording import Outcome
from sweeper.study import JOB_NAME, PRUNED_AT, SweepStudy, TrialRecord
from sweeper.study.records import ran_here, result_of
from sweeper.tracking.series import JobSeries
from sweeper.types import TrialResult

_RECORDING_ERRORS = (BackendError, TransientError)


NOTE = "sweeper:note"  # the run parameter that holds a trial's note
COMPLETERS = 8  # runs completed at once


def run_name(number: int) -> str:
    return f"trial-{number}"


def run_of(config: SweepConfig, number: int, stored: dict[str, Any] | None) -> str:
    """Trial ``number``'s run (trial component): as stored, else its default shard's."""
    if stored:
        return str(stored["run"])
    shard = number // config.experiment.runs_per_experiment
    return component_name(
        experiment_name(config.experiment.name or config.name, shard), run_name(number)
    )


class Tracker:
    """Begins and completes runs. Task-safe on one event loop."""

    def __init__(
        self,
        api: ExperimentsApi,
        series: JobSeries,
        study: SweepStudy,
        config: SweepConfig,
        model_uri: Callable[[str], str],
        note: Callable[[str], None],
    ) -> None:
        self._api, self._series, self._study, self._config = api, series, study, config
        self._model_uri = model_uri  # job name -> its model.tar.gz
        self._note = note
        self._base = config.experiment.name or config.name
        self._made: dict[str, asyncio.Lock] = {}  # experiment -> lock held while creating it
        self._ready: set[str] = set()  # experiments whose run group exists
        self._full: set[int] = set()  # shards found full
        self._runs: dict[int, dict[str, Any]] = {}  # what the study says (sweeper:run:<n>)
        self._queue: asyncio.Queue[TrialResult | None] = asyncio.Queue()

    async def prepare(self, record: TrialRecord) -> None:
        """The request hook's side: the trial's run exists before its job names it."""
        await self.begin(record)

    def fields(self, number: int) -> dict[str, Any]:
        """The request hook's fields: the trial's ``ExperimentConfig``, once its run exists."""
        experiment = self.experiment_config(number)
        return {"ExperimentConfig": experiment} if experiment is not None else {}

    async def recorded(self, outcome: Outcome) -> None:
        """The observer's side: the trial's result is in the study; complete its run."""
        self.enqueue(outcome.result())

    def experiment_config(self, number: int) -> dict[str, str] | None:
        """The ``ExperimentConfig`` of trial ``number``'s jobs, once its run exists."""
        run = self._runs.get(number)
        return experiment_config(run["experiment"], run_name(number)) if run else None

    async def catch_up(self) -> int:
        """Load what earlier runs recorded; queue every finished trial whose run is not
        complete. Returns how many were queued."""
        self._runs = await self._study.runs()
        queued = 0
        for trial in await self._study.trials():
            done = ran_here(trial) and (
                trial.state in (TrialState.COMPLETE, TrialState.FAIL)
                or PRUNED_AT in trial.user_attrs
            )
            if done and not self._runs.get(trial.number, {}).get("recorded"):
                self.enqueue(result_of(trial))
                queued += 1
        return queued

    async def begin(self, record: TrialRecord) -> None:
        """Create trial ``record``'s run unless it exists; never fails the trial."""
        if record.number in self._runs:
            return
        try:
            await self._begin(record.number, record.params)
        except _RECORDING_ERRORS as exc:
            self._note(f"trial {record.number}: its Experiments run waits ({exc})")

    async def _begin(self, number: int, params: dict[str, Any]) -> str:
        shard = default = number // self._config.experiment.runs_per_experiment
        values = parameters({**self._config.estimator.hyperparameters, **params})
        while True:
            while shard in self._full:
                shard += 1
            experiment = experiment_name(self._base, shard)
            await self._ensure(experiment)
            component = component_name(experiment, run_name(number))
            await self._api.create_run(component, run_name(number), values)
            try:
                await self._api.associate(component, experiment)
            except CapacityError:
                self._full.add(shard)
                self._note(f"experiment {experiment} is full; runs go to the next one")
                await self._api.delete_run(component)
                continue
            self._runs[number] = {"experiment": experiment, "run": component, "recorded": False}
            if experiment != experiment_name(self._base, default):  # else it follows from n
                await self._study.set_run(number, self._runs[number])
            return experiment

    async def _ensure(self, experiment: str) -> None:
        lock = self._made.setdefault(experiment, asyncio.Lock())
        async with lock:
            if experiment not in self._ready:
                await self._api.ensure_experiment(experiment, f"Sweeper sweep {self._config.name}")
                await self._api.ensure_run_group(experiment)
                self._ready.add(experiment)

    def summary(self) -> str:
        """Where the runs are: ``Runs: 120 in SageMaker Experiments a (50), a-2 (50), ...``."""
        per: dict[str, int] = {}
        for run in self._runs.values():
            per[run["experiment"]] = per.get(run["experiment"], 0) + 1
        where = ", ".join(f"{name} ({count})" for name, count in sorted(per.items()))
        pending = sum(not r.get("recorded") for r in self._runs.values())
        left = f"; {pending} not complete yet (done on the next run)" if pending else ""
        return f"Runs: {len(self._runs)} in SageMaker Experiments {where or '-'}{left}"

    async def finish(self, interrupted: bool) -> None:
        """Nothing stands for the sweep itself among its Experiments runs."""

    def enqueue(self, result: TrialResult) -> None:
        """Complete the trial's run soon (its result is in the study)."""
        self._queue.put_nowait(result)

    def close(self) -> None:
        """No more trials: :meth:`drain` returns once the queue is empty."""
        for _ in range(COMPLETERS):
            self._queue.put_nowait(None)

    async def drain(self) -> None:
        """Complete queued runs until :meth:`close`, :data:`COMPLETERS` at a time (each
        takes a log read and two or three Experiments calls: one at a time, a sweep of
        short trials would end long after its last result); errors become notes."""
        async with asyncio.TaskGroup() as tg:
            for _ in range(COMPLETERS):
                tg.create_task(self._complete_queued())

    async def _complete_queued(self) -> None:
        while (result := await self._queue.get()) is not None:
            try:
                await self.complete(result)
            except _RECORDING_ERRORS as exc:
                self._note(f"trial {result.number}: its Experiments run is completed later ({exc})")

    async def complete(self, result: TrialResult) -> None:
        number = result.number
        if number not in self._runs:
            await self._begin(number, result.params)
        run = self._runs[number]
        job = result.attrs.get(JOB_NAME)
        series = await self._series.of(result)
        if series:
            await self._api.put_metrics(run["run"], series)
        await self._api.update_run(run["run"], **self._final_fields(result, job))
        self._runs[number] = {**run, "recorded": True}
        await self._study.set_run(number, self._runs[number])

    def _final_fields(self, result: TrialResult, job: str | None) -> dict[str, Any]:
        a = result.attrs
        stopped = a.get("job_status") == "Stopped"
        status = "Completed" if result.completed else "Stopped" if stopped else "Failed"
        fields: dict[str, Any] = {"Status": {"PrimaryStatus": status}}
        if a.get("failure"):
            fields["Status"]["Message"] = str(a["failure"])[:1024]
        if a.get("job_created"):
            fields["StartTime"] = a["job_created"]
        if a.get("job_ended"):
            fields["EndTime"] = a["job_ended"]
        if job:
            artifacts = {"SageMaker.TrainingJob": {"Value": job}}
            if status == "Completed":
                artifacts["SageMaker.ModelArtifact"] = {
                    "Value": self._model_uri(job),
                    "MediaType": "application/x-tar",
                }
            fields["OutputArtifacts"] = artifacts
        return fields
