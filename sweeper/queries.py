"""What a sweep holds, read back (report, status, the best job's files) and annotated
(notes), for both faces: ``sweep.py report|status|note`` and :class:`sweeper.Sweep`.

Each function opens the study for its own call and closes it before returning, so it
may run while another process runs the sweep (reads are read-only; a note is one
write). Nothing here prints: what the user reads is returned.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper import backend, blas
from sweeper.config import BackendKind, SweepConfig
from sweeper.errors import SweepError
from sweeper.types import JobState

if TYPE_CHECKING:
    from optuna import Study


async def report_document(
    config: SweepConfig,
    top: int = 10,
    html: Path | None = None,
    rank: bool = True,
    reference: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The report document (schema ``sweeper.report/2``) of the study as it is now; with
    ``html``, also a page of plots written there; without ``rank``, its ``importances``
    empty (ranking parameters is the slow part); ``reference``: the hypervolume's
    reference point (several objectives; default: the worst values observed)."""
    blas.import_numpy()
    from sweeper import report
    from sweeper.study import SweepStudy

    study = SweepStudy.open(config, create=False, read_only=True)
    try:
        trials = await study.trials()
        importances = await study.importances(trials) if rank else {}
        notes, runs = await study.notes(), await study.runs()
        pools = await study.warm_pools()
        doc = report.build(config, trials, importances, top, notes, runs, pools, reference)
        if html is not None:
            _write_html(html, doc, study.study)
    finally:
        study.close()
    return doc


def _write_html(path: Path, doc: dict[str, Any], study: Study) -> None:
    from sweeper import report_html  # plotly loads only when asked for

    path.write_text(report_html.render(doc, study), encoding="utf-8")


async def download(ends: backend.Endpoints, job: str, dest: Path) -> list[Path]:
    """A job's ``model.tar.gz`` (S3) and its log (CloudWatch Logs) into ``dest``."""
    from sweeper import artifacts

    async with AsyncExitStack() as stack:
        clients = [await ends.client(stack, s) for s in ("sagemaker", "s3", "logs")]
        return await artifacts.download(job, dest, *clients)


async def add_note(config: SweepConfig, trial: int, text: str) -> str:
    """The note written to the study (replacing an earlier one); the name of the trial's
    Experiments run, which :func:`note_run` updates."""
    blas.import_numpy()
    from sweeper.study import SweepStudy
    from sweeper.tracking import experiments as tracking

    study = SweepStudy.open(config, create=False)
    try:
        await study.add_note(trial, text)
        return tracking.run_of(config, trial, (await study.runs()).get(trial))
    finally:
        study.close()


async def note_run(ends: backend.Endpoints, run: str, text: str) -> None:
    """The note as parameter ``sweeper:note`` of the trial's Experiments run."""
    from sweeper.aws.retry import RetryPolicy
    from sweeper.tracking import experiments as tracking

    async with AsyncExitStack() as stack:
        client = await ends.client(stack, "sagemaker")
        params = {tracking.NOTE: {"StringValue": text[:2500]}}
        await RetryPolicy(attempts=3).call(
            lambda: client.update_trial_component(TrialComponentName=run, Parameters=params)
        )


def note(config: SweepConfig, trial: int, text: str) -> list[tuple[bool, str]]:
    """``text`` as trial ``trial``'s note: in the study (a SweepError if it cannot be),
    then on its Experiments and MLflow runs, the copies their UIs show (blocking; boots
    the sweep's own emulator for the Experiments run). What became of each, as (done,
    sentence) pairs."""
    import asyncio

    run = asyncio.run(add_note(config, trial, text))
    said = [(True, f"noted on trial {trial}")]
    if config.tracking.experiments:
        try:
            with backend.endpoints(config, out=sys.stderr) as ends:
                asyncio.run(note_run(ends, run, text))
            said.append((True, f"noted on its run {run}"))
        except SweepError as exc:
            said.append((False, f"the run {run} was not updated ({exc}); reports show the note"))
    if config.tracking.mlflow is not None:
        said.append(note_mlflow_run(config, trial, text))
    return said


