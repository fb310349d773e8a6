"""Start-up's objects are frozen out of later collections; collection comes back on."""

from __future__ import annotations

import gc
import weakref

import pytest

from sweeper.heap import long_lived


def test_start_up_collects_no_cycles_and_its_objects_are_then_frozen() -> None:
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        with long_lived():
            assert not gc.isenabled()
            kept = [[i] for i in range(1000)]  # what start-up makes to keep
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(kept)
    finally:
        gc.unfreeze()


def test_an_error_during_start_up_still_turns_collection_back_on() -> None:
    try:
        with pytest.raises(RuntimeError), long_lived():
            raise RuntimeError("a bad bucket")
        assert gc.isenabled()
    finally:
        gc.unfreeze()


def test_a_process_that_had_collection_off_keeps_it_off() -> None:
    gc.disable()
    try:
        with long_lived():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


class Node:
    """Something a cycle can be made of, and a weak reference can watch."""

    def __init__(self) -> None:
        self.me = self


def test_what_an_earlier_sweep_left_in_a_cycle_is_collected_not_frozen() -> None:
    try:
        with long_lived():  # a first sweep's start-up
            pass
        cycle = Node()
        gone = weakref.ref(cycle)
        del cycle  # garbage only a cyclic collection frees
        with long_lived():  # the next sweep's, in the same process
            pass
        assert gone() is None
    finally:
        gc.unfreeze()


def test_an_error_during_start_up_freezes_nothing() -> None:
    """A space file refused in a process that goes on (a test, a fuzzer): what the error
    holds in cycles (its traceback's frames) must stay collectable."""
    frozen = gc.get_freeze_count()

    def refuse() -> None:
        with long_lived():
            kept = [[i] for i in range(1000)]
            raise RuntimeError(f"a bad space file ({len(kept)})")

    with pytest.raises(RuntimeError):
        refuse()
    assert gc.get_freeze_count() == frozen
    assert gc.isenabled()


def test_a_block_right_after_another_collects_nothing_first() -> None:
    """Start-up in steps (the space file's checks, the imports, the study): only the
    first step collects what an earlier sweep in the process left."""
    collections: list[str] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:  # a full one, as gc.collect()
            collections.append(phase)

    gc.callbacks.append(count)
    try:
        with long_lived():  # a first step: nothing frozen before, nothing to collect
            pass
        with long_lived():  # a later sweep's first step
            pass
        assert len(collections) == 1
        with long_lived(collect_first=False):  # its next step
            pass
        assert len(collections) == 1
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()
