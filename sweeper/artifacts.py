"""A trial's model artifact and log, fetched the way a user would: S3 and CloudWatch Logs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sweeper.aws.logs import JobLogs
from sweeper.aws.retry import RetryPolicy
from sweeper.aws.s3 import S3
from sweeper.errors import SweepError


async def download(job: str, dest: Path, sagemaker: Any, s3: Any, logs: Any) -> list[Path]:
    """Write ``job``'s ``model.tar.gz`` (from ``ModelArtifacts``) and ``<job>.log`` into
    ``dest``; return their paths. Files are complete or absent, never partial."""
    retry = RetryPolicy()
    described = await retry.call(lambda: sagemaker.describe_training_job(TrainingJobName=job))
    uri = (described.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if not uri:
        raise SweepError(f"job {job} has no model artifact ({described['TrainingJobStatus']})")
    await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
    model = dest / "model.tar.gz"
    await S3(s3, retry).download(uri, model)
    log = dest / f"{job}.log"
    text = await JobLogs(logs, retry).text(job)
    await asyncio.to_thread(log.write_text, text, encoding="utf-8")
    return [model, log]
