"""Every trial an MLflow run too: one parent run per sweep, one nested run per trial.

Runs are found by their tags (``sweeper.sweep``, ``sweeper.trial``), not by memory: a
resumed sweep, or a second orchestrator, adopts the runs there are, makes those that are
missing and completes those a crash left RUNNING. MLflow's client is synchronous: every
call runs on one worker task, in order, in a thread, off the dispatch path; only with a
SageMaker MLflow ARN does a trial's launch wait for its run, which the job's
``MlflowConfig`` names. An MLflow error never costs a trial: it is said once, and what
it left undone is done at the next start.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sweeper.study import PRUNED_AT
from sweeper.types import Point, TrialResult

SWEEP_TAG = "sweeper.sweep"
ROLE_TAG = "sweeper.role"  # "sweep" on the parent run, "trial" on a nested one
TRIAL_TAG = "sweeper.trial"
PARENT_TAG = "mlflow.parentRunId"  # what MLflow's UI nests runs by
NOTE_TAG = "mlflow.note.content"  # the run's description in MLflow's UI
BEST_TAG = "sweeper.best_trial"  # on the parent run: the best trial's number
FRONT_TAG = "sweeper.pareto_front"  # ... or, several objectives, the front's: "3,7,12"
TERMINAL = frozenset({"FINISHED", "FAILED", "KILLED"})
_BAD_KEY = re.compile(r"[^/\w.\- :]")  # what MLflow refuses in param and metric names


def key(name: str) -> str:
    """A param or metric name MLflow accepts (at most 250 characters of its alphabet)."""
    return _BAD_KEY.sub("_", name)[:250]


def trial_status(result: TrialResult) -> str:
    """MLflow's status for a finished trial: pruned or stopped jobs are KILLED."""
    if result.completed:
        return "FINISHED"
    stopped = PRUNED_AT in result.attrs or result.attrs.get("job_status") == "Stopped"
    return "KILLED" if stopped else "FAILED"


@dataclass(frozen=True, slots=True)
class Run:
    """An MLflow run of ours, as found by its tags."""

    run_id: str
    status: str
    trial: int | None  # None: the sweep's parent run
    start_time: int
    best_trial: str | None = None  # a parent run's BEST_TAG (or FRONT_TAG)


class MlflowStore:
    """The MLflow calls Sweeper makes, synchronous, on one experiment. The only place
    that imports ``mlflow`` (an optional extra)."""

    def __init__(self, tracking_uri: str, experiment: str) -> None:
        # A server that does not answer must not hold a worker for minutes (MLflow's
        # default is seven retries with backoff); the user's own settings win.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        # Its store's set-up lines ("Creating initial MLflow database tables...") are not
        # the sweep's news; its warnings and errors still show.
        logging.getLogger("mlflow").setLevel(logging.WARNING)

        self._entities = (Metric, Param, RunTag)
        self.client = MlflowClient(tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            self.experiment_id = str(found.experiment_id)
            return
        try:
            self.experiment_id = str(self.client.create_experiment(experiment))
        except MlflowException:  # made by another orchestrator meanwhile
            again = self.client.get_experiment_by_name(experiment)
            if again is None:
                raise
            self.experiment_id = str(again.experiment_id)

    def runs(self, sweep: str) -> list[Run]:
        """Every run of sweep ``sweep`` in the experiment, oldest first."""
        found: list[Run] = []
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`{SWEEP_TAG}` = '{sweep}'",
                max_results=1000,
                order_by=["attributes.start_time ASC"],
                page_token=token,
            )
            for r in page:
                trial = r.data.tags.get(TRIAL_TAG)
                number = int(trial) if trial is not None and trial.isdigit() else None
                best = r.data.tags.get(BEST_TAG) or r.data.tags.get(FRONT_TAG)
                found.append(
                    Run(r.info.run_id, r.info.status, number, r.info.start_time or 0, best)
                )
            token = page.token
            if not token:
                return found

    def create(self, name: str, tags: dict[str, str], params: dict[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=name)
        self.log(run.info.run_id, params=params)
        return str(run.info.run_id)

    def log(
        self,
        run_id: str,
        points: Sequence[Point] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Log in batches of MLflow's limits (1 000 metrics, 100 params or tags)."""
        metric, param, tag = self._entities
        metrics = [metric(key(p.metric), p.value, int(p.time * 1000), p.step) for p in points]
        ps = [param(key(k), v[:6000]) for k, v in (params or {}).items()]
        ts = [tag(k, v[:8000]) for k, v in (tags or {}).items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[i : i + 1000])
        for i in range(0, max(len(ps), len(ts)), 100):
            self.client.log_batch(run_id, params=ps[i : i + 100], tags=ts[i : i + 100])

    def complete(
        self,
        run_id: str,
        points: Sequence[Point],
        params: dict[str, str],
        tags: dict[str, str],
        status: str,
        end_ms: int | None,
    ) -> None:
        """Log a trial's last values and end its run with ``status``."""
        self.log(run_id, points, params, tags)
        self.end(run_id, status, end_ms)

    def make_parent(self, sweep: str, tags: dict[str, str], params: dict[str, str]) -> list[Run]:
        """Make sweep ``sweep``'s parent run, and return its parent runs, oldest first: if
        another orchestrator made one meanwhile, the oldest stays and ours goes."""
        mine = self.create(sweep, tags, params)
        parents = [r for r in self.runs(sweep) if r.trial is None]
        if parents[0].run_id != mine:
            self.delete(mine)
        return parents

    def note(self, sweep: str, trial: int, text: str) -> str | None:
        """Make ``text`` the description of trial ``trial``'s run; the run's id, or None
        when the trial has no run yet."""
        runs = [r for r in self.runs(sweep) if r.trial == trial]
        if not runs:
            return None
        self.log(runs[0].run_id, tags={NOTE_TAG: text})
        return runs[0].run_id

    def end(self, run_id: str, status: str, end_ms: int | None = None) -> None:
        self.client.set_terminated(run_id, status, end_time=end_ms)

    def reopen(self, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")

    def delete(self, run_id: str) -> None:
        self.client.delete_run(run_id)
