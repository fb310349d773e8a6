"""Ctrl-C and SIGTERM during a sweep, the same for ``python sweep.py`` and
:meth:`sweeper.Sweep.run`: the first stops dispatching (``on_exit`` says what becomes of
the jobs in flight), the second exits at once."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TYPE_CHECKING

from sweeper.types import OnExit

if TYPE_CHECKING:
    from sweeper.session import Session

EXITED_AT_ONCE = (
    "exited at once: results already recorded are safe; running the same command"
    " again re-attaches or reruns the rest"
)


class ExitedAtOnce(KeyboardInterrupt):
    """A second Ctrl-C (or SIGTERM) ended the sweep at once (:data:`EXITED_AT_ONCE` said)."""


ON_EXIT_TEXT = {
    OnExit.LEAVE: "leaving running jobs alone",
    OnExit.STOP: "stopping running jobs",
    OnExit.WAIT: "waiting for running jobs to finish",
}


def handle_signals(session: Session, on_exit: OnExit) -> None:
    """Install the handlers on the running loop (its thread must be the main one): a
    first SIGINT/SIGTERM interrupts ``session``, a second cancels the current task."""
    loop, main_task = asyncio.get_running_loop(), asyncio.current_task()

    def on_signal(name: str) -> None:
        if session.interrupted:
            print(f"\n{name} again: exiting at once", file=sys.stderr, flush=True)
            if main_task is not None:
                main_task.cancel()
            return
        print(
            f"\n{name}: starting no new trials, {ON_EXIT_TEXT[on_exit]} (again to exit at once)",
            file=sys.stderr,
            flush=True,
        )
        session.interrupt(on_exit)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
