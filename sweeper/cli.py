"""The command line: arguments, printing and exit codes, over the Python API
(:class:`sweeper.Sweep`, which runs a sweep) and the queries (:mod:`sweeper.queries`)
for report, status and note. The AWS clients, the emulator and Optuna load only where
used (a sweep starts its emulator first).

``python sweep.py space.yaml`` runs (or resumes) a sweep;
``python sweep.py emulator [--port N]`` serves a standalone emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import math
import shlex
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sweeper import config as config_mod
from sweeper import heap
from sweeper.config import EmulatorOptions
from sweeper.config.tracking import arn_stand_in
from sweeper.errors import ConfigError, SweepError, local_fault
from sweeper.types import OnExit


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
        if args and args[0] == "set":
            return _set_command(args[1:])
        if args and args[0] == "clean":
            return _clean_command(args[1:])
        return _sweep_command(args)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a full disk, a read-only directory: said, never a traceback
        if (text := local_fault(exc)) is None:
            raise
        print(f"error: {text}", file=sys.stderr)
        return 74  # EX_IOERR
    except KeyboardInterrupt:  # before the sweep's own signal handling is in place
        print("\ninterrupted before the sweep started; nothing was launched", file=sys.stderr)
        return 130


def _sweep_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sweep.py",
        description="Run (or resume) the hyperparameter sweep a space file describes.",
        epilog=f"Other commands: {_OTHER_COMMANDS}.",
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
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be uploaded and the first trial's CreateTrainingJob request;"
        " send nothing",
    )
    args = parser.parse_args(argv)
    with heap.long_lived():  # the space file's checks read SageMaker's model: kept
        from sweeper.api import Sweep

        sweep = Sweep.from_file(args.space)
    if args.dry_run:
        print(sweep.dry_run())
        return 0
    from sweeper.interrupts import ExitedAtOnce

    try:
        result = sweep.run(OnExit(args.on_exit), resume=resume_command())
    except ExitedAtOnce:
        return 130
    from sweeper.console import exit_code

    return exit_code(result)


_OTHER_COMMANDS = (
    "'sweep.py status SPACE', 'sweep.py report SPACE', 'sweep.py note SPACE TRIAL TEXT',"
    " 'sweep.py set SPACE KEY=VALUE ...', 'sweep.py clean SPACE [--yes]', 'sweep.py emulator'"
    " (each with --help)"
)


def resume_command() -> str:
    """The exact command line that started this process, to run again to resume."""
    return shlex.join(list(sys.orig_argv))


def _report_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sweep.py report",
        description="The best trials, parameter importances, failures and totals of a sweep.",
    )
    parser.add_argument("space", help="the space file (YAML)")
    parser.add_argument("--top", type=int, default=10, help="how many best trials to list")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON document (sweeper.report/2)")
    form.add_argument("--csv", action="store_true", help="one CSV row per trial")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write a page of plots")
    parser.add_argument(
        "--download-best",
        type=Path,
        metavar="DIR",
        help="also fetch the best trial's model.tar.gz (S3) and its log (CloudWatch Logs)",
    )
    parser.add_argument(
        "--trial",
        type=int,
        metavar="N",
        help="with --download-best: trial N's instead (several objectives have no one best)",
    )
    parser.add_argument(
        "--reference",
        type=_floats,
        metavar="V1,V2,...",
        help="the hypervolume's reference point, one value per objective (default: the"
        " worst values observed)",
    )
    args = parser.parse_args(argv)
    if args.trial is not None and not args.download_best:
        parser.error("--trial: goes with --download-best DIR")
    config = config_mod.load(args.space)
    if args.reference is not None and len(args.reference) != len(config.goal.objectives):
        parser.error(
            f"--reference: give one value per objective ({len(config.goal.objectives)}),"
            f" got {len(args.reference)}"
        )
    from sweeper import backend, queries, report_text

    doc = asyncio.run(
        queries.report_document(config, args.top, args.html, reference=args.reference)
    )
    if args.html:
        print(f"wrote {args.html}", file=sys.stderr)
    if args.download_best:
        try:
            job = queries.best_job(doc, args.trial)
        except SweepError as exc:
            raise SweepError(f"--download-best: {exc}") from None
        with backend.endpoints(config, out=sys.stderr) as ends:
            files = asyncio.run(queries.download(ends, job, args.download_best))
        for path in files:
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    elif args.csv:
        sys.stdout.write(report_text.csv_text(doc))
    else:
        print(report_text.text(doc))
    return 0


def _floats(text: str) -> tuple[float, ...]:
    """``0.8,500``: finite numbers, comma-separated."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def _note_command(argv: list[str]) -> int:
    from sweeper import queries

    parser = argparse.ArgumentParser(
        prog="sweep.py note",
        description="Attach a comment to a trial: reports show it, its Experiments run"
        " gets it as parameter sweeper:note, and its MLflow run as its description.",
    )
    parser.add_argument("space", help="the space file (YAML)")
    parser.add_argument("trial", type=int, help="the trial number")
    parser.add_argument("text", help="the comment (replaces an earlier one)")
    args = parser.parse_args(argv)
    config = config_mod.load(args.space)
    for done, text in queries.note(config, args.trial, args.text):
        print(text, file=sys.stdout if done else sys.stderr)
    return 0


