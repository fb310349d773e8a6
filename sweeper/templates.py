"""What every trial's CreateTrainingJob request is built from, made ready at start-up.

Two sources: the space file's ``estimator:`` section (Sweeper packs and uploads the code
and builds each request itself: :class:`SpaceFileJobs`), and a SageMaker SDK Estimator
handed to :class:`sweeper.Sweep` (the SDK builds the request once:
:mod:`sweeper.api.estimators`). The composition root (:mod:`sweeper.session`) knows
them only as a :class:`JobSource`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Protocol

from sweeper.aws import code, template
from sweeper.aws.retry import RetryPolicy
from sweeper.aws.s3 import S3
from sweeper.aws.training import build_request
from sweeper.config import SweepConfig

if TYPE_CHECKING:
    from sweeper.backend import Endpoints
    from sweeper.creation import RequestBuilder


@dataclass(frozen=True, slots=True)
class Ready:
    """A sweep's request builder (job name, sampled parameters, options -> request) and
    the S3 prefix its jobs write their models under."""

    build: RequestBuilder
    output_path: str


class JobSource(Protocol):
    """Makes a sweep's requests ready: uploads what must be on S3 before any job starts."""

    async def prepare(
        self,
        config: SweepConfig,
        ends: Endpoints,
        stack: AsyncExitStack,
        say: Callable[[str], None],
    ) -> Ready: ...


class SpaceFileJobs:
    """The space file's estimator: Sweeper's content-addressed code upload and requests."""

    async def prepare(
        self,
        config: SweepConfig,
        ends: Endpoints,
        stack: AsyncExitStack,
        say: Callable[[str], None],
    ) -> Ready:
        plan = await upload(config, ends, stack, say)
        return Ready(partial(build_request, plan.template), plan.template.output_path)


async def output_path(config: SweepConfig, ends: Endpoints, stack: AsyncExitStack, s3: S3) -> str:
    """The sweep's output path, its bucket made where Sweeper may make it
    (:func:`sweeper.aws.template.resolve_output_path`)."""
    sts = await ends.client(stack, "sts") if not config.estimator.output_path else None
    return await template.resolve_output_path(config, ends.region, s3, sts, RetryPolicy())


async def upload(
    config: SweepConfig, ends: Endpoints, stack: AsyncExitStack, say: Callable[[str], None]
) -> template.Plan:
    """Resolve the output path (default bucket), then upload code and local inputs that
    are not on S3 yet (each upload said to ``say``)."""
    s3 = S3(await ends.client(stack, "s3"), RetryPolicy())
    plan = template.plan(config, ends.region, await output_path(config, ends, stack, s3))
    for item in plan.uploads:
        await code.upload(item, s3, say=say)
    return plan
