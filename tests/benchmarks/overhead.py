"""Scheduler overhead: K trials of a script that sleeps d seconds, P at a time.

    python tests/benchmarks/overhead.py [--trials 40] [--parallel 4] [--seconds 1.0]
                                        [--pruner median] [--repeat N] [--mlflow]
                                        [--api] [--first-job]

Runs a real sweep (TPE, SQLite study, aiobotocore client, real processes) against an
emulator on loopback, through ``sweep.py``'s own entry point, in a process of its own
(``--repeat N``: N of them, and the figures of the median one), with the checkout's
modules byte-compiled first as a user's first run leaves them, and prints:

* the machine: its cores, its load before and after, the share of CPU time the
  hypervisor gave other guests meanwhile (steal), and how fast one core is that minute
  (a shared host's speed drifts by half within a day, load or not);
* efficiency = K*d / (P*wall): the share of slot time spent inside training scripts,
  for the whole command (wall from start to exit) and for the sweep loop alone (from
  the first CreateTrainingJob to the last job's end: start-up excluded);
* start-up (from the call to the first CreateTrainingJob) and, timed apart in a fresh
  process, how much of it is importing what the sweep needs;
* per-trial overhead in ms: slot time lost per trial, (P*wall - K*d) / K, and where
  it goes: inside the job beyond its d seconds (split by the job's secondary statuses:
  set-up and code, the process's start and exit, the archives uploaded) and between
  jobs (a slot idle from one job's end to the next one's create: the orchestrator's
  detection, sampling and dispatch);
* the CPU the orchestrator's process uses per trial, and its share of the wall (one
  core's worth is all it can use); the emulator runs in a process of its own, as the
  sweep's embedded default does;
* SageMaker API calls per trial, counted by the emulator by operation: the training-job
  calls (the target) and, apart, the Experiments and Logs calls that record each run;
* with ``--pruner median`` (or another), the FilterLogEvents calls per poll that read
  the running jobs' values for the pruner (target: one per 100 running jobs);
* with ``--first-job``, start-up as a user sees it instead: ``python sweep.py`` run as a
  process on a fresh directory, its own (embedded) emulator included, until its first
  trial is reported started (imports, the emulator's boot, the study, the upload);
* with ``--api``, the same sweep through ``python sweep.py``'s entry point and through
  ``await sweeper.Sweep.from_file(...).run_async()`` (a notebook's way), alternating
  ``--repeat`` times: the median whole-command efficiency of each and their difference
  (target: within 0.01);
* with ``--mlflow``, the same sweep again with every trial an MLflow run too (a SQLite
  store, ``tracking: {mlflow: {}}``), alternating off and on ``--repeat`` times: the
  median sweep-loop efficiency of each, their difference (target: within 0.02), and the
  MLflow runs recorded (a parent and K nested per sweep).

Issue targets: efficiency >= 0.90 and at most 4 API calls per trial.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import yaml

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT))

from sweeper.cli import main  # noqa: E402
from sweeper.emulator.child import ChildEmulator  # noqa: E402
from sweeper.emulator.settings import EmulatorSettings, RunnerSettings  # noqa: E402

SCRIPT = """\
import sys, time
seconds = float(sys.argv[sys.argv.index("--seconds") + 1])
time.sleep(seconds)
print("loss=" + sys.argv[sys.argv.index("-x") + 1])
"""


JOB_OPS = (
    "CreateTrainingJob",
    "DescribeTrainingJob",
    "ListTrainingJobs",
    "Search",
    "StopTrainingJob",
)


def run(
    trials: int,
    parallel: int,
    seconds: float,
    pruner: str = "none",
    mlflow: bool = False,
    api: bool = False,
) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        ChildEmulator(EmulatorSettings(RunnerSettings(root=Path(tmp) / "emulator"))) as emulator,
    ):
        root = Path(tmp)
        (root / "src").mkdir()
        (root / "src" / "sleep.py").write_text(SCRIPT)
        space = root / "space.yaml"
        space.write_text(
            yaml.safe_dump(_space(trials, parallel, seconds, pruner, mlflow, emulator.endpoint_url))
        )
        out = io.StringIO()
        start, start_epoch, cpu = time.perf_counter(), time.time(), _cpu()
        with contextlib.redirect_stdout(out):
            code = _through_api(space) if api else main([str(space)])
        wall, cpu = time.perf_counter() - start, _cpu() - cpu
        if code != 0 or f"{trials} complete" not in out.getvalue():
            raise SystemExit(f"the sweep did not complete:\n{out.getvalue()}")
        calls = emulator.calls
        runs = _mlflow_runs(root / ".sweeps" / "mlflow.db") if mlflow else 0
        jobs = _job_times(emulator)
    created = [j.created for j in jobs]
    ended = sorted(j.ended for j in jobs)
    loop = ended[-1] - created[0]
    # The k-th job to start reuses the slot of the (k-P)-th job to end.
    gaps = [c - e for c, e in zip(created[parallel:], ended, strict=False)]
    return {
        "wall": wall,
        "loop": loop,
        "startup": created[0] - start_epoch,
        "efficiency": trials * seconds / (parallel * wall),
        "loop_efficiency": trials * seconds / (parallel * loop),
        "overhead_ms": (parallel * wall - trials * seconds) / trials * 1000,
        "in_job_ms": sum(j.ended - j.created - seconds for j in jobs) / trials * 1000,
        "prepare_ms": statistics.mean(j.prepare for j in jobs) * 1000,
        "run_ms": statistics.mean(j.run - seconds for j in jobs) * 1000,
        "upload_ms": statistics.mean(j.upload for j in jobs) * 1000,
        "gap_ms": sum(gaps) / len(gaps) * 1000 if gaps else 0.0,  # none if K <= P
        "calls_per_trial": sum(calls[op] for op in JOB_OPS) / trials,
        # Each finished trial's log is read once (one FilterLogEvents) for its run's
        # metric series; the pruner's reads of running jobs are the rest.
        "tracking_per_trial": sum(n for op, n in calls.items() if op not in JOB_OPS) / trials,
        "tail_per_poll": max(0, calls["FilterLogEvents"] - trials) / max(1, calls["Search"]),
        "create_per_trial": calls["CreateTrainingJob"] / trials,
        "search_per_trial": calls["Search"] / trials,
        "mlflow_runs": runs,
        "cpu_ms": cpu / trials * 1000,
        "cpu_share": cpu / wall,
    }


def _through_api(space: Path) -> int:
    """The sweep as a notebook runs it: ``await sweeper.Sweep.from_file(...).run_async()``
    on a running event loop; 0 if it ended with a best trial."""
    import asyncio

    import sweeper

    async def cell() -> sweeper.SweepResult:
        return await sweeper.Sweep.from_file(space).run_async()

    return 0 if asyncio.run(cell()).best is not None else 1


def _space(
    trials: int,
    parallel: int,
    seconds: float,
    pruner: str,
    mlflow: bool,
    endpoint_url: str | None = None,
) -> dict[str, Any]:
    """The benchmark's space file: on the emulator at ``endpoint_url``, or (None) on the
    sweep's own."""
    backend = {"kind": "emulator"} | ({"endpoint_url": endpoint_url} if endpoint_url else {})
    return {
        "name": "overhead",
        "objective": {"metric": "loss", "direction": "minimize"},
        "budget": {"max_trials": trials, "max_parallel": parallel, "max_failures": 1},
        "sampler": {"kind": "tpe", "seed": 0},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "estimator": {
            "entry_point": "sleep.py",
            "source_dir": "src",
            "hyperparameters": {"seconds": seconds},
            "metric_definitions": [{"name": "loss", "regex": "loss=([0-9.]+)"}],
        },
        "backend": backend,
        "pruner": {"kind": pruner},
        "tracking": {"mlflow": {}} if mlflow else {},
    }


