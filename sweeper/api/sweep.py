"""``sweeper.Sweep``: a sweep defined and run from Python, with the same validation,
resume, ownership, pruning, tracking and Ctrl-C semantics as ``python sweep.py``.

Three ways to run it, one at a time per object (a second while one runs is a
:class:`~sweeper.errors.SweepError`): :meth:`Sweep.run` blocks (scripts),
``await`` :meth:`Sweep.run_async` runs inside a running event loop (a notebook cell),
:meth:`Sweep.start` runs it on a background thread. Each resumes what the study holds:
running one again after it ended, here or in another process, launches only what is
left. Reading results is :class:`~sweeper.api.view.SweepView`'s.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sweeper import backend
from sweeper.api import spec as spec_mod
from sweeper.api.handle import SweepHandle
from sweeper.api.view import SweepView, loop_running
from sweeper.config import SweepConfig
from sweeper.errors import ConfigError, SweepError
from sweeper.outcome import SweepResult
from sweeper.templates import JobSource, SpaceFileJobs
from sweeper.types import OnExit

RESUME = "the same run again (sweep.run(), await sweep.run_async() or sweep.start())"


class Sweep(SweepView):
    """A sweep of SageMaker training jobs.

    ``spec`` is a space file's document as a dict (see the space-file reference) or a
    validated :class:`~sweeper.config.SweepConfig`; relative paths in a dict resolve
    against ``base_dir``, where the sweep's state (``.sweeps/<name>/``) is kept too.
    ``estimator``, an SDK v2 Estimator (``Estimator``, ``SKLearn``, ``PyTorch``, ...),
    is the job template instead of the spec's ``estimator:`` section: the SDK builds
    its request (as ``fit(inputs, wait=False)`` would), and each trial's job is that
    request with the trial's hyperparameters. Constructing validates and starts
    nothing; bad input is a :class:`~sweeper.errors.ConfigError` naming the key.
    """

    def __init__(
        self,
        spec: spec_mod.Spec,
        *,
        base_dir: str | os.PathLike[str] = ".",
        estimator: Any = None,
        inputs: Mapping[str, Any] | None = None,
        _origin: Path | None = None,
    ) -> None:
        config, jobs = spec_mod.configure(spec, Path(base_dir), estimator, inputs, _origin)
        super().__init__(config, estimator)
        self._jobs: JobSource = jobs
        self._busy = threading.Lock()

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        estimator: Any = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> Sweep:
        """The sweep a space file describes (its paths relative to the file); with
        ``estimator``, the file's ``estimator:`` section may hold only Sweeper's own
        keys (``keep_pools_after_sweep``, ``spot_fallback``, ``instance_price_per_hour``)."""
        document, where = spec_mod.from_file(path)
        return cls(
            document, base_dir=where.parent, estimator=estimator, inputs=inputs, _origin=where
        )

    def run(self, on_exit: OnExit | str = OnExit.LEAVE, *, resume: str = RESUME) -> SweepResult:
        """Run (or resume) the sweep to its end, blocking; print its summary (``resume``
        names what resumes it) and return how it ended. On the main thread, Ctrl-C and
        SIGTERM act as for ``python sweep.py``: the first stops dispatching (``on_exit``
        says what becomes of running jobs), a second raises
        :class:`~sweeper.interrupts.ExitedAtOnce` (a KeyboardInterrupt) at once. Inside a
        running event loop: a SweepError (use :meth:`run_async`)."""
        _refuse_inside_loop()
        how = OnExit(on_exit)
        with self._claim(), backend.endpoints(self.config, meanwhile=preload) as ends:
            from sweeper.session import Session  # imported while the emulator booted

            session = Session(self.config, ends, jobs=self._jobs)
            try:
                result = asyncio.run(self._run_main(session, how))
            except asyncio.CancelledError:
                from sweeper.interrupts import EXITED_AT_ONCE, ExitedAtOnce

                print(EXITED_AT_ONCE, file=sys.stderr)
                raise ExitedAtOnce from None
            return self._said(result, ends.embedded, resume)

    def dry_run(self) -> str:
        """What the sweep would upload and its first trial's CreateTrainingJob request
        (``python sweep.py --dry-run``); sends nothing. With an Estimator, a SweepError:
        its request is the SDK's, built as the sweep starts."""
        if not isinstance(self._jobs, SpaceFileJobs):
            raise SweepError("dry_run: with an Estimator the request is built by the SDK")
        from sweeper import session

        return session.dry_run(self.config)

    async def _run_main(self, session: Any, how: OnExit) -> SweepResult:
        if threading.current_thread() is threading.main_thread():
            from sweeper.interrupts import handle_signals

            handle_signals(session, how)
        result: SweepResult = await session.run()
        return result

    async def run_async(self, on_exit: OnExit | str = OnExit.LEAVE) -> SweepResult:
        """Run (or resume) the sweep to its end on the running event loop; print its
        summary and return how it ended. Cancelling it once (a notebook's interrupt, a
        ``task.cancel()``) stops dispatching and ends the run as ``on_exit`` says, then
        returns; cancelling it again ends it at once (CancelledError)."""
        how = OnExit(on_exit)
        with self._claim():
            async with backend.started(self.config, meanwhile=preload) as ends:
                from sweeper.session import Session

                session = Session(self.config, ends, jobs=self._jobs)
                result = await _graceful(session, how)
            return self._said(result, ends.embedded)

    def start(self, on_exit: OnExit | str = OnExit.LEAVE) -> SweepHandle:
        """Run (or resume) the sweep on a background thread; returns at once with its
        handle (``status()``, ``wait(timeout)``, ``stop(on_exit)``). ``on_exit`` is what
        ``stop()`` does to running jobs unless it says otherwise."""
        if not self._busy.acquire(blocking=False):
            raise _already_running(self.config)
        try:
            return SweepHandle(
                self.config,
                self._jobs,
                OnExit(on_exit),
                finish=lambda result: self._said(result, backend.embedded(self.config)),
                done=self._busy.release,
            )
        except BaseException:
            self._busy.release()
            raise

    @contextmanager
    def _claim(self) -> Iterator[None]:
        if not self._busy.acquire(blocking=False):
            raise _already_running(self.config)
        try:
            yield
        finally:
            self._busy.release()

    def _said(self, result: SweepResult, embedded: bool, resume: str = RESUME) -> SweepResult:
        from sweeper.console import result_text

        print(result_text(self.config, result, embedded, resume), flush=True)
        return result


