"""Money: what a job's billable seconds and its warm pool's retained seconds cost.

SageMaker bills a job's ``BillableTimeInSeconds`` (spot's already discounted) and a warm
pool's ``ResourceRetainedBillableTimeInSeconds`` (at the on-demand price), per instance.
"""

from __future__ import annotations

from dataclasses import dataclass

from sweeper.config import Estimator


@dataclass(frozen=True, slots=True)
class Price:
    """USD per second for one job's instances, on demand."""

    per_second: float

    @classmethod
    def of(cls, est: Estimator) -> Price | None:
        """The estimator's price (None when ``instance_price_per_hour`` is not given)."""
        if est.instance_price_per_hour is None:
            return None
        return cls(est.instance_price_per_hour * est.instance_count / 3600)

    def job(self, billable: float, pool_seconds: float = 0.0) -> float:
        """What a job cost: its billable seconds and its pool's retained seconds."""
        return (billable + pool_seconds) * self.per_second
