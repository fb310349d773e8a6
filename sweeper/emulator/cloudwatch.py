"""CloudWatch metrics for the emulator's jobs: GetMetricStatistics, GetMetricData and
ListMetrics over the values each job's metric definitions capture.

As SageMaker publishes them: namespace ``/aws/sagemaker/TrainingJobs``, metric name the
definition's ``Name``, one dimension ``TrainingJobName``, unit ``None``. A query matches
a metric only with exactly its dimensions, as CloudWatch does (so a query without the
``TrainingJobName`` dimension finds nothing).

Choices where AWS is not documented or not followed: points are kept at full resolution
and any period of 1, 5, 10, 20, 30 or a multiple of 60 seconds buckets them (buckets
start at multiples of the period since the epoch); metric math (``Expression``) is not
evaluated; GetMetricData answers in one page.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sweeper.emulator import search
from sweeper.emulator.errors import AwsError
from sweeper.emulator.jobs import Job
from sweeper.emulator.metric_series import MetricSeries, Point

TARGET = "GraniteServiceVersion20100801"  # CloudWatch's target prefix (botocore's model)
NAMESPACE = "/aws/sagemaker/TrainingJobs"
DIMENSION = "TrainingJobName"
MAX_DATAPOINTS = 1440  # per GetMetricStatistics answer
_SHORT_PERIODS = (1, 5, 10, 20, 30)
_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?|100)")

Operation = Callable[[dict[str, Any]], dict[str, Any]]


def query_error(err: AwsError) -> tuple[dict[str, str], dict[str, str]]:
    """The body and headers of ``err`` as CloudWatch (a query-compatible service) sends
    them: clients read the error code from ``x-amzn-query-error``."""
    code = "ValidationError" if err.code == "ValidationException" else err.code
    fault = "Receiver" if err.status >= 500 else "Sender"
    return {**err.body(), "__type": code}, {"x-amzn-query-error": f"{code};{fault}"}


def invalid(message: str) -> AwsError:
    return AwsError("InvalidParameterValue", message)


def combination(message: str) -> AwsError:
    return AwsError("InvalidParameterCombination", message)


class CloudWatch:
    """The three read operations over ``series`` and the ``jobs`` they belong to."""

    def __init__(self, series: MetricSeries, jobs: Mapping[str, Job]) -> None:
        self._series = series
        self._jobs = jobs

    def operations(self) -> dict[str, Operation]:
        return {
            "GetMetricStatistics": self.get_metric_statistics,
            "GetMetricData": self.get_metric_data,
            "ListMetrics": self.list_metrics,
        }

    def get_metric_statistics(self, params: dict[str, Any]) -> dict[str, Any]:
        start, end = epoch(params["StartTime"]), epoch(params["EndTime"])
        period = _period(params["Period"])
        statistics = params.get("Statistics") or []
        extended = params.get("ExtendedStatistics") or []
        if bool(statistics) == bool(extended):
            raise combination("Exactly one of the Statistics or ExtendedStatistics parameters")
        for name in extended:
            _percentile(name)
        _check_range(start, end)
        wanted = math.ceil((end - start) / period)
        if wanted > MAX_DATAPOINTS:
            raise combination(
                f"You have requested up to {wanted:,} datapoints, which exceeds the limit of "
                f"{MAX_DATAPOINTS:,}. You may reduce the datapoints requested by increasing "
                "Period, or decreasing the time range."
            )
        points = self._points(params) if params.get("Unit", "None") == "None" else []
        datapoints = []
        for bucket, values in _buckets(points, start, end, period):
            point: dict[str, Any] = {"Timestamp": timestamp(bucket), "Unit": "None"}
            point |= {s: statistic(s, values) for s in statistics}
            if extended:
                point["ExtendedStatistics"] = {p: statistic(p, values) for p in extended}
            datapoints.append(point)
        return {"Label": params["MetricName"], "Datapoints": datapoints}

    def get_metric_data(self, params: dict[str, Any]) -> dict[str, Any]:
        start, end = epoch(params["StartTime"]), epoch(params["EndTime"])
        _check_range(start, end)
        newest_first = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
        results = []
        for query in params["MetricDataQueries"]:
            stat = query.get("MetricStat")
            if stat is None:
                raise invalid(f"The emulator does not evaluate metric math (query {query['Id']!r})")
            _check_stat(stat["Stat"])
            metric = stat["Metric"]
            found = self._points(metric) if stat.get("Unit", "None") == "None" else []
            rows = [
                (timestamp(b), statistic(stat["Stat"], values))
                for b, values in _buckets(found, start, end, _period(stat["Period"]))
            ]
            rows.sort(key=lambda row: row[0], reverse=newest_first)
            if query.get("ReturnData", True):
                results.append(
                    {
                        "Id": query["Id"],
                        "Label": query.get("Label") or metric.get("MetricName", ""),
                        "Timestamps": [t for t, _ in rows],
                        "Values": [v for _, v in rows],
                        "StatusCode": "Complete",
                    }
                )
        return {"MetricDataResults": results, "Messages": []}

    def list_metrics(self, params: dict[str, Any]) -> dict[str, Any]:
        metrics = [
            {
                "Namespace": NAMESPACE,
                "MetricName": name,
                "Dimensions": [{"Name": DIMENSION, "Value": job.name}],
            }
            for job in self._jobs.values()
            for name in sorted(job.metrics)
        ]
        metrics = [m for m in metrics if _listed(m, params)]
        page, token = search.paginate(metrics, params, default=500)
        return {"Metrics": page, "NextToken": token} if token else {"Metrics": page}

    def _points(self, metric: Mapping[str, Any]) -> list[Point]:
        """The points of the one job ``metric`` names by its exact dimensions."""
        dimensions = metric.get("Dimensions") or []
        if metric.get("Namespace") != NAMESPACE or len(dimensions) != 1:
            return []
        if dimensions[0]["Name"] != DIMENSION or dimensions[0]["Value"] not in self._jobs:
            return []
        name = metric["MetricName"]
        return [p for p in self._series.points(dimensions[0]["Value"]) if p.name == name]


def _listed(metric: dict[str, Any], params: dict[str, Any]) -> bool:
    if params.get("Namespace") not in (None, NAMESPACE):
        return False
    if params.get("MetricName") not in (None, metric["MetricName"]):
        return False
    have = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
    return all(
        f["Name"] in have and f.get("Value") in (None, have[f["Name"]])
        for f in params.get("Dimensions") or []
    )


def _buckets(
    points: Iterable[Point], start: float, end: float, period: int
) -> list[tuple[float, list[float]]]:
    """Values by period bucket (its start, ascending), for the points in [start, end)."""
    out: dict[float, list[float]] = {}
    for p in points:
        if start <= p.time < end:
            out.setdefault(math.floor(p.time / period) * period, []).append(p.value)
    return sorted(out.items())


_SIMPLE: dict[str, Callable[[Sequence[float]], float]] = {
    "SampleCount": lambda v: float(len(v)),
    "Average": lambda v: sum(v) / len(v),
    "Sum": lambda v: float(sum(v)),
    "Minimum": lambda v: float(min(v)),
    "Maximum": lambda v: float(max(v)),
}


def statistic(name: str, values: Sequence[float]) -> float:
    """One CloudWatch statistic (or ``pNN`` percentile, nearest rank) of ``values``."""
    if name in _SIMPLE:
        return _SIMPLE[name](values)
    rank = max(1, math.ceil(_percentile(name) / 100 * len(values)))
    return float(sorted(values)[rank - 1])


def _check_stat(name: str) -> None:
    if name not in _SIMPLE:
        _percentile(name)


def _percentile(name: str) -> float:
    found = _PERCENTILE.fullmatch(name)
    if found is None:
        raise invalid(f"The value {name} for parameter Stat is not a valid statistic.")
    return float(found[1])


def _period(period: int) -> int:
    if period not in _SHORT_PERIODS and period % 60:
        raise invalid("The parameter Period must be 1, 5, 10, 20, 30, or a multiple of 60.")
    return period


def _check_range(start: float, end: float) -> None:
    if start >= end:
        raise invalid("The parameter StartTime must be less than the parameter EndTime.")


def epoch(value: float | str) -> float:
    """A request timestamp (epoch seconds, or ISO 8601 text) as epoch seconds."""
    if isinstance(value, int | float):
        return float(value)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid(f"The timestamp {value!r} is not valid.") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def timestamp(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)