async def _graceful(session: Any, how: OnExit) -> SweepResult:
    """``session.run()``, a first cancellation turned into an interrupt."""
    task = asyncio.ensure_future(session.run())
    while True:
        try:
            result: SweepResult = await asyncio.shield(task)
            return result
        except asyncio.CancelledError:
            if session.interrupted or task.done():
                task.cancel()
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            from sweeper.interrupts import ON_EXIT_TEXT

            print(f"\ninterrupted: starting no new trials, {ON_EXIT_TEXT[how]}", flush=True)
            session.interrupt(how)


def preload() -> None:
    """Import :mod:`sweeper.session` and what it needs (Optuna, SQLAlchemy, aiobotocore:
    about half a second) while the emulator boots, with no cyclic collection meanwhile
    (a fifth of that time), as modules live on."""
    from sweeper import blas, heap

    with heap.long_lived(collect_first=False):
        blas.import_numpy()  # before Optuna does
        import sweeper.aws.clients
        import sweeper.session  # noqa: F401


def _refuse_inside_loop() -> None:
    if not loop_running():
        return
    raise SweepError(
        "Sweep.run() blocks, and this thread runs an event loop (a notebook cell, say):"
        " use `await sweep.run_async()`, or `sweep.start()` to run it in the background"
    )


def _already_running(config: SweepConfig) -> SweepError:
    return SweepError(
        f"the sweep {config.name} is already running from this Sweep object; wait for it"
        " (handle.wait()) or stop it (handle.stop()) before running it again"
    )


def open_sweep(
    spec: str | os.PathLike[str] | spec_mod.Spec | None = None,
    *,
    base_dir: str | os.PathLike[str] = ".",
    estimator: Any = None,
    storage: str | None = None,
    name: str | None = None,
) -> SweepView:
    """A read-only view of a sweep: its trials, best trial, report and notes, while this
    or another process runs it. Launches nothing.

    The sweep is defined as for :class:`Sweep` (a space file's path, a dict or a
    SweepConfig; the Estimator too if it was run with one), or found by ``storage`` (an
    Optuna storage URL: ``sqlite:///path/.sweeps/name.db``, ``postgresql://...``) and
    ``name`` alone, without its space file: then a note is kept in the study only, and
    :meth:`~SweepView.best_estimator` needs the space file. Raises ConfigError for a bad
    definition, or no such sweep in ``storage``."""
    if storage is not None or name is not None:
        if spec is not None or estimator is not None or storage is None or not name:
            raise ConfigError(
                "sweeper.open: give a space file (or dict), or storage= and name= without"
                " one, e.g. sweeper.open(storage='sqlite:///.sweeps/quad.db', name='quad')"
            )
        from sweeper.study.spec import stored_config  # optuna: only now

        return SweepView(stored_config(storage, name), detached=True)
    if spec is None:
        raise ConfigError("sweeper.open: which sweep? Give its space file, or storage= and name=")
    if isinstance(spec, (str, os.PathLike)):
        document, where = spec_mod.from_file(spec)
        config, _ = spec_mod.configure(document, where.parent, estimator, origin=where)
    else:
        config, _ = spec_mod.configure(spec, Path(base_dir), estimator)
    return SweepView(config, estimator)