def note_mlflow_run(config: SweepConfig, trial: int, text: str) -> tuple[bool, str]:
    """The note as the description of the trial's MLflow run (``mlflow.note.content``);
    blocking (MLflow's client). Whether the run could be reached, and what became of the
    note, in a sentence."""
    from sweeper.tracking.mlflow import brief
    from sweeper.tracking.mlflow_store import MlflowStore
    from sweeper.tracking.setup import require_mlflow

    mlflow = config.tracking.mlflow
    assert mlflow is not None
    try:
        require_mlflow(config)
        run = MlflowStore(mlflow.tracking_uri, mlflow.experiment).note(config.name, trial, text)
    except Exception as exc:  # not installed, not answering: the study has the note
        return False, f"its MLflow run was not updated ({brief(exc)}); reports show the note"
    if run is None:
        return True, "it has no MLflow run yet; the sweep's next run records the note with it"
    return True, f"noted on its MLflow run {run}"


async def status_text(config: SweepConfig) -> str:
    """``sweep.py status``: counts, the best trial, each running trial's job (and its
    state, where the jobs can be asked: not in an embedded emulator, gone with its
    sweep), the warm pools held."""
    blas.import_numpy()
    from sweeper import console, setting
    from sweeper.study import JOB_NAME, SweepStudy

    study = SweepStudy.open(config, create=False, read_only=True)
    try:
        running = await study.running()
        counts, front = await study.counts(), await study.front()
        named = [r.job_name for r in running if r.job_name]
        if config.estimator.keep_alive_period_in_seconds:  # finished jobs may hold pools
            trials = await study.trials()
            named += [str(t.user_attrs[JOB_NAME]) for t in trials if JOB_NAME in t.user_attrs]
        states = await _job_states(config, named)
        settings = await study.budget_settings()
        live = dataclasses.replace(config, budget=study.budget)
        text = console.status_text(live, counts, front, running, states)
        lines = [text, "  budget:", *setting.budget_lines(config, settings)]
        if warm := await study.warm_start():
            lines.append(f"  warm start ({warm['mode']}): {_parents(warm)}")
        return "\n".join(lines)
    finally:
        study.close()


def _parents(warm: dict[str, Any]) -> str:
    """``20 trials from digits-hgb, 3 skipped (outside this space)``."""
    what = "trials" if warm["mode"] == "identical" else "configurations enqueued"
    said = [f"{n} {what} from {name}" for name, n in warm["added"].items()]
    skipped = sum(warm.get("skipped", {}).values())
    return ", ".join(said) + (f"; {skipped} skipped (outside this space)" if skipped else "")


async def _job_states(config: SweepConfig, named: list[str]) -> dict[str, JobState] | None:
    """The jobs' states; None where they cannot be asked (the embedded emulator)."""
    from sweeper.aws import template
    from sweeper.aws.retry import RetryPolicy
    from sweeper.aws.training import TrainingJobs

    embedded = config.backend.kind == BackendKind.EMULATOR and not config.backend.endpoint_url
    if not named or embedded:
        return None
    ends = backend.Endpoints(
        template.region(config),
        config.backend.endpoint_url,
        credentials=None
        if config.backend.kind == BackendKind.SAGEMAKER
        else template.EMULATOR_CREDENTIALS,
    )
    async with AsyncExitStack() as stack:
        client = await ends.client(stack, "sagemaker")
        return await TrainingJobs(client, RetryPolicy()).poll(named)


def best_job(doc: dict[str, Any], trial: int | None = None) -> str:
    """The best trial's job in a report document, or trial ``trial``'s (which must have
    completed); a SweepError when there is none, or the sweep has several objectives and
    no ``trial`` is named (its Pareto front has no one best)."""
    if trial is not None:
        found = next((t for t in doc["trials"] if t["number"] == trial), None)
        if found is None or found["state"] != "complete" or not found["job"]:
            raise SweepError(f"trial {trial} has not completed (see sweep.py report)")
        return str(found["job"])
    if len(doc["objectives"]) > 1:
        numbers = ", ".join(str(t["number"]) for t in doc["front"][:20]) or "none yet"
        raise SweepError(
            f"several objectives have no one best trial: name one with --trial N (the"
            f" Pareto front: {numbers})"
        )
    if doc["best"] is None:
        raise SweepError("the sweep has no completed trial yet")
    return str(doc["best"]["job"])
