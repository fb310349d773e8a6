"""The composition root: one sweep's parts built from its config and endpoints, run to
the sweep's end, and how it ended returned as a :class:`SweepResult`.

Both faces stand on :class:`Session`: the command line (:mod:`sweeper.cli`: arguments,
printing, exit codes, signals) and the Python API (:mod:`sweeper.api`). Nothing here
prints, exits or installs a signal handler: what the user reads goes to ``say`` and to
the live view's stream; where the services are is :mod:`sweeper.backend`'s.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TextIO

from sweeper import heap
from sweeper.aws import names, template
from sweeper.aws.logs import JobLogs, LogTail
from sweeper.aws.retry import RetryPolicy
from sweeper.aws.training import JobOptions, TrainingJobs, build_request
from sweeper.backend import Endpoints
from sweeper.capacity import EMULATOR_POOLS, SAGEMAKER_POOLS, settle_pools
from sweeper.clock import RealClock
from sweeper.config import BackendKind, PrunerKind, SweepConfig
from sweeper.console import ConsoleReporter
from sweeper.decisions import Policy
from sweeper.errors import StorageUnavailable, SweepError, leaves
from sweeper.metrics import MetricReader
from sweeper.outcome import SweepResult
from sweeper.polling import EMULATOR_TIMING, SAGEMAKER_TIMING
from sweeper.promotion import Rungs
from sweeper.pruning import EarlyStopping
from sweeper.recording import FailedLogKeeper
from sweeper.scheduler import Scheduler
from sweeper.study import Counts, SweepStudy, first_params
from sweeper.templates import JobSource, SpaceFileJobs
from sweeper.tracking import setup
from sweeper.tracking.series import JobSeries
from sweeper.tracking.setup import Recorder
from sweeper.types import OnExit, StopReason, SweepOutcome


def dry_run(config: SweepConfig) -> str:
    """What the sweep would upload and the first trial's CreateTrainingJob request.

    Sends nothing and starts nothing: where the default bucket needs the account (an
    STS call), the bucket name shows a placeholder.
    """
    where = template.region(config)
    emulated = config.backend.kind == BackendKind.EMULATOR
    account = template.EMULATOR_ACCOUNT if emulated else template.ACCOUNT_PLACEHOLDER
    plan = template.plan(config, where, template.default_output_path(config, where, account))
    job = names.job_name(config.name, 0, 1)
    options = JobOptions(names.trial_key(config.name, 0))
    request = build_request(plan.template, job, first_params(config), options)
    lines = [f"Dry run of {config.name} on {config.backend.kind} ({where}); nothing is sent."]
    if not emulated and not config.estimator.output_path:
        lines.append(f"{account}: your account, which the sweep asks STS for at launch.")
    lines.append("")
    lines.append("Uploads (skipped when already on S3):")
    for item in plan.uploads:
        shown = ", ".join(item.files[:8]) + (", ..." if len(item.files) > 8 else "")
        lines.append(f"  {item.kind}: {item.source} -> {item.uri}")
        lines.append(f"    {len(item.files)} files, {item.size:,} bytes: {shown}")
    lines += ["", f"CreateTrainingJob request of the first trial ({job}):"]
    lines.append(json.dumps(request, indent=2))
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Started:
    """What start-up made for the sweep's loop."""

    study: SweepStudy
    jobs: TrainingJobs
    recorders: list[Recorder]
    scheduler: Scheduler


class Session:
    """One run of one sweep on ``ends``: start-up, the loop, the wrap-up.

    Use each instance once, on one event loop. :meth:`interrupt` may be called from that
    loop at any moment (before the scheduler exists it is remembered); from another
    thread, hand it to the loop (``loop.call_soon_threadsafe``). What the user reads goes
    to ``say`` (start-up, tracking and pool summaries) and to ``out`` (the live view;
    default ``sys.stdout`` as it is when written). ``jobs`` makes the requests ready
    (default: the space file's estimator, uploaded by Sweeper).
    """

    def __init__(
        self,
        config: SweepConfig,
        ends: Endpoints,
        say: Callable[[str], None] | None = None,
        out: TextIO | None = None,
        jobs: JobSource | None = None,
    ) -> None:
        self.config = config
        self.ends = ends
        self.jobs = jobs or SpaceFileJobs()
        self.out = out
        self.say = say or self._print
        self._scheduler: Scheduler | None = None
        self._pending: OnExit | None = None
        self.on_exit = OnExit.LEAVE

    def _print(self, text: str) -> None:
        print(text, file=self.out or sys.stdout, flush=True)

    @property
    def interrupted(self) -> bool:
        return self._pending is not None

    def interrupt(self, on_exit: OnExit) -> None:
        """Stop dispatching; ``on_exit`` says what becomes of the jobs in flight."""
        self._pending = self.on_exit = on_exit
        if self._scheduler is not None:
            self._scheduler.interrupt(on_exit)

    async def run(self) -> SweepResult:
        """Run (or resume) the sweep to its end; a storage outage that outlasts the
        study's retries ends it too (``storage_down``). Other errors are raised as the
        :class:`~sweeper.errors.SweepError` they are."""
        clock = RealClock()
        async with AsyncExitStack() as stack:
            # What start-up makes lives as long as the sweep; the command's earlier steps
            # (the space file's checks, the imports) have collected what came before.
            with heap.long_lived(collect_first=False):
                started = await _start(self, stack, clock)
            self._scheduler = started.scheduler
            if self._pending is not None:
                started.scheduler.interrupt(self._pending)
            start = clock.now()
            outcome = await _loop(started)
            if isinstance(outcome, StorageUnavailable):
                return SweepResult(
                    self.config.name,
                    StopReason.INTERRUPTED,
                    Counts(0, 0, 0, 0),
                    None,
                    clock.now() - start,
                    on_exit=self.on_exit,
                    storage_down=outcome,
                )
            await _wrap_up(self.config, started, outcome, self.say)
            study = started.study
            counts, best, front = await study.counts(), await study.best(), await study.front()
            return SweepResult(
                self.config.name,
                outcome.stop_reason,
                counts,
                best,
                clock.now() - start,
                tuple(outcome.in_flight),
                self.on_exit,
                front=tuple(front),
            )


