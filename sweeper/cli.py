"""Command line and composition root: the only place that wires the layers together.

``python sweep.py space.yaml`` runs (or resumes) a sweep;
``python sweep.py emulator [--port N]`` serves a standalone emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import shlex
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from sweeper import config as config_mod
from sweeper import report
from sweeper.aws import names
from sweeper.aws.clients import open_client
from sweeper.aws.logs import JobLogs
from sweeper.aws.retry import RetryPolicy
from sweeper.aws.training import JobTemplate, TrainingJobs, build_request
from sweeper.clock import RealClock
from sweeper.config import BackendKind, EmulatorOptions, SweepConfig
from sweeper.console import ConsoleReporter, interrupted_text, status_text, summary
from sweeper.emulator.runner import RunnerSettings
from sweeper.emulator.server import EmbeddedEmulator, Emulator, EmulatorSettings, require_loopback
from sweeper.emulator.spot import SpotSettings
from sweeper.errors import ConfigError, SweepError
from sweeper.polling import EMULATOR_TIMING, SAGEMAKER_TIMING
from sweeper.scheduler import Scheduler
from sweeper.study import SweepStudy
from sweeper.types import JobState, OnExit, StopReason

EMULATOR_ACCOUNT = "123456789012"
EMULATOR_CREDENTIALS = ("test", "test")
EMULATOR_ROLE = f"arn:aws:iam::{EMULATOR_ACCOUNT}:role/SweeperEmulatorRole"
EMULATOR_IMAGE = "sweeper-emulator/local-python:latest"


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; return the process exit code (2 for bad input, never a traceback)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] == "emulator":
            return _emulator_command(args[1:])
        if args and args[0] == "status":
            return _status_command(args[1:])
        if args and args[0] == "report":
            return _report_command(args[1:])
        if args and args[0] == "note":
            return _note_command(args[1:])
        return _sweep_command(args)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # before the sweep's own signal handling is in place
        print("\ninterrupted before the sweep started; nothing was launched", file=sys.stderr)
        return 130


def _sweep_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sweep.py",
        description="Run (or resume) the hyperparameter sweep a space file describes.",
        epilog="Other commands: 'sweep.py status SPACE', 'sweep.py report SPACE',"
        " 'sweep.py emulator --help'.",
    )
    parser.add_argument("space", help="the space file (YAML)")
    parser.add_argument(
        "--on-exit",
        choices=[m.value for m in OnExit],
        default=OnExit.LEAVE.value,
        help="on Ctrl-C or SIGTERM: leave running jobs alone (default; a rerun re-attaches"
        " them), stop them (a rerun runs them again), or wait for them. A second Ctrl-C"
        " exits at once.",
    )
    args = parser.parse_args(argv)
    config = config_mod.load(args.space)
    with _endpoint(config) as endpoint:
        try:
            return asyncio.run(_sweep(config, endpoint, OnExit(args.on_exit)))
        except asyncio.CancelledError:
            print(
                "exited at once: results already recorded are safe; running the same command"
                " again re-attaches or reruns the rest",
                file=sys.stderr,
            )
            return 130


@contextlib.contextmanager
def _endpoint(config: SweepConfig) -> Iterator[str | None]:
    """The SageMaker endpoint to use: an embedded emulator unless one is configured."""
    if config.backend.kind == BackendKind.SAGEMAKER or config.backend.endpoint_url:
        yield config.backend.endpoint_url
        return
    state = config.path.parent.resolve() / ".sweeps" / config.name / "emulator"
    settings = emulator_settings(config.emulator, state, config.backend.region)
    with EmbeddedEmulator(settings) as emulator:
        print(f"SageMaker emulator on {emulator.endpoint_url} (jobs under {state})", flush=True)
        yield emulator.endpoint_url


def emulator_settings(
    options: EmulatorOptions, state: Path, region: str, **server: Any
) -> EmulatorSettings:
    """The emulator's settings from the space file's ``emulator:`` section (or flags)."""
    runner = RunnerSettings(
        root=state,
        region=region,
        account=EMULATOR_ACCOUNT,
        cold_start_seconds=options.cold_start_seconds,
        warm_start_seconds=options.warm_start_seconds,
        instance_quota=options.instance_quota,
        warm_pool_quota=options.warm_pool_quota,
        spot=SpotSettings(
            interruption_rate=options.spot_interruption_rate,
            interruption_after_seconds=options.spot_interruption_after_seconds,
            discount=options.spot_discount,
        ),
    )
    return EmulatorSettings(
        runner,
        throttle_rate=options.throttle_rate,
        internal_failure_rate=options.internal_failure_rate,
        **server,
    )


def job_template(config: SweepConfig) -> JobTemplate:
    """What every job shares; refuses what a real account would refuse, with a hint."""
    est, region = config.estimator, config.backend.region
    if config.backend.kind == BackendKind.SAGEMAKER:
        if not est.role:
            raise ConfigError(
                "estimator.role: required for backend.kind sagemaker; list candidate roles with"
                " `aws iam list-roles --query \"Roles[?contains(RoleName,'SageMaker')].Arn\"`"
            )
        raise ConfigError(
            "backend.kind sagemaker: uploading source_dir to S3 (script mode) is not"
            " implemented yet; use backend.kind emulator for now"
        )
    return JobTemplate(
        estimator=est,
        role=est.role or EMULATOR_ROLE,
        image=est.image_uri or EMULATOR_IMAGE,
        output_path=est.output_path or f"s3://sagemaker-{region}-{EMULATOR_ACCOUNT}/{config.name}",
        code_uri=str(est.source_dir),
        region=region,
    )


async def _sweep(config: SweepConfig, endpoint: str | None, on_exit: OnExit) -> int:
    template = job_template(config)
    clock = RealClock()
    emulated = config.backend.kind == BackendKind.EMULATOR
    async with AsyncExitStack() as stack:
        client = await _client(stack, config, endpoint)
        study = SweepStudy.open(config)
        stack.callback(study.close)
        log_dir = config.path.parent.resolve() / ".sweeps" / config.name / "logs"
        logs: list[JobLogs] = []  # the Logs client opens with the first failed job

        async def keep_log(job: str) -> None:
            if not logs:
                client = await _client(stack, config, endpoint, "logs")
                logs.append(JobLogs(client, RetryPolicy(sleep=clock.sleep)))
            log_dir.mkdir(parents=True, exist_ok=True)
            (log_dir / f"{job}.log").write_text(await logs[0].text(job), encoding="utf-8")

        scheduler = Scheduler(
            config,
            study,
            TrainingJobs(client, RetryPolicy(sleep=clock.sleep)),
            build_request=lambda job, params: build_request(template, job, params),
            job_name=lambda number, attempt: names.job_name(config.name, number, attempt),
            clock=clock,
            reporter=ConsoleReporter(clock, config.objective.metric, tags=_job_tags(config)),
            timing=EMULATOR_TIMING if emulated else SAGEMAKER_TIMING,
            on_failed_job=keep_log,
        )
        _handle_signals(scheduler, on_exit)
        start = clock.now()
        outcome = await scheduler.run()
        counts, best = await study.counts(), await study.best()
        print(
            summary(
                config.name,
                config.objective.metric,
                config.objective.direction,
                counts,
                best,
                clock.now() - start,
                outcome.stop_reason,
                config.storage_url,
            )
        )
        if outcome.stop_reason == StopReason.INTERRUPTED:
            embedded = emulated and not config.backend.endpoint_url
            print(interrupted_text(len(outcome.in_flight), on_exit, embedded, resume_command()))
            return 130
        return 0 if best is not None else 1


def _job_tags(config: SweepConfig) -> str:
    est = config.estimator
    return (
        "spot"
        if est.use_spot_instances
        else "warm pool"
        if est.keep_alive_period_in_seconds
        else ""
    )


async def _client(
    stack: AsyncExitStack, config: SweepConfig, endpoint: str | None, service: str = "sagemaker"
) -> Any:
    emulated = config.backend.kind == BackendKind.EMULATOR
    return await open_client(
        stack,
        service,
        region=config.backend.region,
        endpoint_url=endpoint,
        credentials=EMULATOR_CREDENTIALS if emulated else None,
    )


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
    argv = list(sys.orig_argv)
    return shlex.join(argv)


def _report_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sweep.py report",
        description="The best trials, parameter importances, failures and totals of a sweep.",
    )
    parser.add_argument("space", help="the space file (YAML)")
    parser.add_argument("--top", type=int, default=10, help="how many best trials to list")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON document (sweeper.report/1)")
    form.add_argument("--csv", action="store_true", help="one CSV row per trial")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write a page of plots")
    args = parser.parse_args(argv)
    config = config_mod.load(args.space)

    async def load() -> dict[str, Any]:
        study = SweepStudy.open(config, create=False)
        try:
            trials, importances = await study.trials(), await study.importances()
            doc = report.build(config, trials, importances, args.top, await study.notes())
            if args.html:
                from sweeper import report_html  # plotly loads only when asked for

                args.html.write_text(report_html.render(doc, study.study), encoding="utf-8")
        finally:
            study.close()
        return doc

    doc = asyncio.run(load())
    if args.html:
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    elif args.csv:
        sys.stdout.write(report.csv_text(doc))
    else:
        print(report.text(doc))
    return 0


def _note_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sweep.py note", description="Attach a comment to a trial; reports show it."
    )
    parser.add_argument("space", help="the space file (YAML)")
    parser.add_argument("trial", type=int, help="the trial number")
    parser.add_argument("text", help="the comment (replaces an earlier one)")
    args = parser.parse_args(argv)
    config = config_mod.load(args.space)

    async def note() -> None:
        study = SweepStudy.open(config, create=False)
        try:
            await study.add_note(args.trial, args.text)
        finally:
            study.close()

    asyncio.run(note())
    print(f"noted on trial {args.trial}")
    return 0


def _status_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sweep.py status", description="Show a sweep's trials and where each running job is."
    )
    parser.add_argument("space", help="the space file (YAML)")
    args = parser.parse_args(argv)
    config = config_mod.load(args.space)
    return asyncio.run(_status(config))


async def _status(config: SweepConfig) -> int:
    study = SweepStudy.open(config, create=False)
    try:
        running = await study.running(repair=False)
        counts, best = await study.counts(), await study.best()
        states: dict[str, JobState] | None = None
        named = [r.job_name for r in running if r.job_name]
        embedded = config.backend.kind == BackendKind.EMULATOR and not config.backend.endpoint_url
        if named and not embedded:
            async with AsyncExitStack() as stack:
                client = await _client(stack, config, config.backend.endpoint_url)
                states = await TrainingJobs(client, RetryPolicy()).poll(named)
        print(status_text(config, counts, best, running, states))
    finally:
        study.close()
    return 0


def _emulator_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sweep.py emulator", description="Serve a standalone SageMaker-compatible emulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    parser.add_argument("--state", type=Path, help="directory for jobs (default: a temp dir)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--access-key", default="test", help="the only access key let in")
    parser.add_argument(
        "--secret-key", default="test", help="its secret (requests are SigV4-checked)"
    )
    defaults = EmulatorOptions()
    for f in dataclasses.fields(EmulatorOptions):  # the space file's emulator: keys
        kind = int if f.name.endswith("_quota") else float
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", type=kind, default=getattr(defaults, f.name)
        )
    args = parser.parse_args(argv)
    try:
        require_loopback(args.host)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    options = EmulatorOptions(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(EmulatorOptions)}
    )
    state = (args.state or Path(tempfile.mkdtemp(prefix="sweeper-emulator-"))).resolve()
    settings = emulator_settings(
        options,
        state,
        args.region,
        host=args.host,
        port=args.port,
        credentials=((args.access_key, args.secret_key),),
    )
    emulator = Emulator(settings)

    def started(url: str) -> None:
        print(
            f"SageMaker emulator listening on {url} (state: {state}); Ctrl-C stops it", flush=True
        )

    async def serve() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):  # both stop it cleanly: jobs end Failed
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await emulator.serve(started, stop)

    asyncio.run(serve())
    return 0
