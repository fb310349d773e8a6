"""Creating a trial's job: its request, and what to do when a quota refuses it.

* The warm-pool quota (0 by default on AWS) refuses a keep-alive job: the job is created
  again without keep-alive, and when the quota is 0 the rest of the sweep goes without
  warm pools. No trial fails for it.
* The spot quota refuses a spot job, with ``spot_fallback: on_demand``: the job is
  created on demand (recorded first, so a resumed sweep creates the same job).
* Any other quota (instances) is raised as :class:`CapacityError`: the scheduler waits
  for a running job to end.

Each quota is said once per sweep, in plain words, with the name to raise it under.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from sweeper.aws.names import trial_key
from sweeper.aws.training import JobBackend, JobOptions
from sweeper.capacity import Quota, quota
from sweeper.decisions import Policy
from sweeper.errors import CapacityError
from sweeper.study import SweepStudy, TrialRecord

RequestBuilder = Callable[[str, dict[str, Any], JobOptions], dict[str, Any]]


class JobCreator:
    """Creates jobs for one sweep. Task-safe on one event loop."""

    def __init__(
        self,
        policy: Policy,
        study: SweepStudy,
        backend: JobBackend,
        build: RequestBuilder,
        note: Callable[[str], None],
    ) -> None:
        self._policy = policy
        self._study = study
        self._backend = backend
        self._build = build
        self._note = note
        self._warm_pools = policy.warm_pools
        self._said: set[str] = set()

    def request(self, record: TrialRecord, warm_pool: bool | None = None) -> dict[str, Any]:
        """The CreateTrainingJob request of ``record``'s current job."""
        assert record.job_name is not None
        options = JobOptions(
            checkpoint_key=trial_key(self._policy.sweep, record.number),
            on_demand=record.on_demand,
            warm_pool=self._warm_pools if warm_pool is None else warm_pool,
        )
        params, rungs = record.params, self._policy.rungs
        if rungs is not None:  # promotion: how far this rung's job trains
            params = {**params, rungs.resource: rungs.levels[record.rung]}
        return self._build(record.job_name, params, options)

    async def create(self, record: TrialRecord, extra: dict[str, Any] | None = None) -> TrialRecord:
        """Create the job (``extra`` joins the request); return the record as created
        (``on_demand`` when spot was refused and the sweep falls back)."""
        request, extra = self.request(record), extra or {}
        try:
            await self._backend.create(request | extra)
            return record
        except CapacityError as exc:
            found = quota(exc.message)
            self._say(found)
            if found.warm_pool and "KeepAlivePeriodInSeconds" in request.get("ResourceConfig", {}):
                if found.limit == 0:  # none will fit: the rest of the sweep goes without
                    self._warm_pools = False
                await self._backend.create(self.request(record, warm_pool=False) | extra)
                return record
            if found.spot and self._policy.spot_fallback and not record.on_demand:
                assert record.job_name is not None
                await self._study.assign_job(
                    record.number, record.job_name, record.attempt, True, record.rung
                )
                record = dataclasses.replace(record, on_demand=True)
                await self._backend.create(self.request(record) | extra)
                return record
            raise

    def _say(self, found: Quota) -> None:
        if found.name in self._said:
            return
        self._said.add(found.name)
        if found.warm_pool:
            then = (
                "the sweep goes on without warm pools"
                if found.limit == 0
                else "jobs that do not fit run without a warm pool"
            )
        elif found.spot and self._policy.spot_fallback:
            then = "trials that do not fit run on demand"
        else:
            then = "trials wait until a job fits (none fails for it)"
        self._note(f"{found.advice()}; {then}")
