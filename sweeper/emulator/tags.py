"""AddTags, ListTags and DeleteTags for the emulator's training jobs.

A job's tags live in its record (its request's ``Tags``), so they survive a restart.
Other resources (experiments, trial components) keep no tags here: ListTags answers none
for them and AddTags refuses, naming the ARN (an emulator choice).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sweeper.emulator.errors import validation
from sweeper.emulator.jobs import Job

MAX_TAGS = 50


def add_tags(jobs: Mapping[str, Job], params: dict[str, Any]) -> dict[str, Any]:
    job = _tagged(jobs, params["ResourceArn"])
    new = {t["Key"]: t for t in params["Tags"]}
    kept = [t for t in job.request.get("Tags", []) if t["Key"] not in new]
    if len(kept) + len(new) > MAX_TAGS:
        raise validation(f"A resource may have at most {MAX_TAGS} tags.")
    job.request["Tags"] = kept + list(new.values())
    job.save()
    return {"Tags": params["Tags"]}


def list_tags(jobs: Mapping[str, Job], params: dict[str, Any]) -> dict[str, Any]:
    found = [j for j in jobs.values() if j.arn == params["ResourceArn"]]
    return {"Tags": list(found[0].request.get("Tags", [])) if found else []}


def delete_tags(jobs: Mapping[str, Job], params: dict[str, Any]) -> dict[str, Any]:
    job = _tagged(jobs, params["ResourceArn"])
    gone = set(params["TagKeys"])
    job.request["Tags"] = [t for t in job.request.get("Tags", []) if t["Key"] not in gone]
    job.save()
    return {}


def _tagged(jobs: Mapping[str, Job], arn: str) -> Job:
    for job in jobs.values():
        if job.arn == arn:
            return job
    raise validation(f"The emulator keeps tags of training jobs only; no job has ARN {arn}")


OPERATIONS: dict[str, Callable[[Mapping[str, Job], dict[str, Any]], dict[str, Any]]] = {
    "AddTags": add_tags,
    "ListTags": list_tags,
    "DeleteTags": delete_tags,
}
