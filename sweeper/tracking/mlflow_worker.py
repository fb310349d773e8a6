"""MLflow's client in a process of its own, called from the event loop.

MLflow's client is synchronous Python: SQLAlchemy for a database store, HTTP for a
server; about 20 ms of CPU per trial on a SQLite store, and some 3 s to import and open.
In a thread of the orchestrator that CPU is GIL time taken from the event loop that
dispatches jobs (the sweep loop's efficiency fell by 0.02-0.03 at 40 trials, 4 at a
time, 1 s each); in a process of its own it runs beside the loop, on another core.

The process runs one call at a time, in order. It ignores Ctrl-C (the sweep decides
what an interrupt means and still ends its parent run) and exits when the orchestrator
is gone, however it went.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol, TypeVar

from sweeper.tracking.mlflow_store import MlflowStore

R = TypeVar("R")

_store: MlflowStore | None = None  # the worker process's own


class MlflowError(Exception):
    """An error the worker met, as it comes back: MLflow's exceptions do not all survive
    pickling, so its type's name (``kind``) and message travel instead."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(kind, message)
        self.kind, self.message = kind, message

    def __str__(self) -> str:
        return self.message


class MlflowCalls(Protocol):
    """Where :class:`MlflowStore`'s methods run: ``await calls.call(MlflowStore.log, ...)``."""

    async def ready(self) -> None:
        """Wait for the store to be open; MLflow's error if it could not be."""

    async def call(self, method: Callable[..., R], *args: Any) -> R:
        """The store's ``method`` (found by name: a subclass's own wins) called with
        ``args``, off the event loop; its exception if it raises."""

    def close(self) -> None:
        """No more calls: wait for those made, then let go of the store."""


class MlflowWorker:
    """An :class:`MlflowStore` in a worker process (see the module's docstring)."""

    def __init__(self, tracking_uri: str, experiment: str) -> None:
        """Start the process, which opens the store (see :meth:`ready`); returns at once."""
        self._pool = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),  # no fork of a threaded loop
            initializer=_detach,
            initargs=(os.getpid(),),
        )
        # Ctrl-C reaches the terminal's whole process group: the process starts (here, in
        # submit) with SIGINT blocked, and ignores it (_detach) before it would unblock.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._opened = self._pool.submit(_open, tracking_uri, experiment)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    async def ready(self) -> None:
        await asyncio.wrap_future(self._opened)

    async def call(self, method: Callable[..., R], *args: Any) -> R:
        loop = asyncio.get_running_loop()
        result: R = await loop.run_in_executor(self._pool, _call, method, args)
        return result

    def close(self) -> None:
        """Let the process go. Once its calls are done it holds nothing unwritten (each
        call is complete when it returns), so it is ended rather than left to run
        MLflow's exit handlers, which take about a second."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._opened.done() and self._opened.exception() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._opened.result(), signal.SIGTERM)


class InThread:
    """An :class:`MlflowStore` called in a thread of this process (tests, tools)."""

    def __init__(self, store: MlflowStore) -> None:
        self.store = store

    async def ready(self) -> None:
        return None

    async def call(self, method: Callable[..., R], *args: Any) -> R:
        bound: Callable[..., R] = getattr(self.store, method.__name__)
        return await asyncio.to_thread(bound, *args)

    def close(self) -> None:
        return None


# --- in the worker process ---------------------------------------------------------


def _detach(parent: int) -> None:
    """Ignore Ctrl-C (one that came while it started is dropped), and exit once
    ``parent`` is gone (a SIGKILL leaves no one to say)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _open(tracking_uri: str, experiment: str) -> int:
    """Open the process's store; return the process's id."""
    global _store
    try:
        _store = MlflowStore(tracking_uri, experiment)
    except Exception as exc:
        raise MlflowError(type(exc).__name__, str(exc)) from None
    return os.getpid()


def _call(method: Callable[..., R], args: tuple[Any, ...]) -> R:
    assert _store is not None, "the store was not opened"
    bound: Callable[..., R] = getattr(_store, method.__name__)
    try:
        return bound(*args)
    except Exception as exc:
        raise MlflowError(type(exc).__name__, str(exc)) from None