@dataclass(frozen=True)
class JobTimes:
    """One job's times as the emulator recorded them (epoch seconds), and the phases of
    its time beyond the script's own from its secondary statuses (seconds)."""

    created: float
    ended: float
    prepare: float  # created -> Training: set-up, the code fetched and laid out
    run: float  # Training -> Uploading: the process, start to exit (d of it the script's)
    upload: float  # Uploading -> end: model and output archives packed and stored


def _job_times(emulator: ChildEmulator) -> list[JobTimes]:
    """Each job's times, by creation."""
    client = botocore.session.get_session().create_client(
        "sagemaker",
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    names = [
        s["TrainingJobName"]
        for page in client.get_paginator("list_training_jobs").paginate()
        for s in page["TrainingJobSummaries"]
    ]
    times = [_times(client.describe_training_job(TrainingJobName=n)) for n in names]
    return sorted(times, key=lambda j: j.created)


def _times(described: dict[str, Any]) -> JobTimes:
    starts = {
        t["Status"]: t["StartTime"].timestamp() for t in described["SecondaryStatusTransitions"]
    }
    created = described["CreationTime"].timestamp()
    ended = described["TrainingEndTime"].timestamp()
    return JobTimes(
        created,
        ended,
        prepare=starts["Training"] - created,
        run=starts["Uploading"] - starts["Training"],
        upload=ended - starts["Uploading"],
    )


def import_seconds() -> float:
    """Seconds :func:`sweeper.api.sweep.preload` takes (Optuna, SQLAlchemy, aiobotocore and
    the sweep's own modules) in a fresh process that has imported what this one had before
    its sweep started: the share of start-up that is importing."""
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]);"
        " import botocore.session, yaml, sweeper.cli, sweeper.api, sweeper.emulator.child;"
        " t = time.perf_counter(); sweeper.api.sweep.preload();"
        " print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


