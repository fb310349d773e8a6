"""Shared test helpers: small sweeps on disk, waiting for job states without bare sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import botocore.config
import optuna
import yaml
from aiobotocore.session import get_session
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sweeper.emulator.embedded import EmbeddedEmulator
from sweeper.emulator.settings import EmulatorSettings, RunnerSettings

# A training script whose objective is a known function of its hyperparameters, so a
# test can check every reported value against the parameters that produced it.
QUADRATIC = textwrap.dedent(
    """
    import argparse, os, sys, time
    p = argparse.ArgumentParser()
    p.add_argument("-x", "--x", type=float, required=True)  # SageMaker passes -x for 1-char keys
    p.add_argument("-y", "--y", type=int, default=0)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--fail_above", type=float, default=None)
    a = p.parse_args()
    time.sleep(a.sleep)
    if a.fail_above is not None and a.x > a.fail_above:
        print(f"x={a.x} is too large", file=sys.stderr)
        sys.exit(3)
    print(f"loss={(a.x - 0.3) ** 2 + a.y:.10f}")
    open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w").write(str(a.x))
    """
)


# Waits for the test's gate file before it finishes, so "still running" is an event the
# test controls, not a race against a sleep on a busy machine.
GATED = textwrap.dedent(
    """
    import argparse, os, time
    p = argparse.ArgumentParser()
    p.add_argument("-x", "--x", type=float, required=True)
    p.add_argument("--gate", required=True)
    a = p.parse_args()
    deadline = time.monotonic() + 120
    while not os.path.exists(a.gate) and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"loss={(a.x - 0.3) ** 2:.10f}")
    open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w").write(str(a.x))
    """
)


def objective(x: float, y: int = 0) -> float:
    """What QUADRATIC prints for these parameters (to its printed precision)."""
    return round((x - 0.3) ** 2 + y, 10)


def fake_request(job: str, params: dict[str, Any], options: Any) -> dict[str, Any]:
    """A stand-in request for scheduler tests: the job, its parameters and its options
    (a keep-alive when the job may have a warm pool)."""
    resources = {"KeepAlivePeriodInSeconds": 60} if options.warm_pool else {}
    return {
        "TrainingJobName": job,
        "HyperParameters": params,
        "ResourceConfig": resources,
        "Options": options,
    }


def space_doc(**overrides: Any) -> dict[str, Any]:
    """A valid space-file document for QUADRATIC; top-level keys may be overridden."""
    doc: dict[str, Any] = {
        "name": "quad",
        "objective": {"metric": "loss", "direction": "minimize"},
        "budget": {"max_trials": 4, "max_parallel": 2, "max_failures": 3},
        "sampler": {"kind": "tpe", "seed": 7},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "max_run": 120,
            "metric_definitions": [{"name": "loss", "regex": "loss=([0-9.eE+-]+)"}],
        },
    }
    doc.update(overrides)
    return doc


def write_sweep(root: Path, doc: dict[str, Any] | None = None, script: str = QUADRATIC) -> Path:
    """Write ``root/space.yaml`` and ``root/src/train.py``; return the space file's path."""
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "train.py").write_text(script)
    path = root / "space.yaml"
    path.write_text(yaml.safe_dump(doc if doc is not None else space_doc(), sort_keys=False))
    return path


def ended(job: dict[str, Any]) -> bool:
    return job["TrainingJobStatus"] not in ("InProgress", "Stopping")


def describe_until(sm: Any, name: str, until: Any = ended, timeout: float = 60.0) -> dict[str, Any]:
    """Describe ``name`` with a boto3 client until ``until(job)`` (default: the job has
    ended); fail after ``timeout`` s naming its secondary status."""
    deadline = time.monotonic() + timeout
    while not until(job := sm.describe_training_job(TrainingJobName=name)):
        assert time.monotonic() < deadline, job["SecondaryStatus"]
        time.sleep(0.05)
    return job  # type: ignore[no-any-return]


