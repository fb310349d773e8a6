"""What the user reads while a sweep runs: trial events, the summary, status."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from optuna.trial import FrozenTrial

from sweeper.clock import Clock
from sweeper.config import Goal, SweepConfig
from sweeper.outcome import SweepResult
from sweeper.study import JOB_NAME, Counts, TrialRecord
from sweeper.study.storage import redacted
from sweeper.types import JobState, Progress, StopReason


def format_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in params.items())


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class ConsoleReporter:
    """Prints one line per trial event, stamped with seconds since the sweep started.

    On a terminal it also keeps a live status block under the events (counts, best so
    far, elapsed and remaining time, one line per running job), redrawn in place; in a
    log or a pipe it adds a plain progress line at most every ``PLAIN_EVERY`` seconds.
    """

    PLAIN_EVERY = 30.0

    def __init__(self, clock: Clock, goal: Goal, out: TextIO | None = None, tags: str = "") -> None:
        self._clock = clock
        self._start = clock.now()
        self._goal = goal
        self._metric = goal.metrics[0]  # what the pruner judges (a single objective)
        self._out = out
        self._tags = tags  # e.g. "spot" or "warm pool", shown on each running job
        self._block: list[str] = []  # the status block now on screen (terminal only)
        self._last_plain = -math.inf

    @property
    def _stream(self) -> TextIO:
        return self._out or sys.stdout

    def _line(self, text: str) -> None:
        stream = self._stream
        self._erase()
        print(f"[{self._clock.now() - self._start:7.1f}s] {text}", file=stream)
        self._draw()
        stream.flush()

    def progress(self, p: Progress) -> None:
        best = _short(p.best) if p.best is not None else "-"
        eta = f", about {p.eta:.0f} s left" if p.eta is not None else ""
        lead = f"best {self._metric}={best}" if self._goal.single else f"Pareto front {p.front}"
        head = (
            f"{p.done}/{p.limit} done, {p.running} running, {p.failed} failed;"
            f" {lead}; {p.elapsed:.0f} s elapsed{eta}"
        )
        if not self._stream.isatty():
            if p.elapsed - self._last_plain >= self.PLAIN_EVERY:
                self._last_plain = p.elapsed
                self._line(f"progress: {head}")
            return
        tags = f" ({self._tags})" if self._tags else ""
        jobs = [f"  trial {n:<4} {job}  {status}{tags}" for n, job, status in p.jobs]
        self._erase()
        self._block = [f"-- {head}", *jobs]
        self._draw()
        self._stream.flush()

    def _erase(self) -> None:
        if self._block:  # up to the block's first line, then clear to the end of screen
            self._stream.write(f"\x1b[{len(self._block)}F\x1b[J")

    def _draw(self) -> None:
        for line in self._block:
            self._stream.write(line + "\n")

    def started(self, number: int, job: str, params: dict[str, Any]) -> None:
        self._line(f"trial {number:<3} started   {job}  {format_params(params)}")

    def finished(
        self,
        number: int,
        job: str,
        values: tuple[float, ...],
        seconds: float | None,
        feasible: bool = True,
    ) -> None:
        took = f" (job {seconds:.1f} s)" if seconds is not None else ""
        shown = values_text(self._goal.metrics, values)
        flag = "" if feasible else " infeasible"
        self._line(f"trial {number:<3} finished  {shown}{flag}{took}")

    def note(self, text: str) -> None:
        self._line(text)

    def pruned(self, number: int, job: str, step: int, value: float) -> None:
        self._line(
            f"trial {number:<3} pruned    at step {step} ({self._metric}={_short(value)}),"
            f" stopping {job}"
        )

    def failed(self, number: int, job: str, reason: str) -> None:
        first = " | ".join(line.strip() for line in reason.splitlines() if line.strip())
        self._line(f"trial {number:<3} failed    {job}: {first[:300]}")


def values_text(metrics: tuple[str, ...], values: Sequence[float]) -> str:
    """``acc=0.93 size_kb=120``: each objective's value."""
    return " ".join(f"{m}={_short(v)}" for m, v in zip(metrics, values, strict=True))


def summary(
    name: str,
    goal: Goal,
    counts: Counts,
    front: Sequence[FrozenTrial],
    wall: float,
    stop_reason: str,
    storage_url: str,
) -> str:
    """The end-of-sweep summary: counts, why it stopped, the best trial (several
    objectives: the Pareto front), where it is stored."""
    lines = [
        f"Sweep {name}: {counts.total} trials ({counts.complete} complete, {counts.failed} failed,"
        f" {counts.running} running{f', {counts.pruned} pruned' if counts.pruned else ''})"
        f" in {wall:.1f} s; stopped: {stop_reason}",
    ]
    feasible = " feasible" if goal.constraints else ""
    if not front:
        lines.append(f"No{feasible} trial completed, so there is no best trial.")
    elif goal.single:
        best, (o,) = front[0], goal.objectives
        lines += [
            f"Best trial {best.number}: {o.metric} = {_short(best.value)} ({o.direction})",
            f"  job:    {best.user_attrs.get(JOB_NAME, '?')}",
            "  params:",
            *(f"    {k}: {v!r}" for k, v in best.params.items()),
        ]
    else:
        lines.append(
            f"Pareto front: {len(front)}{feasible} trial(s) no other beats on every objective"
        )
        lines += [
            f"  trial {t.number:<4} {values_text(goal.metrics, t.values)}"
            f"  {format_params(t.params)}"
            for t in front[:20]
        ]
        if len(front) > 20:
            lines.append(f"  ... {len(front) - 20} more: sweep.py report lists them all")
    lines.append(
        f"Study storage: {redacted(storage_url)}  (run the same command again to continue)"
    )
    return "\n".join(lines)


