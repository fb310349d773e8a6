"""Trial ownership among orchestrators sharing a study, and storage outages (SQLite files;
the wall clock of leases is injected)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.exc
from optuna.trial import TrialState

from sweeper import config
from sweeper.aws.retry import RetryPolicy
from sweeper.errors import StorageUnavailable
from sweeper.study import SweepStudy, ownership
from sweeper.study.ownership import Leases, machine
from sweeper.study.storage import open_storage
from tests.helpers import space_doc, write_sweep


class Wall:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _leases(tmp_path: Path, owner: str, wall: Wall) -> Leases:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'leases.db'}")
    return Leases(engine, "quad", f"host:{owner}:0", lease_seconds=30, wall=wall)


def test_a_dead_orchestrators_trial_is_adopted_once_its_lease_expires(tmp_path: Path) -> None:
    wall = Wall()
    a, b, c = (_leases(tmp_path, name, wall) for name in ("1", "2", "3"))
    for member in (a, b, c):
        member.join()
    assert a.claim(0) and not b.claim(0)  # a claim is exclusive
    assert b.adoptable([0]) == []  # a's lease holds
    wall.now += 20
    b.renew(), c.renew()
    assert b.adoptable([0]) == []
    wall.now += 11  # a has been silent for 31 s
    first, second = b.adoptable([0]), c.adoptable([0])
    assert [t.previous for t in first] == ["host:1:0"] and second == []  # one adopter wins
    assert b.owners([0]) == {0: "host:2:0"}


def test_an_orchestrator_that_leaves_gives_its_trials_up_at_once(tmp_path: Path) -> None:
    wall = Wall()
    a, b = _leases(tmp_path, "1", wall), _leases(tmp_path, "2", wall)
    a.join(), b.join()
    a.claim(3)
    a.leave()
    assert [t.number for t in b.adoptable([3])] == [3]


def test_unclaimed_trials_wait_while_another_orchestrator_still_asks(tmp_path: Path) -> None:
    wall = Wall()
    a, b = _leases(tmp_path, "1", wall), _leases(tmp_path, "2", wall)
    a.join(), b.join()
    assert b.adoptable([5]) == []  # a may be asking trial 5 right now
    a.stop_asking()
    (taken,) = b.adoptable([5])
    assert (taken.number, taken.previous) == (5, None)


def test_a_lapsed_lease_is_reported_when_renewed(tmp_path: Path) -> None:
    wall = Wall()
    a = _leases(tmp_path, "1", wall)
    a.join()
    wall.now += 10
    assert a.renew()
    wall.now += 31
    assert not a.renew()  # others may have adopted its trials meanwhile
    assert a.renew()


def _study(tmp_path: Path, max_trials: int, sampler: str = "tpe") -> SweepStudy:
    doc = space_doc(budget={"max_trials": max_trials}, sampler={"kind": sampler, "seed": 1})
    cfg = config.load(write_sweep(tmp_path, doc))
    return SweepStudy.open(cfg, storage=f"sqlite:///{tmp_path / 'study.db'}")


@pytest.mark.parametrize("sampler", ["tpe", "random"])  # random: no Optuna cache in front
async def test_two_studies_on_one_file_ask_exactly_the_budget(tmp_path: Path, sampler: str) -> None:
    one, two = _study(tmp_path, 5, sampler), _study(tmp_path, 5, sampler)
    await one.join(), await two.join()
    namer = lambda n, a: f"quad-{n}-{a}"  # noqa: E731
    asked = await asyncio.gather(*(s.ask(namer) for s in (one, two) * 4))
    got = [r for r in asked if r is not None]
    assert len(got) == 5 and len(asked) - len(got) == 3
    trials = await one.trials()
    assert sum(t.state == TrialState.RUNNING for t in trials) == 5
    assert sum(t.state == TrialState.PRUNED for t in trials) == 3  # closed, not launched
    owners = {r.number: r.owner for r in await one.running()}
    assert {r.number: r.owner for r in got} == owners
    # A trial closed before launch gives its place in the budget back.
    holder = one if got[0].owner == one.owner else two
    await holder.tell_pruned(got[0].number, "not launched")
    assert await one.ask(namer) is not None
    assert await two.ask(namer) is None
    one.close(), two.close()


async def test_an_orchestrator_frozen_mid_ask_holds_the_others_up_for_its_lease_only(
    tmp_path: Path, pg_url: str
) -> None:
    """Optuna numbers a new trial under a lock on the study's row. Another orchestrator
    frozen while it holds that lock (SIGSTOP, a paused VM) would stall this one's asks
    for as long as it stays frozen; the server ends its session after the lease."""
    doc = space_doc(budget={"max_trials": 5})
    cfg = config.load(write_sweep(tmp_path, doc))
    study = SweepStudy.open(cfg, storage=pg_url, lease_seconds=3)
    frozen = open_storage(pg_url, idle_seconds=3)  # the other orchestrator's
    assert frozen is not None
    conn = frozen.engine.connect()
    try:
        await study.join()
        conn.execute(sa.text("SELECT study_id FROM studies FOR UPDATE"))  # then silence
        record = await asyncio.wait_for(study.ask(lambda n, a: f"quad-{n}-{a}"), timeout=60)
        assert record is not None and record.number == 0
        with pytest.raises(sqlalchemy.exc.DatabaseError, match="idle-in-transaction"):  # thawed
            conn.execute(sa.text("SELECT 1"))
    finally:
        conn.close()  # a lock still held (the test failing) is let go before the close
        study.close()


def test_the_idle_bound_keeps_the_options_the_url_gives(pg_url: str) -> None:
    rdb = open_storage(f"{pg_url}?options=-c%20statement_timeout%3D12345", idle_seconds=3)
    assert rdb is not None
    with rdb.engine.connect() as conn:
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "12345ms"
        idle = conn.execute(sa.text("SHOW idle_in_transaction_session_timeout")).scalar_one()
        assert idle == "3s"
    rdb.engine.dispose()


async def test_a_storage_outage_is_retried_then_reported_once(tmp_path: Path) -> None:
    study = _study(tmp_path, 3)
    study._retry = RetryPolicy(attempts=100, initial=0.01, maximum=0.02, within=0.5)
    notes: list[str] = []
    study.note = notes.append
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed"))
        return "written"

    assert await study._run(flaky) == "written"
    assert len(notes) == 2 and "server closed" in notes[0] and "retrying" in notes[0]

    def down() -> None:
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("refused"))

    with pytest.raises(StorageUnavailable, match="has not answered"):
        await study._run(down)
    calls.clear()
    with pytest.raises(StorageUnavailable):  # given up: the exit path does not wait again
        await study._run(flaky)
    assert len(calls) == 1
    study.close()


async def test_a_trial_adopted_from_a_silent_orchestrator_is_not_told_by_it(
    tmp_path: Path,
) -> None:
    """An orchestrator paused past its lease comes back holding a trial another adopted:
    its result is not told (the adopter's is), so a trial never gets two verdicts."""
    wall = Wall()
    one, two = _study(tmp_path, 2, "random"), _study(tmp_path, 2, "random")
    for s in (one, two):
        s._leases._wall = wall
    await one.join(), await two.join()
    record = await one.ask(lambda n, a: f"quad-{n}-{a}")
    assert record is not None
    await one.stop_asking()
    wall.now += 61  # one is silent past its lease
    await two.heartbeat()
    (adopted,) = await two.adopt()
    assert adopted.record.number == record.number
    await one.tell_complete(record.number, (9.0,), {})  # too late: not its trial any more
    (trial,) = [t for t in await two.trials() if t.number == record.number]
    assert trial.state == TrialState.RUNNING
    await two.tell_complete(record.number, (1.0,), {})
    (trial,) = [t for t in await one.trials() if t.number == record.number]
    assert (trial.state, trial.value) == (TrialState.COMPLETE, 1.0)
    one.close(), two.close()


def test_a_gone_process_is_dead_only_where_its_pid_means_it(tmp_path: Path) -> None:
    """Same host, boot and pid namespace: a pid that is gone is a dead orchestrator, at
    once. Elsewhere (another host, or a container sharing this host name) a pid says
    nothing, and only the lease decides."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    wall = Wall()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'leases.db'}")
    here = Leases(engine, "quad", f"host:{gone.pid}:a", wall=wall)
    there = Leases(engine, "quad", f"host:{gone.pid}:b", wall=wall, where="other/boot/pid:[1]")
    me = Leases(engine, "quad", f"host:{os.getpid()}:c", wall=wall)
    for member in (here, there, me):
        member.join()
    assert set(me.live()) == {f"host:{gone.pid}:b"}
    with engine.connect() as conn:
        hosts = {r[0] for r in conn.execute(sa.text("SELECT host FROM sweeper_orchestrators"))}
    assert hosts == {machine(), "other/boot/pid:[1]"}


def test_tables_made_by_another_orchestrator_meanwhile_are_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two orchestrators on a new database both create the tables; the loser's CREATE
    fails (as PostgreSQL's catalog or SQLite answer it): it looks again and goes on."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'leases.db'}")
    real, calls = ownership._META.create_all, []

    def racing(bind: sa.Engine) -> None:
        calls.append(1)
        real(bind)  # the winner made them just now
        if len(calls) == 1:
            raise sqlalchemy.exc.IntegrityError("CREATE TABLE", {}, Exception("duplicate key"))

    monkeypatch.setattr(ownership._META, "create_all", racing)
    leases = Leases(engine, "quad", "host:1:0")
    leases.join()
    assert len(calls) == 2 and leases.claim(0)


async def test_an_orchestrator_taken_for_dead_mid_work_goes_on_without_error(
    tmp_path: Path,
) -> None:
    """Silent past its lease in the middle of an ask (or with a trial another then
    closed), an orchestrator finds the trial closed by the adopter: it asks another one,
    and writes nothing to the closed trial."""
    wall = Wall()
    one, two = _study(tmp_path, 5, "random"), _study(tmp_path, 5, "random")
    for s in (one, two):
        s._leases._wall = wall
    await one.join(), await two.join()
    namer = lambda n, a: f"quad-{n}-{a}"  # noqa: E731
    held = await one.ask(namer)
    assert held is not None
    await one.stop_asking()
    real_ask = one._study.ask

    def paused_mid_ask(fixed: Any) -> Any:
        one._study.ask = real_ask  # type: ignore[method-assign]
        orphan = real_ask()  # created; its sampling is cut short by the pause
        wall.now += 61
        two._leases.renew()
        for taken in two._adopt():  # one is taken for dead: two closes what it holds
            two._tell(taken.record.number, TrialState.FAIL, None, {})
        orphan.suggest_float("x", 0, 1)  # sampling goes on: the trial is closed
        raise AssertionError("a closed trial took a parameter")

    one._study.ask = paused_mid_ask  # type: ignore[method-assign]
    record = await one.ask(namer)
    assert record is not None and record.number == 2  # 1 was closed under it
    await one.assign_job(held.number, namer(held.number, 2), 2)  # closed by two: no error
    assert await one.report(held.number, [(0, 1.0)]) is False
    states = {t.number: t.state for t in await one.trials()}
    assert states == {0: TrialState.FAIL, 1: TrialState.PRUNED, 2: TrialState.RUNNING}
    one.close(), two.close()