async def _start(session: Session, stack: AsyncExitStack, clock: RealClock) -> _Started:
    """Open the study, upload the code, make the clients, recorders and scheduler; what
    must be undone at exit goes on ``stack``."""
    config, ends, say = session.config, session.ends, session.say
    emulated = config.backend.kind == BackendKind.EMULATOR
    setup.require_mlflow(config)
    if (mlflow := setup.start_mlflow(config)) is not None:
        stack.callback(mlflow.close)  # after the runs are ended
    try:  # the study (a database, Optuna's migrations) opens while S3 answers
        async with asyncio.TaskGroup() as tg:
            opening = tg.create_task(
                asyncio.to_thread(
                    SweepStudy.open, config, lease_seconds=config.storage_lease_seconds
                )
            )
            ready = await session.jobs.prepare(config, ends, stack, say)
            client = await ends.client(stack, "sagemaker")
    except ExceptionGroup as group:  # a bad bucket, a database that does not answer
        raise leaves(group)[0] from None
    study = opening.result()
    stack.callback(study.close)
    reporter = ConsoleReporter(clock, config.goal, session.out, tags=_job_tags(config))
    study.note = reporter.note
    logs_client = await ends.client(stack, "logs")
    logs = JobLogs(logs_client, RetryPolicy(sleep=clock.sleep))
    recorders = await setup.recorders(
        config,
        study,
        JobSeries(config.estimator.metric_definitions, logs),
        ready.output_path,
        reporter.note,
        (client, await ends.client(stack, "sagemaker-metrics")),
        mlflow,
        ends.region,
        say,
    )
    jobs = TrainingJobs(client, RetryPolicy(sleep=clock.sleep))
    scheduler = Scheduler(
        Policy.of(config),
        study,
        jobs,
        build_request=ready.build,
        job_name=lambda number, attempt: names.job_name(config.name, number, attempt),
        clock=clock,
        reporter=reporter,
        timing=EMULATOR_TIMING if emulated else SAGEMAKER_TIMING,
        hooks=recorders,
        observers=[FailedLogKeeper(_log_keeper(config, logs), reporter), *recorders],
        pools=EMULATOR_POOLS if emulated else SAGEMAKER_POOLS,
        early=_early_stopping(config, logs_client, study, jobs, reporter, clock, emulated),
    )
    return _Started(study, jobs, recorders, scheduler)


async def _loop(started: _Started) -> SweepOutcome | StorageUnavailable:
    """The scheduler's run, with the recorders completing runs beside it; the storage's
    error instead when the study's storage stayed away."""
    try:
        async with asyncio.TaskGroup() as tg:  # runs are completed beside the sweep
            for recorder in started.recorders:
                tg.create_task(recorder.drain())
            try:
                return await started.scheduler.run()
            finally:
                for recorder in started.recorders:
                    recorder.close()
    except ExceptionGroup as group:  # the sweep's own error, as itself
        found = leaves(group)
        down = [e for e in found if isinstance(e, StorageUnavailable)]
        if down:
            return down[0]
        raise next((e for e in found if isinstance(e, SweepError)), found[0]) from None


async def _wrap_up(
    config: SweepConfig, started: _Started, outcome: SweepOutcome, say: Callable[[str], None]
) -> None:
    """Finish the runs and settle the pools, saying how each went."""
    for recorder in started.recorders:
        await recorder.finish(outcome.stop_reason == StopReason.INTERRUPTED)
        say(recorder.summary())
    if config.estimator.keep_alive_period_in_seconds:
        keep = config.estimator.keep_pools_after_sweep
        if (settled := await settle_pools(started.study, started.jobs, keep)) is not None:
            say(settled.summary())


def _early_stopping(
    config: SweepConfig,
    client: Any,
    study: SweepStudy,
    jobs: TrainingJobs,
    reporter: ConsoleReporter,
    clock: RealClock,
    emulated: bool,
) -> EarlyStopping | None:
    """The pruner's eyes, when the space file asks for one: a batched log tail over the
    sweep's jobs (reaching 5 s back on CloudWatch, which stores lines with some delay)."""
    if config.pruner.kind == PrunerKind.NONE or Rungs.of(config) is not None:
        return None
    tail = LogTail(
        client,
        RetryPolicy(attempts=3, initial=0.5, maximum=4.0, sleep=clock.sleep),
        names.job_prefix(config.name),
        overlap_ms=0 if emulated else 5000,
        since_ms=int(time.time() * 1000),  # a resumed sweep skips logs of jobs long done
    )
    metrics = MetricReader(config.estimator.metric_definitions)
    return EarlyStopping(tail, metrics, config.objective.metric, study, jobs, reporter)


def _log_keeper(config: SweepConfig, logs: JobLogs) -> Callable[[str], Any]:
    """Saves a failed job's log under ``.sweeps/<name>/logs/``."""
    log_dir = config.home / config.name / "logs"

    async def keep_log(job: str) -> None:
        text = await logs.text(job)
        await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread((log_dir / f"{job}.log").write_text, text, encoding="utf-8")

    return keep_log


def _job_tags(config: SweepConfig) -> str:
    est = config.estimator
    if est.use_spot_instances:
        return "spot"
    return "warm pool" if est.keep_alive_period_in_seconds else ""