def _set_command(argv: list[str]) -> int:
    from sweeper import setting
    from sweeper.study.budget import KEYS

    parser = argparse.ArgumentParser(
        prog="sweep.py set",
        description="Change a sweep's budget, running or not: every orchestrator of the sweep"
        " takes it up at its next poll, and later runs keep it (the space file's budget"
        " stays the first value of new sweeps). KEY=default follows the space file again;"
        " KEY=none unsets an optional key.",
        epilog=f"Keys: {', '.join(KEYS)}.",
    )
    parser.add_argument("space", help="the space file (YAML)")
    parser.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    config = config_mod.load(args.space)
    changed = asyncio.run(setting.set_budget(config, setting.parse(args.assignments)))
    if not changed:
        print(f"sweep {config.name}: the budget is unchanged")
    for text in changed:
        print(f"sweep {config.name}: {text}")
    return 0


def _clean_command(argv: list[str]) -> int:
    from sweeper import cleaning

    parser = argparse.ArgumentParser(
        prog="sweep.py clean",
        description="List what this sweep created (a dry run), or with --yes remove it:"
        " its Experiments runs, run groups and experiments (another sweep's are kept), its"
        " MLflow runs, its S3 code, checkpoints and outputs, and its study, last. With no"
        " choice of what, all of them. A second run finds nothing; one cut short is"
        " finished by the next.",
    )
    parser.add_argument("space", help="the space file (YAML)")
    for what in ("experiments", "mlflow", "s3", "study"):
        parser.add_argument(f"--{what}", action="store_true", help=f"clean its {what}")
    parser.add_argument("--yes", action="store_true", help="remove; without it, only list")
    args = parser.parse_args(argv)
    config = config_mod.load(args.space)
    targets = cleaning.Targets(args.experiments, args.mlflow, args.s3, args.study)
    found = cleaning.clean(config, targets, args.yes, print)
    if not args.yes:
        print(f"{found} item(s) found; nothing removed (add --yes to remove them)")
    else:
        print(f"removed what sweep {config.name} created ({found} item(s))")
    return 0


def _status_command(argv: list[str]) -> int:
    from sweeper import queries

    parser = argparse.ArgumentParser(
        prog="sweep.py status", description="Show a sweep's trials and where each running job is."
    )
    parser.add_argument("space", help="the space file (YAML)")
    args = parser.parse_args(argv)
    config = config_mod.load(args.space)
    print(asyncio.run(queries.status_text(config)))
    return 0


def _emulator_command(argv: list[str]) -> int:
    from sweeper import backend
    from sweeper.aws import template
    from sweeper.emulator.host import StateInUse, require_loopback
    from sweeper.emulator.server import Emulator

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
    parser.add_argument(
        "--mlflow",
        action="append",
        default=[],
        metavar="ARN=TRACKING_URI",
        help="a SageMaker MLflow ARN and the local tracking URI standing for it: jobs whose"
        " MlflowConfig names the ARN get a run there and MlflowDetails (repeatable)",
    )
    defaults = EmulatorOptions()
    for f in dataclasses.fields(EmulatorOptions):  # the space file's emulator: keys
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=EmulatorOptions.kind(f.name),
            default=getattr(defaults, f.name),
        )
    args = parser.parse_args(argv)
    try:
        require_loopback(args.host)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    options = config_mod.emulator_options(
        {f.name: getattr(args, f.name) for f in dataclasses.fields(EmulatorOptions)}
    )
    if args.mlflow and importlib.util.find_spec("mlflow") is None:
        raise ConfigError("--mlflow: MLflow is not installed (pip install 'sweeper[mlflow]')")
    state = (args.state or Path(tempfile.mkdtemp(prefix="sweeper-emulator-"))).resolve()
    settings = backend.emulator_settings(
        options,
        state,
        args.region,
        host=args.host,
        port=args.port,
        credentials=((args.access_key, args.secret_key),),
        mlflow=tuple(arn_stand_in(text, Path.cwd()) for text in args.mlflow),
    )
    try:
        emulator = Emulator(settings)
    except StateInUse as exc:
        raise SweepError(str(exc)) from exc

    def started(url: str) -> None:
        print(
            f"SageMaker emulator listening on {url} (state: {state}); Ctrl-C stops it\n"
            f"  S3 and STS on {emulator.s3.endpoint_url}; region {args.region},"
            f" account {template.EMULATOR_ACCOUNT}",
            flush=True,
        )

    async def serve() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):  # both stop it cleanly: jobs end Failed
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await emulator.serve(started, stop)

    asyncio.run(serve())
    return 0
