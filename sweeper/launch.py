"""Starting a sweep: which clients, what to upload, then the scheduler (where the
services are: :mod:`sweeper.backend`).

The composition root's working half (``cli`` parses commands and calls in here).
"""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

from sweeper import heap
from sweeper.aws import code, names, template
from sweeper.aws.logs import JobLogs, LogTail
from sweeper.aws.retry import RetryPolicy
from sweeper.aws.s3 import S3
from sweeper.aws.training import JobOptions, TrainingJobs, build_request
from sweeper.backend import Endpoints
from sweeper.capacity import EMULATOR_POOLS, SAGEMAKER_POOLS, settle_pools
from sweeper.clock import RealClock
from sweeper.config import BackendKind, PrunerKind, SweepConfig
from sweeper.console import ConsoleReporter, interrupted_text, storage_down_text, summary
from sweeper.decisions import Policy
from sweeper.errors import StorageUnavailable, SweepError, leaves
from sweeper.metrics import MetricReader
from sweeper.polling import EMULATOR_TIMING, SAGEMAKER_TIMING
from sweeper.pruning import EarlyStopping
from sweeper.recording import FailedLogKeeper
from sweeper.scheduler import Scheduler
from sweeper.study import SweepStudy, first_params
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


async def upload(config: SweepConfig, ends: Endpoints, stack: AsyncExitStack) -> template.Plan:
    """Resolve the output path (default bucket), then upload code and local inputs that
    are not on S3 yet."""
    retry = RetryPolicy()
    s3 = S3(await ends.client(stack, "s3"), retry)
    sts = await ends.client(stack, "sts") if not config.estimator.output_path else None
    output_path = await template.resolve_output_path(config, ends.region, s3, sts, retry)
    plan = template.plan(config, ends.region, output_path)
    for item in plan.uploads:
        await code.upload(item, s3, say=lambda text: print(text, flush=True))
    return plan


@dataclass(frozen=True, slots=True)
class _Started:
    """What start-up made for the sweep's loop."""

    study: SweepStudy
    jobs: TrainingJobs
    recorders: list[Recorder]
    scheduler: Scheduler


async def _start(
    config: SweepConfig, ends: Endpoints, stack: AsyncExitStack, clock: RealClock
) -> _Started:
    """Open the study, upload the code, make the clients, recorders and scheduler; what
    must be undone at exit goes on ``stack``."""
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
            plan = await upload(config, ends, stack)
            client = await ends.client(stack, "sagemaker")
    except ExceptionGroup as group:  # a bad bucket, a database that does not answer
        raise leaves(group)[0] from None
    study = opening.result()
    stack.callback(study.close)
    reporter = ConsoleReporter(clock, config.objective.metric, tags=_job_tags(config))
    study.note = reporter.note
    logs_client = await ends.client(stack, "logs")
    logs = JobLogs(logs_client, RetryPolicy(sleep=clock.sleep))
    recorders = await setup.recorders(
        config,
        study,
        JobSeries(config.estimator.metric_definitions, logs),
        plan.template.output_path,
        reporter.note,
        (client, await ends.client(stack, "sagemaker-metrics")),
        mlflow,
        ends.region,
    )
    jobs = TrainingJobs(client, RetryPolicy(sleep=clock.sleep))
    scheduler = Scheduler(
        Policy.of(config),
        study,
        jobs,
        build_request=partial(build_request, plan.template),
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


async def run(config: SweepConfig, ends: Endpoints, on_exit: OnExit) -> int:
    """Run (or resume) the sweep to its end; return the exit code."""
    clock = RealClock()
    async with AsyncExitStack() as stack:
        # What start-up makes lives as long as the sweep; the command's earlier steps
        # (the space file's checks, the imports) have collected what came before.
        with heap.long_lived(collect_first=False):
            started = await _start(config, ends, stack, clock)
        _handle_signals(started.scheduler, on_exit)
        start = clock.now()
        outcome = await _loop(started, ends)
        if isinstance(outcome, int):
            return outcome
        return await _wrap_up(config, started, outcome, lambda: clock.now() - start, ends, on_exit)


async def _loop(started: _Started, ends: Endpoints) -> SweepOutcome | int:
    """The scheduler's run, with the recorders completing runs beside it; an exit code
    instead when the study's storage stayed away."""
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
            print(storage_down_text(str(down[0]), ends.embedded, resume_command()))
            return down[0].exit_code
        raise next((e for e in found if isinstance(e, SweepError)), found[0]) from None


async def _wrap_up(
    config: SweepConfig,
    started: _Started,
    outcome: SweepOutcome,
    elapsed: Callable[[], float],
    ends: Endpoints,
    on_exit: OnExit,
) -> int:
    """Finish the runs, settle the pools, print the summary; the exit code."""
    for recorder in started.recorders:
        await recorder.finish(outcome.stop_reason == StopReason.INTERRUPTED)
        print(recorder.summary())
    study = started.study
    if config.estimator.keep_alive_period_in_seconds:
        keep = config.estimator.keep_pools_after_sweep
        if (settled := await settle_pools(study, started.jobs, keep)) is not None:
            print(settled.summary())
    counts, best = await study.counts(), await study.best()
    objective = config.objective
    print(
        summary(
            config.name,
            objective.metric,
            objective.direction,
            counts,
            best,
            elapsed(),
            outcome.stop_reason,
            config.storage_url,
        )
    )
    if outcome.stop_reason == StopReason.INTERRUPTED:
        print(interrupted_text(len(outcome.in_flight), on_exit, ends.embedded, resume_command()))
        return 130
    if outcome.stop_reason == StopReason.CAPACITY:
        return 1  # said above: which quota, and that a rerun goes on
    return 0 if best is not None else 1


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
    if config.pruner.kind == PrunerKind.NONE:
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
    log_dir = config.path.parent.resolve() / ".sweeps" / config.name / "logs"

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


def _handle_signals(scheduler: Scheduler, on_exit: OnExit) -> None:
    """First SIGINT/SIGTERM: stop dispatching (``on_exit`` decides the rest); second: exit."""
    loop, main_task = asyncio.get_running_loop(), asyncio.current_task()

    def on_signal(name: str) -> None:
        if scheduler.interrupted:
            print(f"\n{name} again: exiting at once", file=sys.stderr, flush=True)
            if main_task is not None:
                main_task.cancel()
            return
        what = {
            OnExit.LEAVE: "leaving running jobs alone",
            OnExit.STOP: "stopping running jobs",
            OnExit.WAIT: "waiting for running jobs to finish",
        }[on_exit]
        print(
            f"\n{name}: starting no new trials, {what} (again to exit at once)",
            file=sys.stderr,
            flush=True,
        )
        scheduler.interrupt(on_exit)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)


def resume_command() -> str:
    """The exact command line that started this process, to run again to resume."""
    return shlex.join(list(sys.orig_argv))
