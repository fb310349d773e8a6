"""The shapes of Experiments records and answers in the emulator: a new record, its
public view, list pages, metric summaries, and AWS's quota and not-found errors."""

from __future__ import annotations

import json
import math
import statistics
import time
from typing import Any

from sweeper.emulator.errors import AwsError
from sweeper.emulator.search import paginate

QUOTA = (
    "The account-level service limit '{name}' is {limit} {unit}, with current utilization of"
    " {used} {unit} and a request delta of 1 {unit}. Please use AWS Service Quotas to request"
    " an increase for this quota. If AWS Service Quotas is not available, contact AWS support"
    " to request an increase for this quota."
)
COMPONENTS_PER_TRIAL = (
    "Total number of trial components allowed in a single trial, excluding those"
    " automatically created by SageMaker"
)
TRIALS_PER_EXPERIMENT = "Total number of trials allowed in a single experiment"


def missing(kind: str, name: str) -> AwsError:
    return AwsError("ResourceNotFound", f"{kind} '{name}' does not exist.")


def record(p: dict[str, Any], name_key: str, arn_key: str, arn: str) -> dict[str, Any]:
    now = time.time()
    rec = {k: v for k, v in p.items()}
    rec.update({arn_key: arn, "CreationTime": now, "LastModifiedTime": now})
    rec.setdefault("DisplayName", p[name_key])
    return rec


def public(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in ("parents", "metric_values")}


def listing(items: list[dict[str, Any]], p: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    sort = "CreationTime" if p.get("SortBy", "CreationTime") == "CreationTime" else name
    items = sorted(
        items, key=lambda r: r[sort], reverse=p.get("SortOrder", "Descending") == "Descending"
    )
    if "CreatedAfter" in p:
        items = [r for r in items if r["CreationTime"] > float(p["CreatedAfter"])]
    if "CreatedBefore" in p:
        items = [r for r in items if r["CreationTime"] < float(p["CreatedBefore"])]
    page, token = paginate(items, p, default=10)
    keep = {
        name,
        name.replace("Name", "Arn"),
        "DisplayName",
        "Source",
        "Status",
        "StartTime",
        "EndTime",
        "CreationTime",
        "LastModifiedTime",
    }
    out: dict[str, Any] = {key: [{k: v for k, v in r.items() if k in keep} for r in page]}
    if token:
        out["NextToken"] = token
    return out


def summary(name: str, values: list[list[float]], rec: dict[str, Any]) -> dict[str, Any]:
    numbers = [v[2] for v in values]
    return {
        "MetricName": name,
        "SourceArn": rec["TrialComponentArn"],
        "TimeStamp": values[-1][0],
        "Max": max(numbers),
        "Min": min(numbers),
        "Last": numbers[-1],
        "Count": len(numbers),
        "Avg": statistics.fmean(numbers),
        "StdDev": statistics.stdev(numbers) if len(numbers) > 1 else 0.0,
    }


def parameter(text: str) -> dict[str, Any]:
    """A hyperparameter as the job's component shows it: a number if it is one."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"StringValue": text}
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return {"NumberValue": float(value)}
    return {"StringValue": value if isinstance(value, str) else text}


def quota(name: str, limit: int, unit: str, used: int) -> AwsError:
    return AwsError(
        "ResourceLimitExceeded", QUOTA.format(name=name, limit=limit, unit=unit, used=used)
    )
