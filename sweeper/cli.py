"""Command line and composition root: the only place that wires the layers together.

``python sweep.py space.yaml`` runs (or resumes) a sweep;
``python sweep.py emulator [--port N]`` serves a standalone emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from sweeper import config as config_mod
from sweeper.aws import names
from sweeper.aws.clients import open_client
from sweeper.aws.retry import RetryPolicy
from sweeper.aws.training import JobTemplate, TrainingJobs, build_request
from sweeper.clock import RealClock
from sweeper.config import BackendKind, SweepConfig
from sweeper.emulator.jobs import RunnerSettings
from sweeper.emulator.server import EmbeddedEmulator, Emulator, EmulatorSettings, require_loopback
from sweeper.errors import ConfigError, SweepError
from sweeper.polling import EMULATOR_TIMING, SAGEMAKER_TIMING
from sweeper.report import ConsoleReporter, summary
from sweeper.scheduler import Scheduler
from sweeper.study import SweepStudy

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
        return _sweep_command(args)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished trials are saved; trials that were in flight stay RUNNING"
            " in the study (re-attaching them on a rerun is not implemented yet)",
            file=sys.stderr,
        )
        return 130


def _sweep_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sweep.py",
        description="Run (or resume) the hyperparameter sweep a space file describes.",
        epilog="Other commands: 'sweep.py emulator --help'.",
    )
    parser.add_argument("space", help="the space file (YAML)")
    args = parser.parse_args(argv)
    config = config_mod.load(args.space)
    with _endpoint(config) as endpoint:
        return asyncio.run(_sweep(config, endpoint))


@contextlib.contextmanager
def _endpoint(config: SweepConfig) -> Iterator[str | None]:
    """The SageMaker endpoint to use: an embedded emulator unless one is configured."""
    if config.backend.kind == BackendKind.SAGEMAKER or config.backend.endpoint_url:
        yield config.backend.endpoint_url
        return
    state = config.path.parent.resolve() / ".sweeps" / config.name / "emulator"
    settings = EmulatorSettings(
        RunnerSettings(
            root=state,
            region=config.backend.region,
            account=EMULATOR_ACCOUNT,
            cold_start_seconds=config.emulator.cold_start_seconds,
        ),
        throttle_rate=config.emulator.throttle_rate,
    )
    with EmbeddedEmulator(settings) as emulator:
        print(f"SageMaker emulator on {emulator.endpoint_url} (jobs under {state})", flush=True)
        yield emulator.endpoint_url


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


async def _sweep(config: SweepConfig, endpoint: str | None) -> int:
    template = job_template(config)
    clock = RealClock()
    emulated = config.backend.kind == BackendKind.EMULATOR
    async with AsyncExitStack() as stack:
        client = await open_client(
            stack,
            "sagemaker",
            region=config.backend.region,
            endpoint_url=endpoint,
            credentials=EMULATOR_CREDENTIALS if emulated else None,
        )
        study = SweepStudy.open(config)
        stack.callback(study.close)
        scheduler = Scheduler(
            config,
            study,
            TrainingJobs(client, RetryPolicy(sleep=clock.sleep)),
            build_request=lambda job, params: build_request(template, job, params),
            job_name=lambda number: names.job_name(config.name, number),
            clock=clock,
            reporter=ConsoleReporter(clock, config.objective.metric),
            timing=EMULATOR_TIMING if emulated else SAGEMAKER_TIMING,
        )
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
        return 0 if best is not None else 1


def _emulator_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sweep.py emulator", description="Serve a standalone SageMaker-compatible emulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    parser.add_argument("--state", type=Path, help="directory for jobs (default: a temp dir)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--cold-start-seconds", type=float, default=0.0)
    parser.add_argument("--throttle-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    try:
        require_loopback(args.host)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    state = args.state or Path(tempfile.mkdtemp(prefix="sweeper-emulator-"))
    emulator = Emulator(
        EmulatorSettings(
            RunnerSettings(
                root=state.resolve(), region=args.region, cold_start_seconds=args.cold_start_seconds
            ),
            host=args.host,
            port=args.port,
            throttle_rate=args.throttle_rate,
        )
    )

    def started(url: str) -> None:
        print(
            f"SageMaker emulator listening on {url} (state: {state}); Ctrl-C stops it", flush=True
        )

    async def serve() -> None:
        await emulator.serve(started, asyncio.Event())

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0
