"""Who runs which trial: orchestrator leases and trial claims, in the study's own database.

Several orchestrators may run one sweep. Each has an identity (``host:pid:token``) and a
*lease*: a row it renews every third of ``lease_seconds`` (one write per orchestrator,
whatever the number of trials). Each trial it runs has a *claim* naming it. Claims are
rows with the trial number as key, so taking one is atomic: a new trial is claimed by
the orchestrator that asked it (an insert), and a trial of a dead orchestrator is
adopted by a compare-and-set on its claim (``UPDATE ... WHERE owner = <the dead one>``),
which exactly one adopter wins.

An orchestrator is dead when its lease has expired, when it left (clean exit or
Ctrl-C: its row is deleted), or when it ran where this one runs (same host, same boot,
same pid namespace: see :func:`machine`) and its process is gone.
A RUNNING trial without a claim was being asked when its orchestrator stopped, or is
being asked right now: it is adopted only when no other live orchestrator still asks.

Lease times are wall-clock seconds of the writer's host: hosts sharing a sweep are
assumed to agree on the time to well within a lease (NTP does).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.exc

_META = sa.MetaData()
_LEASES = sa.Table(
    "sweeper_orchestrators",
    _META,
    sa.Column("study", sa.String(512), primary_key=True),
    sa.Column("owner", sa.String(255), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),  # its machine()
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("asking", sa.Boolean, nullable=False),
)
_CLAIMS = sa.Table(
    "sweeper_trial_claims",
    _META,
    sa.Column("study", sa.String(512), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False),
)
DEFAULT_LEASE_SECONDS = 60.0


def new_owner() -> str:
    """This process's identity among orchestrators: ``host:pid:token``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


