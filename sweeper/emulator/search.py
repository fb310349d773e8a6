"""ListTrainingJobs filters and Search expressions over the emulator's jobs.

Choices where AWS does not document the behaviour: ``NameContains`` is
case-insensitive; text comparisons are case-sensitive; ``NextToken`` is an opaque
offset, so a page boundary may shift if jobs are created between pages (as on AWS,
where listings are eventually consistent anyway).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sweeper.emulator import pools
from sweeper.emulator.errors import validation
from sweeper.emulator.jobs import Job

_NUMBER_OPS: dict[str, Callable[[float, float], bool]] = {
    "Equals": lambda a, b: a == b,
    "NotEquals": lambda a, b: a != b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def paginate(
    items: Sequence[Any], params: dict[str, Any], default: int
) -> tuple[list[Any], str | None]:
    """One page of ``items`` and the token of the next page, if any."""
    start = 0
    token = params.get("NextToken")
    if token:
        try:
            start = int(base64.b64decode(token).decode())
        except ValueError as exc:
            raise validation("Invalid pagination token") from exc
    size = int(params.get("MaxResults") or default)
    page = list(items[start : start + size])
    nxt = start + size
    return page, base64.b64encode(str(nxt).encode()).decode() if nxt < len(items) else None


def list_jobs(jobs: Sequence[Job], params: dict[str, Any]) -> list[Job]:
    """Jobs matching ListTrainingJobs' filters, in its order (default CreationTime, asc)."""
    out = list(jobs)
    if contains := params.get("NameContains"):
        out = [j for j in out if contains.lower() in j.name.lower()]
    if status := params.get("StatusEquals"):
        out = [j for j in out if j.status == status]
    if warm := params.get("WarmPoolStatusEquals"):
        out = [j for j in out if pools.status(j) == warm]
    for key, attr, after in (
        ("CreationTimeAfter", "created", True),
        ("CreationTimeBefore", "created", False),
        ("LastModifiedTimeAfter", "modified", True),
        ("LastModifiedTimeBefore", "modified", False),
    ):
        if key in params:
            bound = _seconds(params[key])
            out = [j for j in out if (getattr(j, attr) > bound) == after]
    sort_by = params.get("SortBy", "CreationTime")
    keys: dict[str, Callable[[Job], Any]] = {
        "Name": lambda j: j.name,
        "CreationTime": lambda j: j.created,
        "Status": lambda j: j.status,
    }
    out.sort(key=keys[sort_by], reverse=params.get("SortOrder", "Ascending") == "Descending")
    return out


def search_jobs(jobs: Mapping[str, Job], params: dict[str, Any]) -> list[dict[str, Any]]:
    """``TrainingJob`` records matching a Search request, sorted as it asks. A search by
    job names (how an orchestrator polls) looks only at those jobs, not at all of them."""
    names = _named(params.get("SearchExpression"))
    chosen = jobs.values() if names is None else [jobs[n] for n in names if n in jobs]
    records = []
    for job in chosen:
        record = job.describe()
        record["Tags"] = job.request.get("Tags", [])
        records.append(record)
    return search_records(records, params)


def _named(expression: dict[str, Any] | None) -> set[str] | None:
    """The job names an expression of ``TrainingJobName`` ``In``/``Equals`` filters (any
    of them) matches; None for any other expression."""
    if not expression or set(expression) - {"Filters", "Operator"}:
        return None
    filters = expression.get("Filters", [])
    if not filters or (len(filters) > 1 and expression.get("Operator", "And") != "Or"):
        return None
    names: set[str] = set()
    for flt in filters:
        op = flt.get("Operator", "Equals")
        if flt.get("Name") != "TrainingJobName" or op not in ("In", "Equals"):
            return None
        value = str(flt.get("Value", ""))
        names.update(value.split(",") if op == "In" else [value])
    return names


def search_records(records: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
    """The records matching a Search request's expression, sorted as it asks (default
    LastModifiedTime, descending). A path through a list (``Parents.TrialName``) matches
    if any item does."""
    expression = params.get("SearchExpression")
    found = [r for r in records if expression is None or _matches(r, expression)]
    sort_by = params.get("SortBy", "LastModifiedTime")
    found.sort(
        key=lambda r: _sort_key(_lookup(r, sort_by)),
        reverse=params.get("SortOrder", "Descending") == "Descending",
    )
    return found


def _matches(record: dict[str, Any], expr: dict[str, Any]) -> bool:
    results = [_filter(record, f) for f in expr.get("Filters", [])]
    for nested in expr.get("NestedFilters", []):
        results.append(
            any(
                all(_filter(item, f) for f in nested.get("Filters", []))
                for item in record.get(nested["NestedPropertyName"], [])
            )
        )
    results += [_matches(record, sub) for sub in expr.get("SubExpressions", [])]
    if not results:
        return True
    return any(results) if expr.get("Operator", "And") == "Or" else all(results)


def _filter(record: dict[str, Any], flt: dict[str, Any]) -> bool:
    op = str(flt.get("Operator", "Equals"))
    actual = _lookup(record, flt["Name"])
    if isinstance(actual, list):  # through a list: any item
        return any(_filter({"v": item}, {**flt, "Name": "v"}) for item in actual) or (
            not actual and op in ("NotExists", "NotEquals")
        )
    if op == "Exists":
        return actual is not None
    if op == "NotExists":
        return actual is None
    if actual is None:
        return op == "NotEquals"
    expected = str(flt.get("Value", ""))
    if op == "In":
        return str(actual) in expected.split(",")
    if op == "Contains":
        return expected in str(actual)
    if isinstance(actual, int | float) and not isinstance(actual, bool):
        try:
            target = _seconds(expected) if flt["Name"].endswith("Time") else float(expected)
        except ValueError:
            return False
        return _NUMBER_OPS[op](float(actual), target)
    if op in ("Equals", "NotEquals"):
        return (str(actual) == expected) == (op == "Equals")
    raise validation(f"Operator {op} applies to numbers and timestamps only, not {flt['Name']}")


def _lookup(record: dict[str, Any], path: str) -> Any:
    """A property path (``Tags.k``, ``HyperParameters.k``, ``Metrics.m``, ``A.B``)."""
    head, _, rest = path.partition(".")
    if head == "Tags" and rest:
        return next((t.get("Value") for t in record.get("Tags", []) if t["Key"] == rest), None)
    if head == "Metrics" and rest:
        metrics = record.get("FinalMetricDataList", [])
        return next((m["Value"] for m in metrics if m["MetricName"] == rest), None)
    if head in ("Parameters",) and rest:  # a trial component's {StringValue|NumberValue}
        param = record.get("Parameters", {}).get(rest)
        return None if param is None else param.get("NumberValue", param.get("StringValue"))
    value: Any = record
    for part in path.split(".") if head != "HyperParameters" else [head, rest]:
        if isinstance(value, list):
            value = [item.get(part) for item in value if isinstance(item, dict)]
        else:
            value = value.get(part) if isinstance(value, dict) else None
    return value


def _seconds(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except ValueError:
        dt = datetime.fromisoformat(str(value))
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    return (1, value) if isinstance(value, int | float) else (2, str(value))
