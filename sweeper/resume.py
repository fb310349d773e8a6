"""Resume: trials taken over RUNNING, looked up by each trial's recorded job name.

At start, an orchestrator takes over what an earlier run left RUNNING; later, what a dead
orchestrator sharing the sweep left. Every trial's job name is stored before its job is
created, so one batched poll tells, for each such trial, whether its job still runs
(re-attach it), has ended while no one watched (judge it), or was never created
(create it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sweeper.aws.training import JobBackend
from sweeper.study import TrialRecord
from sweeper.types import JobState


@dataclass(frozen=True, slots=True)
class Reconciled:
    running: list[TrialRecord] = field(default_factory=list)  # their jobs still run
    ended: list[tuple[TrialRecord, JobState]] = field(default_factory=list)  # to judge
    to_launch: list[TrialRecord] = field(default_factory=list)  # no job yet


async def reconcile(
    records: list[TrialRecord], backend: JobBackend, note: Callable[[str], None]
) -> Reconciled:
    """Sort trials by the state of their recorded jobs (one batched poll)."""
    named = {r.job_name: r for r in records if r.job_name}
    states = await backend.poll(list(named)) if named else {}
    found = Reconciled(to_launch=[r for r in records if not r.job_name])
    for name, record in named.items():
        state = states.get(name)
        if state is None:
            note(f"trial {record.number}: job {name} not found; creating it")
            found.to_launch.append(record)
        elif not state.status.is_terminal:
            note(f"trial {record.number}: re-attached {name} ({state.secondary_status})")
            found.running.append(record)
        else:
            found.ended.append((record, state))
    return found