def _cpu() -> float:
    """CPU seconds this process (the sweep; the emulator has its own) has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _mlflow_runs(store: Path) -> int:
    """How many MLflow runs the sweep left in ``store`` (every experiment)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    return len(client.search_runs(experiments, max_results=1000))


def first_job(repeat: int) -> list[float]:
    """Seconds from ``python sweep.py space.yaml`` (a fresh directory, the embedded
    emulator) to its first "started" line, ``repeat`` times."""
    seconds = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "src").mkdir()
            (root / "src" / "sleep.py").write_text(SCRIPT)
            (root / "space.yaml").write_text(yaml.safe_dump(_space(2, 2, 0.1, "none", False)))
            start = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, str(ROOT / "sweep.py"), "space.yaml"],
                cwd=root,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None
            started = next(
                (time.perf_counter() for line in proc.stdout if " started " in line), None
            )
            proc.communicate()
            if proc.returncode != 0 or started is None:
                raise SystemExit(f"the sweep failed (exit {proc.returncode})")
            seconds.append(started - start)
    return seconds


def compare_mlflow(a: argparse.Namespace, repeat: int) -> None:
    """The sweep with MLflow off and on, alternating ``a.repeat`` times, after a small
    sweep that neither side counts (so that neither pays the one-time imports); medians."""
    run(2 * a.parallel, a.parallel, a.seconds, a.pruner, mlflow=True)  # warm-up: imports
    off, on = [], []
    for _ in range(repeat):
        off.append(run(a.trials, a.parallel, a.seconds, a.pruner))
        on.append(run(a.trials, a.parallel, a.seconds, a.pruner, mlflow=True))

    def median(rs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rs)

    def each(rs: list[dict[str, float]]) -> str:
        return ", ".join(f"{r['loop_efficiency']:.3f}" for r in rs)

    loop_off, loop_on = median(off, "loop_efficiency"), median(on, "loop_efficiency")
    print(
        f"MLflow off/on, {repeat} sweep(s) each, alternating after a warm-up; medians:\n"
        f"loop efficiency       {loop_off:.3f} off, {loop_on:.3f} on: difference "
        f"{loop_on - loop_off:+.3f} (target within 0.02; per sweep off "
        f"{each(off)}, on {each(on)})\n"
        f"whole command         {median(off, 'efficiency'):.3f} off, "
        f"{median(on, 'efficiency'):.3f} on (start-up {median(off, 'startup'):.2f} s off, "
        f"{median(on, 'startup'):.2f} s on)\n"
        f"MLflow runs recorded  {', '.join(str(int(r['mlflow_runs'])) for r in on)}"
        f" (expected {a.trials + 1} each: the sweep's parent and one per trial)"
    )