def machine() -> str:
    """Where a process id names the same process as here: the host name, its boot, and
    the pid namespace. Containers that share a host name (host networking) each have
    their own pids, so a pid gone from one says nothing of another."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):  # Linux; elsewhere the host name alone
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(os.readlink("/proc/self/ns/pid"))
    return "/".join(parts)


@dataclass(frozen=True, slots=True)
class Orchestrator:
    """A live orchestrator as its lease row says."""

    owner: str
    expires_at: float
    asking: bool


@dataclass(frozen=True, slots=True)
class Adoption:
    """A RUNNING trial this orchestrator now owns, and whom it was taken from."""

    number: int
    previous: str | None  # None: it had no claim (its asking was cut short)


class Leases:
    """Leases and claims of one study. Blocking: call from the study's storage thread."""

    def __init__(
        self,
        engine: sa.Engine,
        study: str,
        owner: str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wall: Callable[[], float] = time.time,
        where: str | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        """``where``: this orchestrator's :func:`machine` (injectable for tests).

        ``read_only`` (a reader: status, report, ``sweeper.open``): create no table; if
        the tables are not there yet (a sweep that is starting), nobody owns anything."""
        self._engine, self._study, self.owner = engine, study, owner
        self.lease_seconds, self._wall = lease_seconds, wall
        self._where = where if where is not None else machine()
        if not read_only:
            _create_tables(engine)
        self._tables = not read_only or all(
            sa.inspect(engine).has_table(t.name) for t in (_LEASES, _CLAIMS)
        )

    @property
    def renew_every(self) -> float:
        return self.lease_seconds / 3

    def join(self) -> None:
        """Take a lease (asking trials) for this orchestrator."""
        pid = int(self.owner.rsplit(":", 2)[1])
        row = {"host": self._where, "pid": pid, "expires_at": self._expiry(), "asking": True}
        with self._engine.begin() as conn:
            conn.execute(sa.delete(_LEASES).where(*self._mine()))
            conn.execute(sa.insert(_LEASES).values(study=self._study, owner=self.owner, **row))

    def renew(self) -> bool:
        """Extend the lease; False if it had lapsed (others may have adopted our trials)."""
        now = self._wall()
        with self._engine.begin() as conn:
            done = conn.execute(
                sa.update(_LEASES)
                .where(*self._mine(), _LEASES.c.expires_at >= now)
                .values(expires_at=self._expiry())
            )
            if done.rowcount:
                return True
        self.join()
        return False

    def stop_asking(self) -> None:
        """This orchestrator will ask no more trials (others may adopt unclaimed ones)."""
        with self._engine.begin() as conn:
            conn.execute(sa.update(_LEASES).where(*self._mine()).values(asking=False))

    def leave(self) -> None:
        """Give up the lease: what this orchestrator still claims is adoptable at once."""
        with self._engine.begin() as conn:
            conn.execute(sa.delete(_LEASES).where(*self._mine()))

    def claim(self, number: int) -> bool:
        """Claim a trial nobody claims yet; False if someone does."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    sa.insert(_CLAIMS).values(study=self._study, number=number, owner=self.owner)
                )
        except sqlalchemy.exc.IntegrityError:
            return False
        return True

    def owners(self, numbers: Iterable[int]) -> dict[int, str]:
        """Each claimed trial's owner, among ``numbers``."""
        wanted = list(numbers)
        if not wanted or not self._tables:
            return {}
        query = sa.select(_CLAIMS.c.number, _CLAIMS.c.owner).where(
            _CLAIMS.c.study == self._study, _CLAIMS.c.number.in_(wanted)
        )
        with self._engine.connect() as conn:
            return {int(n): str(o) for n, o in conn.execute(query)}

    def live(self) -> dict[str, Orchestrator]:
        """Every other orchestrator whose lease holds and whose process may be alive."""
        if not self._tables:
            return {}
        query = sa.select(_LEASES).where(
            _LEASES.c.study == self._study,
            _LEASES.c.owner != self.owner,
            _LEASES.c.expires_at >= self._wall(),
        )
        with self._engine.connect() as conn:
            rows = list(conn.execute(query))
        return {
            r.owner: Orchestrator(r.owner, r.expires_at, r.asking)
            for r in rows
            if r.host != self._where or _alive(r.pid)
        }

    def adoptable(self, running: Iterable[int]) -> list[Adoption]:
        """Adopt every RUNNING trial (of ``running``, those this orchestrator does not
        hold) whose owner is dead; return them. One it claims itself is returned too: an
        ask that an outage cut short after the claim."""
        numbers = list(running)
        owners, live = self.owners(numbers), self.live()
        asking = any(o.asking for o in live.values())
        out = []
        for number in numbers:
            owner = owners.get(number)
            if owner == self.owner:
                out.append(Adoption(number, owner))
                continue
            if owner in live or (owner is None and asking):
                continue
            if self._take(number, owner):
                out.append(Adoption(number, owner))
        return out

    def _take(self, number: int, previous: str | None) -> bool:
        if previous is None:
            return self.claim(number)
        with self._engine.begin() as conn:
            done = conn.execute(
                sa.update(_CLAIMS)
                .where(
                    _CLAIMS.c.study == self._study,
                    _CLAIMS.c.number == number,
                    _CLAIMS.c.owner == previous,
                )
                .values(owner=self.owner)
            )
        return bool(done.rowcount)

    def _mine(self) -> tuple[sa.ColumnElement[bool], ...]:
        return (_LEASES.c.study == self._study, _LEASES.c.owner == self.owner)

    def _expiry(self) -> float:
        return self._wall() + self.lease_seconds


def _create_tables(engine: sa.Engine) -> None:
    """Make the lease and claim tables unless they exist. Orchestrators starting together
    on a new database both try: the loser's CREATE fails (PostgreSQL: a duplicate in its
    catalog; SQLite: "already exists"), and its next look finds the tables made."""
    for attempt in range(3):
        try:
            _META.create_all(engine)
            return
        except sqlalchemy.exc.DBAPIError:
            if attempt == 2:
                raise
            time.sleep(0.2 * (attempt + 1))


def _alive(pid: int) -> bool:
    """Whether a process of this host is alive (one that is not ours counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