async def wait_for_job(client: Any, name: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """Describe ``name`` until it leaves InProgress/Stopping; fail after ``timeout`` s."""
    async with asyncio.timeout(timeout):
        while True:
            job: dict[str, Any] = await client.describe_training_job(TrainingJobName=name)
            if job["TrainingJobStatus"] not in ("InProgress", "Stopping"):
                return job
            await asyncio.sleep(0.02)


ROOT = Path(__file__).parents[1]
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def boto3_client(url: str, service: str = "sagemaker", **kwargs: Any) -> Any:
    """An unmodified boto3 client for the emulator at ``url``."""
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", **CREDENTIALS, **kwargs)


def s3_client(url: str) -> Any:
    """An unmodified boto3 S3 client for an emulator's S3 endpoint (path-style)."""
    config = botocore.config.Config(s3={"addressing_style": "path"})
    return boto3_client(url, "s3", config=config)


def signed_headers(
    method: str,
    url: str,
    service: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    when: dt.datetime | None = None,
    secret: str = "test",
) -> dict[str, str]:
    """The headers of a raw request to an emulator endpoint signed with key ``test``
    (SigV4, S3's variant for ``service`` "s3") at ``when`` (now by default)."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    kind = S3SigV4Auth if service == "s3" else SigV4Auth
    when = when or dt.datetime.now(dt.UTC)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        kind(Credentials("test", secret), service, "us-east-1").add_auth(request)
    return dict(request.headers.items())


def s3_tar_names(s3: Any, uri: str) -> list[str]:
    """The member names of the ``tar.gz`` object at ``uri``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return tar.getnames()


def aio_client(url: str, service: str = "sagemaker") -> Any:
    """An unmodified aiobotocore client for the emulator (an async context manager)."""
    return get_session().create_client(
        service, endpoint_url=url, region_name="us-east-1", **CREDENTIALS
    )


def emulator_info(url: str) -> dict[str, Any]:
    """The emulator's ``/_emulator/info``: its S3 endpoint, region and account."""
    with urllib.request.urlopen(f"{url}/_emulator/info", timeout=10) as response:
        info: dict[str, Any] = json.load(response)
    return info


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The process's next stdout line ("" at its end); TimeoutError if none comes within
    ``timeout`` s. Reads the pipe a byte at a time, so nothing is left in a buffer that
    ``select`` cannot see, and a later ``communicate()`` gets exactly the rest."""
    assert proc.stdout is not None
    fd, line = proc.stdout.fileno(), bytearray()
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError(f"no output within {timeout} s")
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return line.decode(errors="replace")


def read_until(proc: subprocess.Popen[str], text: str, timeout: float = 120) -> str:
    """Read ``proc``'s output up to the first line containing ``text``; return it all."""
    seen = ""
    while True:
        line = read_line(proc, timeout)
        assert line, f"ended before printing {text!r}:\n{seen}"
        seen += line
        if text in line:
            return seen


def start_emulator_process(state: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """``sweep.py emulator`` on a free port as a separate process, once it listens."""
    port = free_port()
    argv = [
        sys.executable,
        str(ROOT / "sweep.py"),
        "emulator",
        "--port",
        str(port),
        "--state",
        str(state),
        *extra,
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = read_line(proc, timeout=30)
    assert f"listening on http://127.0.0.1:{port}" in line, line
    return proc, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def standalone_emulator(state: Path, *extra: str, stop_timeout: float = 30) -> Iterator[str]:
    """A standalone emulator process for the block; yields its URL, stops it after
    (waiting up to ``stop_timeout`` s for it to save its state and exit)."""
    proc, url = start_emulator_process(state, *extra)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=stop_timeout)


@contextlib.contextmanager
def embedded_emulator(root: Path, **runner: Any) -> Iterator[EmbeddedEmulator]:
    """An in-process emulator whose jobs run with ``runner`` settings, and whose S3 has
    bucket ``bucket`` (where :func:`job_request` puts models)."""
    with EmbeddedEmulator(EmulatorSettings(RunnerSettings(root=root, **runner))) as emu:
        s3_client(emu.s3_endpoint_url).create_bucket(Bucket="bucket")
        yield emu


def run_sweep(
    *args: str, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python sweep.py ARGS`` in a subprocess, output captured; ``env`` adds variables."""
    return subprocess.run(
        [sys.executable, str(ROOT / "sweep.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def start_sweep(*args: str) -> subprocess.Popen[str]:
    """``python sweep.py ARGS`` as a running process, stdout and stderr on one text pipe
    (read it with :func:`read_line`, then ``communicate()`` for the rest)."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "sweep.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def list_jobs(url: str) -> list[str]:
    sm = boto3_client(url)
    names: list[str] = []
    for page in sm.get_paginator("list_training_jobs").paginate(MaxResults=100):
        names += [s["TrainingJobName"] for s in page["TrainingJobSummaries"]]
    return names


def sweep_trials(space: Path, name: str = "quad") -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{space.parent / '.sweeps' / f'{name}.db'}"
    trials: list[optuna.trial.FrozenTrial] = optuna.load_study(
        study_name=name, storage=storage
    ).trials
    return trials


def kill_and_resume(space: Path, kills: int, seed: int, most_lines: int = 10) -> int:
    """SIGKILL ``sweep.py space`` after a random number of its output lines (a random
    moment, chosen by events rather than sleeps), rerunning it until ``kills`` SIGKILLs
    were delivered or a run finished the sweep by itself; return the kills delivered."""
    rng, done = random.Random(seed), 0
    while done < kills:
        proc = start_sweep(str(space))
        try:
            for _ in range(rng.randint(1, most_lines)):  # a random event: the k-th line
                if not read_line(proc, timeout=60):
                    break  # end of output: the run is over
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                done += 1
            elif proc.wait() == 0:
                return done  # this run finished the sweep
        finally:
            proc.kill()
            proc.wait(timeout=30)
    return done


PROBE = textwrap.dedent(
    """
    import json, os, signal, sys, time
    args = sys.argv[1:]
    print("ARGV " + json.dumps(args))
    print("ENV " + json.dumps({k: v for k, v in os.environ.items() if k.startswith("SM_")}))
    mode = args[args.index("--mode") + 1]
    for step in range(3):
        print(f"step={step} loss={1.0 / (step + 1):.4f}")
    open(os.path.join(os.environ["SM_MODEL_DIR"], "weights.txt"), "w").write("w")
    if mode == "fail":
        print("Traceback: something broke", file=sys.stderr)
        print("ValueError: bad value", file=sys.stderr)
        sys.exit(2)
    if mode == "failure-file":
        with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as f:
            f.write("custom reason from the script")
        sys.exit(1)
    if mode == "slow":
        time.sleep(1.0)
    if mode == "hang":
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        print("ready", flush=True)
        time.sleep(600)
    """
)


def job_request(name: str, code: Path, mode: str = "ok", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/Test",
        "AlgorithmSpecification": {
            "TrainingImage": "img",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}],
        },
        "HyperParameters": {
            "mode": json.dumps(mode),
            "b": "2",
            "a_long": json.dumps("x"),
            "z": "1.5",
            "sagemaker_program": json.dumps("probe.py"),
            "sagemaker_submit_directory": json.dumps(str(code)),
        },
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    base.update(extra)
    return base


async def wait_for_log(emulator: Any, name: str, text: str, timeout: float = 20.0) -> None:
    """Wait until ``name``'s log holds ``text``."""
    async with asyncio.timeout(timeout):
        while text not in emulator.emulator.logs.text(name):
            await asyncio.sleep(0.02)


def experiment_runs(sm: Any, experiment: str) -> list[dict[str, Any]]:
    """The experiment's components (with their trials) as Search returns them."""
    pages = sm.get_paginator("search").paginate(
        Resource="ExperimentTrialComponent",
        SearchExpression={
            "Filters": [
                {
                    "Name": "Parents.TrialName",
                    "Operator": "Equals",
                    "Value": f"Default-Run-Group-{experiment}",
                }
            ]
        },
    )
    return [r["TrialComponent"] for page in pages for r in page["Results"]]


def sdk_session(url: str) -> Any:
    """A SageMaker SDK v2 session whose SageMaker and metrics clients use the emulator at
    ``url`` (keys ``test``, telemetry off, default bucket ``bucket``)."""
    import boto3
    import sagemaker

    boto = boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    return sagemaker.Session(
        boto_session=boto,
        sagemaker_client=boto.client("sagemaker", endpoint_url=url),
        sagemaker_metrics_client=boto.client("sagemaker-metrics", endpoint_url=url),
        sagemaker_config={
            "SchemaVersion": "1.0",
            "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
        },
        default_bucket="bucket",
    )
