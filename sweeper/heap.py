"""Start-up's objects kept out of the cyclic garbage collector's way.

A sweep's process (and the emulator's) holds a few hundred thousand objects from its
first second to its last: modules, botocore's service models (SageMaker's alone is
about 3 MB of JSON), SQLAlchemy's and Optuna's metadata, moto's backends. Each full
collection walks all of them, about 100 ms with the interpreter lock held, which stalls
whatever the event loop was about to do (notice a job's end, create the next one). A
sweep made four of them, one in its loop; they freed nothing that reference counting
would not have. During start-up's imports, collections took a fifth of their time.

:func:`long_lived` wraps start-up's steps (the space file's checks, the imports, the
study and clients): no cyclic collection during them (their objects are meant to
live), and afterwards they are frozen (:func:`gc.freeze`) into a generation that later
collections skip. Later collections still find cycles among what is made after; what
start-up made stays for the life of the process, as it would anyway.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived(*, collect_first: bool = True) -> Iterator[None]:
    """Collect no cycles for the block; then freeze what exists and collect as before
    (if collection was on). Nestable. An exception in the block restores collection and
    freezes nothing (the cycles of its traceback must stay collectable).

    A process that has frozen before (one running sweeps one after another: a benchmark)
    collects first, so that what the earlier ones left is not pinned; frozen objects are
    not walked, so that costs only what was made since. A block that follows another
    with nothing but start-up between them (``collect_first=False``) skips that."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if collect_first and gc.get_freeze_count():
            gc.collect()
        gc.freeze()  # not after an error: its traceback's cycles would never be freed
    finally:
        if enabled:
            gc.enable()
