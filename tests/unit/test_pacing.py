"""The loop's pacing of slow work, as pure decisions."""

from __future__ import annotations

from sweeper.pacing import Pacing


def test_asks_due_count_every_ask_that_may_be_needed_before_a_round_ends() -> None:
    pace = Pacing(ask_seconds=0.5)
    launched = [0.0, 0.1, 0.2, 0.3]  # four 10 s jobs; the next poll at 8 s
    # 4 asks of 0.5 s from the poll at 8 s, plus a tenth of a job: all four may end by 11 s
    assert pace.asks_due(now=7.0, deadline=8.0, expected=10.0, launched=launched, have=0) == 4
    # with three ready, one ask is left: the horizon (9.5 s) holds none of the ends
    assert pace.asks_due(now=7.0, deadline=8.0, expected=10.0, launched=launched, have=3) == 0


def test_before_any_end_one_trial_per_job_is_asked_in_a_wait_that_holds_the_asks() -> None:
    pace = Pacing(ask_seconds=0.5)
    launched = [0.0, 0.1, 0.2]  # nothing has ended yet: no expected duration
    # one trial is ready: the two asks left take 1 s, longer than the wait; none now
    assert pace.asks_due(now=5.0, deadline=5.8, expected=None, launched=launched, have=1) == 1
    # a wait of 1 s holds them: one trial ready for each job in flight
    assert pace.asks_due(now=5.0, deadline=6.0, expected=None, launched=launched, have=1) == 3


def test_writes_give_way_to_a_due_poll_for_a_while_only() -> None:
    pace = Pacing()
    pace.wrote(seconds=0.5, count=5)  # 0.1 s a result
    assert not pace.writes_wait(now=0.0, deadline=1.0, pending=2, patience=1.0)  # they fit
    assert pace.writes_wait(now=0.95, deadline=1.0, pending=2, patience=1.0)
    assert pace.writes_wait(now=1.5, deadline=1.55, pending=2, patience=1.0)
    assert not pace.writes_wait(now=2.0, deadline=2.05, pending=2, patience=1.0)  # waited 1 s
    pace.wrote(seconds=0.0, count=0)  # nothing written: nothing learnt
    assert pace.write_seconds == 0.5 / 5
