"""Sharing a sweep with other orchestrators, as the scheduler sees it.

The scheduler holds a lease on the study while it runs (renewed on the heartbeat's
beat, a third of the lease), takes over the trials of orchestrators that died (their
jobs re-attached, harvested or created, as on resume), lets go of trials others adopted
while it was silent, and at the end waits while live orchestrators still run trials of
the sweep, so that any of them may be the one that finishes it.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable

from sweeper.aws.training import JobBackend
from sweeper.clock import Clock
from sweeper.errors import StorageUnavailable
from sweeper.judging import InFlight
from sweeper.resume import Reconciled, reconcile
from sweeper.study import SweepStudy


class Sharing:
    """One orchestrator's membership of a shared study. Use from the scheduler's task."""

    def __init__(
        self, study: SweepStudy, backend: JobBackend, clock: Clock, note: Callable[[str], None]
    ) -> None:
        self._study, self._backend, self._clock, self._note = study, backend, clock, note
        self.due = 0.0  # when the lease must next be renewed (clock time)
        self._asking = True
        self._waiting: Counter[str] = Counter()

    async def join(self) -> Reconciled:
        """Take the lease, then every trial that earlier runs or dead orchestrators left."""
        await self._study.join()
        self.due = self._clock.now() + self._study.renew_every
        return await self._adopt()

    async def tick(self, inflight: Iterable[InFlight]) -> tuple[Reconciled, set[str]]:
        """Renew the lease when due, and take over dead orchestrators' trials (when due,
        or at every call once this orchestrator waits on others). Returns those trials,
        and the jobs in flight that are no longer ours (a lapsed lease)."""
        lost: set[str] = set()
        if self._clock.now() >= self.due:
            self.due = self._clock.now() + self._study.renew_every
            if not await self._study.heartbeat():
                lost = await self._lost(list(inflight))
        elif self._asking:
            return Reconciled(), lost
        return await self._adopt(), lost

    async def _lost(self, flights: list[InFlight]) -> set[str]:
        mine = await self._study.still_mine([f.trial.number for f in flights])
        lost = {f.job for f in flights if f.trial.number not in mine}
        self._note(
            f"this orchestrator's lease had lapsed; {len(lost)} of its trials were taken over"
            " by others and are left to them"
        )
        return lost

    async def others_running(self) -> bool:
        """Whether live orchestrators still run trials of the sweep (said when it
        changes). This one asks no more trials from now on."""
        if self._asking:
            self._asking = False
            await self._study.stop_asking()
        others = await self._study.others_running()
        if others and others != self._waiting:
            held = ", ".join(
                f"{n} by {owner or 'an orchestrator still asking'}" for owner, n in others.items()
            )
            self._note(f"waiting for {others.total()} trials other orchestrators run ({held})")
        self._waiting = others
        return bool(others)

    async def leave(self) -> None:
        """Give up the lease (what we leave RUNNING is adoptable at once); best effort."""
        with contextlib.suppress(StorageUnavailable):  # the lease expires by itself
            await self._study.leave()

    async def _adopt(self) -> Reconciled:
        adopted = await self._study.adopt()
        for item in adopted:
            if item.previous not in (None, self._study.owner):
                self._note(f"trial {item.record.number}: adopted from {item.previous}, gone")
        return await reconcile([a.record for a in adopted], self._backend, self._note)
