"""The report document (:mod:`sweeper.report`) for a terminal and as CSV: renderings
only, so the text, CSV and JSON forms never disagree."""

from __future__ import annotations

import csv
import io
from typing import Any

from sweeper.report import upgrade


def text(doc: dict[str, Any]) -> str:
    """The report for a terminal (of a ``sweeper.report/1`` or /2 document)."""
    doc = upgrade(doc)
    c, metrics = doc["counts"], [o["metric"] for o in doc["objectives"]]
    lines = [
        f"Sweep {doc['sweep']}: {c['total']} trials ({c['complete']} complete, {c['fail']} failed,"
        f" {c['running']} running, {c['pruned']} pruned, {c['not_launched']} not launched);"
        f" {_goal(doc)}",
        "",
    ]
    infeasible = sum(t["feasible"] is False for t in doc["trials"])
    if len(metrics) > 1:
        lines += _front(doc, metrics)
    elif doc["top"]:
        lines += _table(doc["top"], metrics)
        best = doc["best"]
        lines += [
            "",
            f"Best trial {best['number']} (job {best['job']}); its parameters, ready to"
            " paste under estimator.hyperparameters:",
        ]
        lines += [f"  {k}: {_yaml(v)}" for k, v in best["params"].items()]
    else:
        lines.append(
            "No feasible trial has completed yet." if infeasible else "No trial has completed yet."
        )
    if infeasible:
        lines += ["", f"{infeasible} complete trial(s) broke a constraint: not ranked"]
    if warm := doc.get("warm_start"):
        parents = ", ".join(f"{n} from {name}" for name, n in warm["from"].items())
        lines += [
            "",
            f"warm start: {parents} (not run here, not ranked; the sampler learned from them)",
        ]
    noted = [t for t in doc["trials"] if t["note"]]
    if noted:
        lines += ["", "Notes"]
        lines += [f"  trial {t['number']}: {t['note']}" for t in noted]
    if doc["importances"]:
        lines += ["", "Parameter importances"]
        width = max(len(k) for k in doc["importances"])
        lines += [
            f"  {k:<{width}}  {v:5.2f}  {'#' * round(v * 30)}"
            for k, v in doc["importances"].items()
        ]
    if doc["failures"]:
        lines += ["", "Failures"]
        for f in doc["failures"]:
            lines.append(f"  {f['count']} x {f['reason']}  (trials {_numbers(f['trials'])})")
            tail = [x for x in str(f["example"]).splitlines()[1:] if x.strip()][-3:]
            lines += [f"      {x[:160]}" for x in tail]
    lines += ["", _totals_line(doc["totals"])]
    return "\n".join(lines)


def _goal(doc: dict[str, Any]) -> str:
    """``objective acc (maximize)``, or every objective, and the constraints."""
    shown = ", ".join(f"{o['metric']} ({o['direction']})" for o in doc["objectives"])
    said = f"objective {shown}" if len(doc["objectives"]) == 1 else f"objectives {shown}"
    bounds = [
        f"{c['metric']} <= {_short(c['max'])}"
        if c["max"] is not None
        else f"{c['metric']} >= {_short(c['min'])}"
        for c in doc["constraints"]
    ]
    return said + (f"; constraints {', '.join(bounds)}" if bounds else "")


def _front(doc: dict[str, Any], metrics: list[str]) -> list[str]:
    """The Pareto front's table and its hypervolume, for several objectives."""
    front, hv = doc["front"], doc["hypervolume"]
    if not front:
        return ["No feasible trial has completed yet: the Pareto front is empty."]
    shown = f"; the first {len(doc['top'])} listed" if len(doc["top"]) < len(front) else ""
    lines = [f"Pareto front: {len(front)} trial(s) no other beats on every objective{shown}"]
    lines += _table(doc["top"], metrics)
    if hv is not None:
        ref = ", ".join(f"{m}={_short(v)}" for m, v in zip(metrics, hv["reference"], strict=True))
        whence = "given" if hv["given"] else "the worst values observed"
        lines += ["", f"Hypervolume {hv['value']:.6g} against {ref} ({whence})"]
    lines.append(
        "Pick one: sweep.py report SPACE --download-best DIR --trial N fetches trial N's model"
    )
    return lines


