"""Runs a training job's lifecycle as a local process under the container contract.

Status and secondary-status transitions follow SageMaker (see the reference):
``InProgress/Starting → Downloading → Training → Uploading → Completed``; a non-zero
exit gives ``Failed``; StopTrainingJob gives ``Stopping → Stopped``; MaxRuntime (training
time, across restarts) gives ``Stopping → Stopped/MaxRuntimeExceeded``. A spot job
chosen for interruption goes ``Training → Interrupted → Starting → Downloading →
Training`` with its checkpoints restored, on a new log stream; MaxWait (wall time from
creation, waits for capacity included) gives ``Stopped/MaxWaitTimeExceeded``. An output
line matching ``internal_error_on_log`` fails the job as a lost instance does
(``InternalServerError``), its checkpoints synced as far as they got. Whatever the script
left in its model directory is uploaded in every case but a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sweeper.clock import first_of
from sweeper.emulator import container, pools, requirements, spot
from sweeper.emulator.errors import AwsError, ScriptFailure
from sweeper.emulator.jobs import Job
from sweeper.emulator.logs import LogStore, Stream
from sweeper.emulator.metric_series import MetricSeries
from sweeper.emulator.mlflow_runs import MlflowRun
from sweeper.emulator.process import JobProcess, spawn
from sweeper.emulator.reaper import (
    CONTAINER_VARIABLE,
    TOKEN_VARIABLE,
    Reaper,
    kill_marked,
    pipe_writers,
)
from sweeper.emulator.settings import RunnerSettings
from sweeper.emulator.transfer import Code, Transfer, lay_out
from sweeper.emulator.watch import Watch
from sweeper.errors import leaves

INTERRUPTED = "Interrupted"
INSTANCE_FAILED = "InstanceFailed"
MAX_WAIT = "MaxWaitTimeExceeded"


class Runner:
    """Runs one job's lifecycle to the end. Task-safe per job: one task per job.

    ``transfer`` (S3) is set by the server once its S3 client is open.
    """

    def __init__(self, settings: RunnerSettings, logs: LogStore, series: MetricSeries) -> None:
        self.settings = settings
        self.logs = logs
        self.series = series  # every metric value, for CloudWatch
        self.spot = spot.Spot(settings.spot)
        self.transfer: Transfer | None = None
        self.on_finish: Callable[[Job], None] | None = None  # after each job's last status
        self.reaper: Reaper | None = None  # kills the jobs if the emulator dies
        self.aws: dict[str, str] = {}  # a job's keys, region and endpoints (set once serving)
        # Users' regexes run here, never on the event loop (see sweeper.patterns).
        self._regex_threads = ThreadPoolExecutor(2, thread_name_prefix="emulator-regex")

    @property
    def _mark(self) -> dict[str, str]:
        """The environment variable the reaper finds this emulator's processes by."""
        return {TOKEN_VARIABLE: self.reaper.token} if self.reaper is not None else {}

    async def run(self, job: Job) -> None:
        """Drive ``job`` from Starting to a terminal status; never raises but cancellation."""
        failed = "Failed", "Failed", "Training job failed"
        try:
            await self._run(job)
        except asyncio.CancelledError:
            if job.status in ("InProgress", "Stopping"):
                reason = "InternalServerError: the emulator shut down during the job"
                self._finish(job, *failed, reason)
            raise
        except Exception as exc:
            self._finish(job, *failed, _failure(exc))

    async def _run(self, job: Job) -> None:
        s = self.settings
        layout = container.Layout(s.root / "jobs" / job.name)
        checkpoints = (job.request.get("CheckpointConfig") or {}).get("S3Uri")
        assert self.transfer is not None, "the emulator is not serving"
        while True:  # one pass per container run: more than one only after a spot interruption
            restarting = job.secondary == INTERRUPTED
            warm = job.warm and not restarting
            delay = s.warm_start_seconds if warm else s.cold_start_seconds
            if restarting:
                message = "Restarting the training job after a spot interruption"
                delay += s.spot.restart_delay_seconds
            elif warm:
                message = "Reusing the instances of a warm pool"
            else:
                message = "Launching requested ML instances"
            job.advance("Starting", message)
            if (ended := await _wait_start(job, delay)) is not None:
                job.stopping()
                self._finish(
                    job, "Stopped", ended, "The training job was stopped before it started"
                )
                return
            job.advance("Downloading", "Downloading input data")
            stream = self.logs.open(job.name)
            launch = await self._prepare(job, layout, checkpoints, stream, self.transfer)
            job.advance("Training", "Training image download completed. Training in progress.")
            job.started = job.started or job.modified
            outcome, stderr_tail = await self._execute(job, launch, stream)
            if checkpoints:  # the state SageMaker's continuous sync would have reached
                await self.transfer.mirror(layout.checkpoints, checkpoints)
            if outcome != INTERRUPTED:
                break
            job.advance(INTERRUPTED, "The spot instance was reclaimed; the job will restart")
        if outcome == INSTANCE_FAILED:
            reason = "InternalServerError: the training instance failed (internal_error_on_log)"
            self._finish(job, "Failed", "Failed", "Training job failed", reason)
            return
        if isinstance(outcome, int) and outcome != 0:
            reason = container.failure_reason(layout, outcome, stderr_tail, launch.command)
            self._finish(job, "Failed", "Failed", "Training job failed", reason)
            return
        job.advance("Uploading", "Uploading generated training model")
        await self.transfer.upload_tars(
            [
                (layout.model, f"{job.output_prefix}/model.tar.gz"),
                (layout.output / "data", f"{job.output_prefix}/output.tar.gz"),
            ]
        )
        if outcome == 0:
            self._finish(job, "Completed", "Completed", "Training job completed")
        else:
            self._finish(job, "Stopped", str(outcome), "Training job stopped")

    async def _prepare(
        self,
        job: Job,
        layout: container.Layout,
        checkpoints: str | None,
        stream: Stream,
        transfer: Transfer,
    ) -> container.Launch:
        """A fresh tree with code, channels and checkpoints in place, requirements met.

        The tree is made while the code is fetched, and laid out with the config files in
        one pass off the event loop: each hop to a thread waits for the interpreter lock,
        which the orchestrator beside an embedded emulator holds often."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(asyncio.to_thread(container.reset, layout))
            code = tg.create_task(transfer.fetch_code(container.submit_directory(job.request)))
        launch, unmet = await asyncio.to_thread(self._lay_out, job, layout, code.result())
        for channel in job.request.get("InputDataConfig", []):
            uri = channel["DataSource"].get("S3DataSource", {}).get("S3Uri")
            if uri:
                await transfer.fetch_prefix(uri, layout.data / channel["ChannelName"])
        if checkpoints:
            await transfer.fetch_prefix(checkpoints.rstrip("/") + "/", layout.checkpoints)
        await requirements.install(unmet, self.logs, stream, layout.code, self._mark)
        return launch

    def _lay_out(
        self, job: Job, layout: container.Layout, code: Code
    ) -> tuple[container.Launch, list[str] | None]:
        """Code and config files in the tree (blocking); the launch, and the lines of
        ``requirements.txt`` this interpreter does not meet (None: no such file)."""
        lay_out(code, layout.code)
        launch = container.prepare(job.request, job.arn, layout, self.settings.region)
        return launch, requirements.unmet(layout.code)

    def _finish(
        self, job: Job, status: str, secondary: str, message: str, reason: str | None = None
    ) -> None:
        job.billable_seconds = self.spot.billable(job.request, max(1, round(job.training_seconds)))
        job.finish(status, secondary, message, reason)
        pools.retain(job, reason, self.settings.pool_available_delay_seconds)
        if self.on_finish is not None:
            self.on_finish(job)

    async def _execute(
        self, job: Job, launch: container.Launch, stream: Stream
    ) -> tuple[int | str, list[str]]:
        """Run the process once; return its exit code or why it was stopped, and its stderr tail."""
        watch = Watch.of(job, self.settings.spot, self.settings.internal_error_on_log)
        tail: deque[str] = deque(maxlen=20)
        started = time.time()
        container = {CONTAINER_VARIABLE: secrets.token_hex(8)}  # this run's processes
        # Environment overrides the job's own variables, never the emulator's marks.
        env = self.aws | _mlflow_env(job) | launch.env | self._mark | container
        proc = await spawn(launch.argv, launch.cwd, env)
        if self.reaper is not None:
            self.reaper.started(proc.pid)
        stopping = job.request["StoppingCondition"]
        runtime_end = started + stopping["MaxRuntimeInSeconds"] - job.training_seconds
        wait_end = job.created + stopping.get("MaxWaitTimeInSeconds", float("inf"))
        outcome: int | str
        try:
            async with asyncio.TaskGroup() as tg:
                out, err = proc.proc.stdout, proc.proc.stderr
                assert out is not None and err is not None
                pumps = [
                    tg.create_task(self._pump(out, stream, watch, job, None)),
                    tg.create_task(self._pump(err, stream, watch, job, tail)),
                ]
                timer = None
                if job.interruptible and watch.interrupt is None:
                    delay = self.settings.spot.interruption_after_seconds
                    timer = tg.create_task(_interrupt_later(job, delay))
                outcome = await self._supervise(job, proc, runtime_end, wait_end)
                if timer is not None:
                    timer.cancel()
                _signal_group(proc.pid, signal.SIGKILL)  # the container is gone: all it started too
                await _drain(
                    pumps, proc, container[CONTAINER_VARIABLE], self.settings.drain_seconds
                )
        finally:  # on any error too: nothing outlives the container
            await _kill(proc)
            if self.reaper is not None:
                self.reaper.ended(proc.pid)
            job.training_seconds += time.time() - started
        return outcome, list(tail)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        stream: Stream,
        watch: Watch,
        job: Job,
        tail: deque[str] | None,
    ) -> None:
        """Copy output lines to the log stream, matching them off the event loop (a
        metric's last value wins)."""
        loop = asyncio.get_running_loop()
        while line := await reader.readline():
            text = line.decode("utf-8", errors="replace").rstrip("\n")
            self.logs.append(stream, text)
            if tail is not None and text.strip():
                tail.append(text)
            if watch.idle:
                continue
            seen = await loop.run_in_executor(self._regex_threads, watch.scan, text)
            for sentence in seen.dropped:
                self.logs.append(stream, f"[emulator] {sentence}")
            if seen.interrupt and job.interruptible:
                job.interrupt.set()
            if seen.fault:
                job.fault.set()
            now = time.time()
            for name, value in seen.metrics.items():
                job.metrics[name] = (value, now)
                self.series.add(job.name, name, value, now)

    async def _supervise(
        self,
        job: Job,
        proc: JobProcess,
        runtime_end: float,
        wait_end: float,
    ) -> int | str:
        """Wait for exit, a stop, an interruption, a fault, MaxRuntime or MaxWait; stop
        the process for all but the first."""
        reason = "Stopped"
        try:
            async with asyncio.timeout(max(0.0, min(runtime_end, wait_end) - time.time())):
                await first_of(
                    proc.wait(),
                    job.stop_requested.wait(),
                    job.interrupt.wait(),
                    job.fault.wait(),
                )
                if proc.exited.is_set():
                    return await proc.wait()
        except TimeoutError:
            reason = MAX_WAIT if wait_end <= runtime_end else "MaxRuntimeExceeded"
        if job.fault.is_set() and not job.stop_requested.is_set():
            await _kill(proc)  # the instance is gone
            return INSTANCE_FAILED
        if job.interrupt.is_set() and not job.stop_requested.is_set():
            job.interrupt.clear()
            job.interruptible = False  # once per job
            await _kill(proc)  # the instance is gone
            return INTERRUPTED
        job.stopping()
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(self.settings.stop_grace_seconds):
                await proc.wait()
        except TimeoutError:
            await _kill(proc)
        return reason


async def _wait_start(job: Job, seconds: float) -> str | None:
    """Wait ``seconds`` for capacity; the secondary status the job ends with if a stop or
    MaxWait comes first (None: it starts)."""
    stopping = job.request["StoppingCondition"]
    left = job.created + stopping.get("MaxWaitTimeInSeconds", float("inf")) - time.time()
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(seconds, max(0.0, left))):
                await job.stop_requested.wait()
    if job.stop_requested.is_set():
        return "Stopped"
    return MAX_WAIT if seconds >= left else None


