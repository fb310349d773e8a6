"""``sweep.py report --html out.html``: one self-contained page of plots.

Plotting is plotly, chosen because Optuna's own visualization module is built on it
(optimisation history, parallel coordinates, importances and slices come for free),
because a figure embeds in plain HTML with its JavaScript inline, so the file works
offline and can be mailed or archived, and because the plots stay interactive (zoom,
hover on a trial). plotly.js is included once, in the first figure.

The timeline shows each job in the slot it occupied (``max_parallel`` rows), so idle
gaps between jobs are visible: a job spans its CreationTime to its TrainingEndTime, as
the training service reported them.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable
from typing import Any

import optuna
import optuna.visualization as vis
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from sweeper.report_text import text
from sweeper.study import importance

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "pre{background:#f6f6f6;padding:1em;overflow-x:auto}h2{margin-top:2em}"
)


def render(doc: dict[str, Any], study: optuna.Study) -> str:
    """The HTML page: the text report, then every plot that the trials allow (several
    objectives: the Pareto front and the history of its hypervolume first; the other
    plots of the first objective)."""
    evaluator = importance.evaluator()
    metrics = [o["metric"] for o in doc["objectives"]]
    on_first: dict[str, Any] = {}  # several objectives: the other plots show the first
    if len(metrics) > 1:
        on_first = {"target": lambda t: t.values[0], "target_name": metrics[0]}
    makers: list[tuple[str, Callable[[], go.Figure]]] = [
        ("Optimisation history", lambda: vis.plot_optimization_history(study, **on_first)),
        ("Parallel coordinates", lambda: vis.plot_parallel_coordinate(study, **on_first)),
        ("Parameter importances", lambda: vis.plot_param_importances(study, evaluator=evaluator)),
        ("Slices", lambda: vis.plot_slice(study, **on_first)),
        ("Jobs per slot", lambda: timeline(study.get_trials(deepcopy=False))),
    ]
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):  # a pruner ran
        makers.insert(1, ("Learning curves", lambda: vis.plot_intermediate_values(study)))
    if len(metrics) > 1:
        makers[:0] = _front_plots(doc, study, metrics)
    sections, first = [], True
    for title, make in makers:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                figure = make()
        except (ValueError, RuntimeError) as exc:  # e.g. fewer than two complete trials
            sections.append(f"<h2>{title}</h2><p>Not shown: {html.escape(str(exc))}</p>")
            continue
        body = figure.to_html(full_html=False, include_plotlyjs=first, div_id=_slug(title))
        sections.append(f'<h2>{title}</h2><div class="plot">{body}</div>')
        first = False
    name = html.escape(doc["sweep"])
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Sweep {name}</title>"
        f"<style>{_STYLE}</style></head><body><h1>Sweep {name}</h1>"
        f"<pre>{html.escape(text(doc))}</pre>{''.join(sections)}</body></html>"
    )


def _front_plots(
    doc: dict[str, Any], study: optuna.Study, metrics: list[str]
) -> list[tuple[str, Callable[[], go.Figure]]]:
    """Optuna's Pareto-front plot (2-D or 3-D: of the first three objectives when there
    are four) and the history of the front's hypervolume, against the report's point."""
    shown = metrics[:3]
    title = "Pareto front" + (f" (of {', '.join(shown)})" if len(metrics) > 3 else "")

    def front() -> go.Figure:
        if len(metrics) > 3:
            return vis.plot_pareto_front(
                study, targets=lambda t: tuple(t.values[:3]), target_names=shown
            )
        return vis.plot_pareto_front(study, target_names=metrics)

    def history() -> go.Figure:
        hv = doc["hypervolume"]
        if hv is None:
            raise ValueError("no trial has completed yet")
        return vis.plot_hypervolume_history(study, reference_point=hv["reference"])

    return [(title, front), ("Hypervolume history", history)]


def timeline(trials: list[FrozenTrial]) -> go.Figure:
    """Jobs as bars in the slot each occupied, so idle time between jobs shows."""
    spans = []
    for t in trials:
        created, ended = t.user_attrs.get("job_created"), t.user_attrs.get("job_ended")
        if created is not None and ended is not None:
            spans.append((float(created), float(ended), t))
    if not spans:
        raise ValueError("no finished job yet")
    spans.sort(key=lambda s: s[0])
    origin = spans[0][0]
    free_at: list[float] = []  # per slot: when its last job ended
    bars: dict[str, dict[str, list[Any]]] = {}
    for start, end, t in spans:
        slot = next((i for i, f in enumerate(free_at) if f <= start + 1e-3), len(free_at))
        if slot == len(free_at):
            free_at.append(end)
        else:
            free_at[slot] = end
        bar = bars.setdefault(t.state.name.lower(), {"x": [], "y": [], "base": [], "text": []})
        bar["x"].append(end - start)
        bar["y"].append(f"slot {slot + 1}")
        bar["base"].append(start - origin)
        bar["text"].append(f"trial {t.number} · {t.user_attrs.get('job_name', '')}")
    colours = {"complete": "#2b8cbe", "fail": "#e34a33"}
    figure = go.Figure(
        [
            go.Bar(
                name=state,
                x=b["x"],
                y=b["y"],
                base=b["base"],
                orientation="h",
                hovertext=b["text"],
                marker_color=colours.get(state, "#999"),
            )
            for state, b in bars.items()
        ]
    )
    figure.update_layout(
        barmode="overlay",
        xaxis_title="seconds since the first job started",
        yaxis={"categoryorder": "category descending"},
        title="Jobs per slot",
    )
    return figure


def _slug(title: str) -> str:
    return "plot-" + title.lower().replace(" ", "-")
