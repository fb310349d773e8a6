"""The emulator on its own thread and event loop, inside another program (a sweep, a test)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from types import TracebackType

from sweeper.emulator.server import Emulator
from sweeper.emulator.settings import EmulatorSettings


class EmbeddedEmulator:
    """An emulator on its own thread and event loop, inside another program (tests, which
    reach into its state; a sweep runs its own in a process: :mod:`.child`).

    ``with EmbeddedEmulator(settings) as emu: emu.endpoint_url`` — the thread stops,
    and every job it ran is killed, when the block exits. Off the caller's loop, the
    caller's pauses never delay the emulator, but the two share one interpreter lock.
    """

    def __init__(self, settings: EmulatorSettings) -> None:
        self.emulator = Emulator(settings)
        self.endpoint_url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="emulator", daemon=True)

    def __enter__(self) -> EmbeddedEmulator:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving: kill running jobs, write S3 to disk. Idempotent."""
        if self._thread.is_alive() and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.ident is not None:
            self._thread.join()

    @property
    def s3_endpoint_url(self) -> str:
        return self.emulator.s3.endpoint_url

    @property
    def calls(self) -> Counter[str]:
        """Requests received so far, by operation (a copy)."""
        return Counter(self.emulator.calls)

    def _main(self) -> None:
        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.emulator.serve(self._started, self._stop)

        try:
            asyncio.run(run())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    def _started(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self._ready.set()
