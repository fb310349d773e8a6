"""A sweep run on a background thread: :meth:`sweeper.Sweep.start`'s handle.

The thread runs its own event loop (the sweep's own emulator, if it has one, starts
there); the handle's methods may be called from any thread, any number of times.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sweeper import backend
from sweeper.config import SweepConfig
from sweeper.outcome import SweepResult
from sweeper.templates import JobSource
from sweeper.types import OnExit

if TYPE_CHECKING:
    from sweeper.session import Session


@dataclass(frozen=True, slots=True)
class HandleStatus:
    """Where a background sweep is: ``running`` until its thread ends, then ``result``
    (how it ended) or ``error`` (what it raised)."""

    running: bool
    result: SweepResult | None = None
    error: BaseException | None = None


class SweepHandle:
    """One background run of a sweep (see the module). ``done`` is called on the
    thread as it ends."""

    def __init__(
        self,
        config: SweepConfig,
        jobs: JobSource,
        on_exit: OnExit,
        finish: Callable[[SweepResult], object],
        done: Callable[[], None],
    ) -> None:
        self._config, self._jobs, self._on_exit = config, jobs, on_exit
        self._finish, self._done = finish, done
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: Session | None = None
        self._stop: OnExit | None = None
        self._result: SweepResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=f"sweep-{config.name}")
        self._thread.start()

    def _main(self) -> None:
        try:
            self._result = asyncio.run(self._run())
            self._finish(self._result)
        except BaseException as exc:  # kept for wait() to raise in the caller's thread
            self._error = exc
        finally:
            self._done()

    async def _run(self) -> SweepResult:
        from sweeper.api.sweep import preload
        from sweeper.session import Session

        async with backend.started(self._config, meanwhile=preload) as ends:
            session = Session(self._config, ends, jobs=self._jobs)
            with self._lock:
                self._loop, self._session = asyncio.get_running_loop(), session
                if self._stop is not None:
                    session.interrupt(self._stop)
            try:
                return await session.run()
            finally:
                with self._lock:  # a stop() from now on has nothing to interrupt
                    self._loop = self._session = None

    def status(self) -> HandleStatus:
        """Whether the sweep still runs, and how it ended once it has (non-blocking;
        the trials themselves: :meth:`sweeper.Sweep.trials_dataframe`)."""
        return HandleStatus(self._thread.is_alive(), self._result, self._error)

    def wait(self, timeout: float | None = None) -> SweepResult:
        """Block until the sweep ends (at most ``timeout`` seconds: then TimeoutError,
        the sweep running on); its result, or the error it raised."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the sweep {self._config.name} is still running")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def stop(self, on_exit: OnExit | str | None = None, wait: bool = True) -> SweepResult | None:
        """Start no new trials; ``on_exit`` (default: the one given to ``start``) says
        what becomes of the jobs in flight, as Ctrl-C does for ``python sweep.py``. With
        ``wait``, block until the sweep has ended and return its result. Idempotent."""
        how = OnExit(on_exit) if on_exit is not None else self._on_exit
        with self._lock:
            self._stop = how
            if self._loop is not None and self._session is not None:
                self._loop.call_soon_threadsafe(self._session.interrupt, how)
        return self.wait() if wait else None
