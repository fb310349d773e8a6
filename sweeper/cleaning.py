"""``sweep.py clean SPACE``: what a sweep created, listed (a dry run), then with ``--yes``
removed, and nothing that another sweep made.

What is this sweep's comes from its study, never from a name pattern: the Experiments
runs it recorded (``sweeper:run:<n>``), the jobs it named (each trial's attempts), and
from those their SageMaker job components (``<job>-aws-training-job``), the S3 prefixes
of its code, checkpoints and outputs, and its MLflow runs (by their ``sweeper.sweep``
tag). Experiments go in the order SageMaker requires: each of our components is
disassociated and deleted, then a run group with nothing left in it, then an experiment
with no trial left (one shared with another sweep keeps that sweep's). The study goes
last, so a clean cut short finds the rest on its next run; a second run finds nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

from sweeper import backend
from sweeper.aws.experiments import run_group
from sweeper.aws.names import job_name, trial_key
from sweeper.aws.retry import RetryPolicy
from sweeper.aws.s3 import join, split
from sweeper.config import SweepConfig
from sweeper.errors import BackendError, ConfigError

GONE = ("ResourceNotFound", "NoSuchBucket", "NoSuchKey")  # deleted elsewhere: not an error
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Targets:
    """What to clean; none named: everything the sweep has."""

    experiments: bool = False
    mlflow: bool = False
    s3: bool = False
    study: bool = False

    def chosen(self) -> Targets:
        if any(dataclasses.astuple(self)):
            return self
        return Targets(True, True, True, True)


@dataclass(frozen=True, slots=True)
class Owned:
    """What the study says the sweep made."""

    runs: dict[str, str]  # Experiments run component -> its experiment
    jobs: tuple[str, ...]
    trials: tuple[int, ...]


def clean(config: SweepConfig, targets: Targets, yes: bool, say: Say) -> int:
    """List (``yes`` False) or remove what ``targets`` name; return how many things were
    found. Blocking (boots the sweep's own emulator where it has one). ConfigError
    (nothing removed) if there is no such sweep, or, with ``yes``, an orchestrator runs
    it now."""
    targets = targets.chosen()
    owned = asyncio.run(_owned(config, yes))
    found = 0
    experiments = targets.experiments and config.tracking.experiments
    if experiments or targets.s3:
        with backend.endpoints(config, out=sys.stderr) as ends:
            found += asyncio.run(
                _remote(config, ends, owned, Targets(experiments, s3=targets.s3), yes, say)
            )
    if targets.mlflow and config.tracking.mlflow is not None:
        found += _mlflow(config, yes, say)
    if targets.study:
        found += _study(config, yes, say)
    return found


async def _remote(
    config: SweepConfig,
    ends: backend.Endpoints,
    owned: Owned,
    targets: Targets,
    yes: bool,
    say: Say,
) -> int:
    found = 0
    async with AsyncExitStack() as stack:
        if targets.experiments:
            found += await _experiments(await ends.client(stack, "sagemaker"), owned, yes, say)
        if targets.s3:
            s3, sts = await ends.client(stack, "s3"), await ends.client(stack, "sts")
            found += await _s3(config, ends.region, s3, sts, owned, yes, say)
    return found


async def _owned(config: SweepConfig, yes: bool) -> Owned:
    from sweeper.study import SweepStudy

    study = SweepStudy.open(config, create=False, read_only=not yes)
    try:
        if yes and (live := await study.live_orchestrators()):
            raise ConfigError(
                f"sweep {config.name!r} is running ({', '.join(sorted(live))} hold a lease):"
                " stop it, or wait for it to end, before cleaning it"
            )
        return await _records(study, config.name)
    finally:
        study.close()


async def _records(study: Any, name: str) -> Owned:
    from sweeper.study import ATTEMPT, JOB_NAME

    runs = {str(r["run"]): str(r["experiment"]) for r in (await study.runs()).values()}
    jobs, numbers = [], []
    for t in await study.trials():
        if JOB_NAME not in t.user_attrs:
            continue
        numbers.append(t.number)
        attempts = int(t.user_attrs.get(ATTEMPT, 1))
        jobs += [job_name(name, t.number, a) for a in range(1, attempts + 1)]
    return Owned(runs, tuple(jobs), tuple(numbers))


async def _call(fn: Callable[[], Awaitable[Any]]) -> Any:
    """One call with retries (throttling); what was deleted elsewhere answers None."""
    try:
        return await RetryPolicy(attempts=8).call(fn)
    except BackendError as exc:
        if exc.code in GONE or "does not exist" in exc.message:
            return None
        raise


async def _listed(
    fn: Callable[..., Awaitable[Any]], key: str, **query: Any
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token = None
    while True:
        more: dict[str, str] = {"NextToken": token} if token else {}
        page = await _call(partial(fn, **query, **more))
        if page is None:
            return out
        out += page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return out


async def _experiments(sm: Any, owned: Owned, yes: bool, say: Say) -> int:
    ours = set(owned.runs) | {f"{job}-aws-training-job" for job in owned.jobs}
    found = 0
    for experiment in sorted(set(owned.runs.values())):
        if await _call(partial(sm.describe_experiment, ExperimentName=experiment)) is None:
            continue  # gone already (an earlier clean)
        group = run_group(experiment)
        listed = await _listed(sm.list_trial_components, "TrialComponentSummaries", TrialName=group)
        members = {c["TrialComponentName"] for c in listed}
        mine = sorted(members & ours)
        loose = [
            r
            for r, e in sorted(owned.runs.items())
            if e == experiment
            and r not in members
            and await _call(partial(sm.describe_trial_component, TrialComponentName=r))
        ]
        say(
            f"experiment {experiment}: {len(mine)} trial components in run group {group}"
            f"{f', {len(loose)} not in it' if loose else ''}"
        )
        found += len(mine) + 1
        if not yes:
            continue
        for name in mine:
            await _call(
                partial(sm.disassociate_trial_component, TrialComponentName=name, TrialName=group)
            )
        for name in mine + loose:
            await _call(partial(sm.delete_trial_component, TrialComponentName=name))
        if not members - set(mine):
            await _call(partial(sm.delete_trial, TrialName=group))
        trials = await _listed(sm.list_trials, "TrialSummaries", ExperimentName=experiment)
        if not trials:
            await _call(partial(sm.delete_experiment, ExperimentName=experiment))
            say(f"  deleted experiment {experiment}")
        else:
            say(f"  kept experiment {experiment}: it holds {len(trials)} trial(s) of others")
    return found


async def _s3(
    config: SweepConfig, region: str, s3: Any, sts: Any, owned: Owned, yes: bool, say: Say
) -> int:
    from sweeper.aws import template
    from sweeper.aws.s3 import account_id

    est = config.estimator
    output = est.output_path or template.default_output_path(
        config, region, await account_id(sts, RetryPolicy())
    )
    prefixes = [join(output, config.name) + "/"] + [join(output, j) + "/" for j in owned.jobs]
    if est.checkpoint_s3_uri:
        prefixes += [
            join(est.checkpoint_s3_uri, trial_key(config.name, n)) + "/" for n in owned.trials
        ]
    found = 0
    for uri in prefixes:
        bucket, prefix = split(uri)
        objects = await _listed(s3.list_objects_v2, "Contents", Bucket=bucket, Prefix=prefix)
        keys = [o["Key"] for o in objects]
        if not keys:
            continue
        found += len(keys)
        say(f"s3://{bucket}/{prefix}: {len(keys)} object(s)")
        for i in range(0, len(keys) if yes else 0, 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            await _call(partial(s3.delete_objects, Bucket=bucket, Delete={"Objects": batch}))
    return found


def _mlflow(config: SweepConfig, yes: bool, say: Say) -> int:
    from sweeper.tracking.mlflow_store import MlflowStore
    from sweeper.tracking.setup import require_mlflow

    mlflow = config.tracking.mlflow
    assert mlflow is not None
    require_mlflow(config)
    store = MlflowStore(mlflow.tracking_uri, mlflow.experiment)
    runs = store.runs(config.name)
    say(f"MLflow: {len(runs)} run(s) of experiment {mlflow.experiment}")
    for run in runs if yes else ():
        store.delete(run.run_id)
    return len(runs)


def _study(config: SweepConfig, yes: bool, say: Say) -> int:
    import optuna

    from sweeper.study.storage import redacted

    say(f"study {config.name} in {redacted(config.storage_url)}")
    if yes:
        optuna.delete_study(study_name=config.name, storage=config.storage_url)
    return 1