def compare_api(a: argparse.Namespace, repeat: int) -> None:
    """The sweep through ``python sweep.py`` and through ``await Sweep.run_async()``,
    alternating ``repeat`` times, each in a new process; medians."""
    cli, api = [], []
    for _ in range(repeat):
        cli.append(_fresh_run(a))
        api.append(_fresh_run(a, api=True))

    def median(rs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rs)

    def each(rs: list[dict[str, float]]) -> str:
        return ", ".join(f"{r['efficiency']:.3f}" for r in rs)

    whole_cli, whole_api = median(cli, "efficiency"), median(api, "efficiency")
    print(
        f"CLI and API, {repeat} sweep(s) each, alternating, each in a new process; medians:\n"
        f"whole command         {whole_cli:.3f} CLI, {whole_api:.3f} API: difference "
        f"{whole_api - whole_cli:+.3f} (target within 0.01; per sweep CLI {each(cli)},"
        f" API {each(api)})\n"
        f"loop efficiency       {median(cli, 'loop_efficiency'):.3f} CLI, "
        f"{median(api, 'loop_efficiency'):.3f} API (start-up {median(cli, 'startup'):.2f} s"
        f" CLI, {median(api, 'startup'):.2f} s API)"
    )


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--pruner", default="none", help="e.g. median: read values each poll")
    parser.add_argument("--mlflow", action="store_true", help="compare MLflow runs off and on")
    parser.add_argument(
        "--repeat",
        type=int,
        help="sweeps, each in a new process, and the median's figures (default 1); with"
        " --mlflow, sweeps each way; with --first-job, commands (default 3 for both)",
    )
    parser.add_argument(
        "--api", action="store_true", help="compare python sweep.py with await run_async()"
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--first-job", action="store_true", help="time python sweep.py to its first job"
    )
    a = parser.parse_args()
    if not a.one:
        byte_compile()
    if a.one:  # one sweep of a --repeat, in a process of its own: its figures as JSON
        print(json.dumps(run(a.trials, a.parallel, a.seconds, a.pruner, api=a.api)))
        return
    before = Machine.now()
    if a.first_job:
        times = first_job(a.repeat or 3)
        print(
            f"first job started    {statistics.median(times):.2f} s median after"
            f" `python sweep.py space.yaml` ({', '.join(f'{t:.2f}' for t in times)}; imports,"
            " the embedded emulator's boot, the study, the upload)\n"
            f"{before.line()}"
        )
        return
    if a.mlflow:
        compare_mlflow(a, a.repeat or 3)
        print(before.line())
        return
    if a.api:
        compare_api(a, a.repeat or 3)
        print(before.line())
        return
    imports = import_seconds()
    runs = [_fresh_run(a) for _ in range(a.repeat or 1)]
    r = sorted(runs, key=lambda x: x["efficiency"])[len(runs) // 2]  # the median sweep
    print("\n".join(_lines(a, r, imports, before, runs)))


@dataclass(frozen=True)
class Machine:
    """The machine as the figures depend on it, taken before the sweeps: its load, and
    how fast one of its cores is that minute (on a shared host this varies by half
    within a day, whatever the load: compare figures taken at like speeds)."""

    load: float
    core_ms: float  # best of 3: 10**7 integer additions in one Python loop
    ticks: tuple[int, int] | None  # CPU time stolen and in all, since boot (Linux)

    @classmethod
    def now(cls) -> Machine:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            sum(range(10**7))
            times.append(time.perf_counter() - start)
        return cls(os.getloadavg()[0], min(times) * 1000, _cpu_ticks())

    def line(self, after: str = "") -> str:
        """The machine then, and since: the load, the CPU time the hypervisor gave other
        guests (a quiet machine has none), one core's speed."""
        stolen, ticks = "", _cpu_ticks()
        if self.ticks is not None and ticks is not None and ticks[1] > self.ticks[1]:
            share = (ticks[0] - self.ticks[0]) / (ticks[1] - self.ticks[1])
            stolen = f", {share:.1%} of CPU time stolen by the host meanwhile"
        return (
            f"machine: {os.cpu_count()} cores, 1-min load {self.load:.2f} before, "
            f"{os.getloadavg()[0]:.2f} after{after}{stolen}; one core: {self.core_ms:.0f} ms"
            " for sum(range(10**7)) (about 120 on this project's fastest hosts)"
        )


def _cpu_ticks() -> tuple[int, int] | None:
    """All cores' CPU time stolen by the hypervisor and in all (steal and the sum of
    ``/proc/stat``'s first eight columns, in ticks), or None where there is no such file."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(f) for f in first[1:9]]
    return ticks[7], sum(ticks)


def byte_compile() -> None:
    """Byte-compile the checkout's ``sweeper`` package, as a user's first ``python
    sweep.py`` leaves it: the figures are those of a user's every later run, also where
    ``PYTHONDONTWRITEBYTECODE`` is set (a fresh clone would otherwise compile every module
    again in every sweep, ~0.1 s of start-up) or the first sweep would pay it alone."""
    if not compileall.compile_dir(ROOT / "sweeper", quiet=2):
        raise SystemExit("the sweeper package does not compile")


def _fresh_run(a: argparse.Namespace, api: bool = False) -> dict[str, float]:
    """One sweep in a new process, so that each pays the imports a user's command pays."""
    argv = [sys.executable, __file__, "--one", f"--trials={a.trials}", *(["--api"] * api)]
    argv += [f"--parallel={a.parallel}", f"--seconds={a.seconds}", f"--pruner={a.pruner}"]
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the benchmark's sweep failed:\n{out.stdout}{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def _lines(
    a: argparse.Namespace,
    r: dict[str, float],
    imports: float,
    before: Machine,
    runs: list[dict[str, float]],
) -> list[str]:
    """The figures of sweep ``r`` (the median of ``runs``, each listed when more than one)."""
    ceiling = a.trials * a.seconds / (a.trials * a.seconds + a.parallel * r["startup"])
    lines = [
        f"K={a.trials} trials, P={a.parallel}, d={a.seconds:g} s; "
        + before.line(" (the sweep's own)"),
    ]
    if len(runs) > 1:
        each = ", ".join(f"{x['efficiency']:.3f}" for x in runs)
        lines.append(
            f"{len(runs)} sweeps, each in a new process; whole-command efficiency of each:"
            f" {each}. The median sweep's figures:"
        )
    lines += [
        f"wall                  {r['wall']:.2f} s  (one-time start-up {r['startup']:.2f} s, "
        f"sweep loop {r['loop']:.2f} s)",
        f"start-up              {imports:.2f} s of it importing (Optuna, SQLAlchemy, aiobotocore;"
        " timed apart in a fresh process)",
        f"efficiency            {r['loop_efficiency']:.3f}   sweep loop (target >= 0.90)",
        f"                      {r['efficiency']:.3f}   whole command, start-up included",
        f"                      {ceiling:.3f}   the whole command's ceiling with this start-up"
        " and no other overhead: K*d / (K*d + P*start-up)",
        f"overhead per trial    {r['overhead_ms']:.0f} ms  (inside the job beyond d "
        f"{r['in_job_ms']:.0f} ms; slot idle between jobs {r['gap_ms']:.0f} ms)",
        f"inside the job        {r['prepare_ms']:.0f} ms set-up and code, {r['run_ms']:.0f} ms"
        f" the process beyond d (start, exit), {r['upload_ms']:.0f} ms model and output"
        " archives (the emulator's secondary statuses)",
        f"API calls per trial   {r['calls_per_trial']:.2f}   training jobs (target <= 4; create "
        f"{r['create_per_trial']:.2f}, search {r['search_per_trial']:.2f})",
        f"                      {r['tracking_per_trial']:.2f}   Experiments runs and their metric"
        " series (logs), off the dispatch path but for a new trial's run",
        f"sweep's CPU           {r['cpu_ms']:.0f} ms per trial, {r['cpu_share']:.0%} of the wall"
        " (the orchestrator's process; the emulator and the jobs run in their own)",
        f"Logs calls per poll   {r['tail_per_poll']:.2f}   pruner {a.pruner}: running jobs' new"
        " values (target <= 1 per 100 running jobs)",
    ]
    return lines


if __name__ == "__main__":
    main_()