async def _drain(
    pumps: list[asyncio.Task[None]], proc: JobProcess, container: str, grace: float
) -> None:
    """Let the pumps read what the container's processes left in its pipes, to their end.

    Its entry point has exited and its process group is killed. Pumps not done after
    ``grace`` seconds are waited for to their end if no process holds the pipes any more
    (the machine was only slow to read them: the last lines, the final metrics among
    them, are not lost to a busy machine). A process that left the group (a session of
    its own) and still holds them is ended, as the container's end ends it on SageMaker,
    by the mark in its environment; one that dropped the mark too is no longer read after
    another ``grace``."""
    _, pending = await asyncio.wait(pumps, timeout=grace)
    if pending and await _held(proc):
        await asyncio.to_thread(kill_marked, CONTAINER_VARIABLE, container)
        _, pending = await asyncio.wait(pending, timeout=grace)
    if pending and not await _held(proc):
        await asyncio.wait(pending)  # nobody writes: each reaches its pipe's end
        return
    for pump in pending:
        pump.cancel()


async def _held(proc: JobProcess) -> bool:
    """Whether any process still holds ``proc``'s pipes open."""
    return bool(await asyncio.to_thread(pipe_writers, proc.pipes))


async def _interrupt_later(job: Job, seconds: float) -> None:
    await asyncio.sleep(seconds)
    job.interrupt.set()


def _mlflow_env(job: Job) -> dict[str, str]:
    """MLflow's variables naming the job's run (MlflowConfig), as SageMaker sets them."""
    return MlflowRun(**job.mlflow).environment() if job.mlflow is not None else {}


def _failure(exc: Exception) -> str:
    """The FailureReason of a job ``exc`` ended (from a task group: its first cause)."""
    found = leaves(exc)
    for leaf in found:
        if isinstance(leaf, AwsError):
            return f"ClientError: {leaf.message}"  # the request's fault
        if isinstance(leaf, ScriptFailure):
            return str(leaf)
    return f"InternalServerError: {found[0]}"  # the platform's fault, never the script's


async def _kill(proc: JobProcess) -> None:
    """SIGKILL the process's group; return once the process has exited."""
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