def interrupted_text(running: int, on_exit: str, embedded: bool, command: str) -> str:
    """What an interrupted sweep tells the user: where its jobs are and how to go on."""
    if running == 0:
        jobs = "No job was running."
    elif embedded:
        jobs = (
            f"{running} job(s) were running in the embedded emulator, which stops with Sweeper:"
            " they run again when you resume."
        )
    elif on_exit == "stop":
        jobs = f"{running} job(s) were asked to stop; resuming runs their trials again."
    else:
        jobs = f"{running} job(s) are still running; resuming re-attaches them."
    return f"Interrupted. {jobs}\nResume with: {command}"


def storage_down_text(error: str, embedded: bool, command: str) -> str:
    """What a sweep whose storage stayed down tells the user: nothing is lost, how to go on."""
    jobs = (
        "The embedded emulator stops with Sweeper: its jobs run again when you resume."
        if embedded
        else "Jobs in flight keep running; resuming re-attaches them and records their results."
    )
    return f"Stopped: {error}.\n{jobs}\nOnce storage is back, resume with: {command}"


def status_text(
    config: SweepConfig,
    counts: Counts,
    front: Sequence[FrozenTrial],
    running: list[TrialRecord],
    states: dict[str, JobState] | None,
) -> str:
    """``sweep.py status``: counts, the best trial (several objectives: the Pareto
    front), and each running trial's job (or the rung a paused trial waits at)."""
    paused = sum(r.paused for r in running)
    lines = [
        f"Sweep {config.name} ({redacted(config.storage_url)})",
        f"  trials: {counts.total} of {config.budget.max_trials}: {counts.complete} done,"
        f" {counts.running - paused} running{f', {paused} paused' if paused else ''},"
        f" {counts.failed} failed, {counts.pruned} pruned, {counts.unlaunched} not launched",
    ]
    metrics = config.goal.metrics
    if config.goal.single and front:
        best = front[0]
        lines.append(
            f"  best: trial {best.number}, {metrics[0]} = {_short(best.value)}"
            f" ({format_params(best.params)})"
        )
    elif front:
        lines.append(f"  Pareto front: {len(front)} trial(s)")
        lines += [f"    trial {t.number:<4} {values_text(metrics, t.values)}" for t in front[:10]]
        if len(front) > 10:
            lines.append(f"    ... {len(front) - 10} more (sweep.py report lists them all)")
    if running and states is None:
        lines.append(
            "  job states are not shown: the embedded emulator runs only while sweep.py runs"
            " (set backend.endpoint_url to a standalone emulator to inspect jobs)"
        )
    for record in running:
        where = "no job recorded yet"
        if record.paused:  # promotion: its job ended at the rung
            last = record.rungs[-1]
            where = f"paused at resource {last.resource} ({_short(last.value)}, {last.job})"
        elif record.job_name:
            state = (states or {}).get(record.job_name)
            where = record.job_name
            if states is not None:
                found = f"{state.status}/{state.secondary_status}" if state else "not created yet"
                where += f"  {found}"
        owner = f"  run by {record.owner}" if record.owner else "  unclaimed"
        lines.append(f"  trial {record.number:<4} attempt {record.attempt}  {where}{owner}")
    return "\n".join(lines + pools_text(states or {}))


def pools_text(states: dict[str, JobState]) -> list[str]:
    """The warm pools the sweep's finished jobs hold, and since when (they are billed)."""
    held = sorted(
        (
            s
            for s in states.values()
            if s.status.is_terminal and s.warm_pool in ("Available", "InUse")
        ),
        key=lambda s: s.name,
    )
    if not held:
        return []
    lines = [f"  warm pools held: {len(held)} (billed while Available)"]
    for s in held:
        since = s.ended.astimezone().strftime("%Y-%m-%d %H:%M:%S") if s.ended else "?"
        if s.warm_pool == "InUse":  # its job just ended: the pool is being handed back
            lines.append(f"    {s.name}  becoming Available (job ended {since})")
        else:
            lines.append(f"    {s.name}  Available since {since}, retained {s.pool_seconds or 0} s")
    return lines


def result_text(config: SweepConfig, result: SweepResult, embedded: bool, resume: str) -> str:
    """What a run of a sweep tells the user at its end: the summary (and, interrupted,
    where its jobs are), or that its storage stayed away; ``resume`` says how to go on."""
    if result.storage_down is not None:
        return storage_down_text(str(result.storage_down), embedded, resume)
    text = summary(
        config.name,
        config.goal,
        result.counts,
        result.front,
        result.elapsed,
        result.stop_reason,
        config.storage_url,
    )
    if result.interrupted:
        text += "\n" + interrupted_text(len(result.in_flight), result.on_exit, embedded, resume)
    return text


def exit_code(result: SweepResult) -> int:
    """0 when the sweep has a best trial (or a Pareto front); 130 interrupted, 75 or 74
    storage away, 1 else
    (a quota that refused every job says which, and that a rerun goes on)."""
    if result.storage_down is not None:
        return result.storage_down.exit_code
    if result.interrupted:
        return 130
    if result.stop_reason == StopReason.CAPACITY:
        return 1
    return 0 if result.front else 1