def _table(trials: list[dict[str, Any]], metrics: list[str]) -> list[str]:
    params = list(trials[0]["params"])
    priced = any(t["cost"] is not None for t in trials)
    names = ["value"] if len(metrics) == 1 else metrics
    head = ["rank", "trial", *names, "job", "run", "seconds", "billable"]
    head += ["cost", *params] if priced else params
    rows = [
        [
            *_row_start(i, t),
            *([_money(t["cost"])] if priced else []),
            *(_short(t["params"].get(p)) for p in params),
        ]
        for i, t in enumerate(trials, 1)
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    ]


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def _row_start(i: int, t: dict[str, Any]) -> list[str]:
    return [
        str(i),
        str(t["number"]),
        *(_short(v) for v in t["values"] or [None]),
        str(t["job"]),
        str(t["run"] or "-"),
        _short(t["job_seconds"]),
        _short(t["billable_seconds"]),
    ]


def _totals_line(t: dict[str, Any]) -> str:
    wall = f"{t['wall_seconds']:.1f} s" if t["wall_seconds"] is not None else "n/a"
    savings = f"{t['spot_savings']:.0%}" if t["spot_savings"] is not None else "n/a"
    return (
        f"Totals: wall {wall}; job time {t['job_seconds']:.1f} s; training"
        f" {t['training_seconds']} s; billable {t['billable_seconds']} s; spot savings {savings}"
        + (
            f"; warm-pool reuses {t['warm_pool_reuses']}"
            if t["warm_pool_reuses"] is not None
            else ""
        )
        + (
            f"; warm pools retained {t['warm_pool_seconds']} s"
            + (f" (${t['warm_pool_cost']:.2f})" if t["warm_pool_cost"] is not None else "")
            if t["warm_pool_reuses"] is not None
            else ""
        )
        + (f"; cost ${t['cost']:.2f}" if t["cost"] is not None else "")
        + (
            f"; pruning saved ~{t['pruning_saved_seconds']} billable s"
            if t["pruning_saved_seconds"] is not None
            else ""
        )
    )


def csv_text(doc: dict[str, Any]) -> str:
    """One row per trial, parameters as columns; one column per objective (``value``
    with one), ``feasible`` and ``on_front`` (Pareto front) with several or constraints."""
    doc = upgrade(doc)
    params = sorted({p for t in doc["trials"] for p in t["params"]})
    metrics = [o["metric"] for o in doc["objectives"]]
    goal_columns = ["value"] if len(metrics) == 1 else metrics
    marks = len(metrics) > 1 or bool(doc["constraints"])
    out = io.StringIO()
    writer = csv.writer(out)
    head = ["number", "state", *goal_columns, *(["feasible", "on_front"] if marks else [])]
    sizes = ["job", "attempt", "job_seconds", "billable_seconds", "pool_seconds", "cost"]
    writer.writerow([*head, *sizes, *params, "failure", "experiment", "run"])
    for t in doc["trials"]:
        failure = (t["failure"] or "").splitlines()[0] if t["failure"] else ""
        values = t["values"] or [None] * len(metrics)
        writer.writerow(
            [t["number"], t["state"], *values]
            + ([t["feasible"], t["on_front"]] if marks else [])
            + [t["job"], t["attempt"], t["job_seconds"], t["billable_seconds"]]
            + [t["pool_seconds"], t["cost"], *(t["params"].get(p) for p in params)]
            + [failure, t["experiment"], t["run"]]
        )
    return out.getvalue()


def _short(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _yaml(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:10]))
    return shown + (f", ... ({len(numbers)} in all)" if len(numbers) > 10 else "")
