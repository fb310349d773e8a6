"""A sweep of two objectives under a constraint, through the emulator: its report's
Pareto front is the non-dominated set of its feasible trials, computed here on its own
from the study; a rerun adds nothing; the HTML page draws the front."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import jsonschema
import pytest
from optuna.trial import TrialState

from tests.e2e.test_report import CHROMIUM, SCHEMA, drawn
from tests.helpers import run_sweep, space_doc, sweep_trials, write_sweep

# Two objectives in conflict along share (waste only hurts both); "cost" above 0.8 is infeasible.
TWO = textwrap.dedent(
    """
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--share", type=float, required=True)
    p.add_argument("--waste", type=float, required=True)
    a = p.parse_args()
    print(f"cost={a.share + 0.5 * a.waste:.10f}")
    print(f"error={(1 - a.share) ** 2 + 0.5 * a.waste:.10f}")
    """
)


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    doc = space_doc(
        budget={"max_trials": 12, "max_parallel": 3, "max_failures": 3},
        sampler={"kind": "nsga2", "seed": 3, "population_size": 4},
        space={
            "share": {"type": "float", "low": 0.0, "high": 1.0},
            "waste": {"type": "float", "low": 0.0, "high": 1.0},
        },
        objectives=[
            {"metric": "cost", "direction": "minimize"},
            {"metric": "error", "direction": "minimize"},
        ],
        constraints=[{"metric": "cost", "max": 0.8}],
    )
    del doc["objective"]
    doc["estimator"]["metric_definitions"] = [
        {"name": "cost", "regex": "cost=([0-9.eE+-]+)"},
        {"name": "error", "regex": "error=([0-9.eE+-]+)"},
    ]
    space = write_sweep(tmp_path_factory.mktemp("front"), doc, TWO)
    result = run_sweep(str(space))
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"trial \d+ +finished  cost=\S+ error=\S+", result.stdout)
    return space


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def test_the_report_front_is_the_non_dominated_set_of_the_feasible_trials(swept: Path) -> None:
    result = run_sweep("report", str(swept), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA)
    trials = [t for t in sweep_trials(swept) if t.state == TrialState.COMPLETE]
    assert len(trials) == 12 and all(len(t.values) == 2 for t in trials)
    for t in trials:  # values as each job printed them; feasibility from its own cost
        assert t.constraints == pytest.approx({"cost<=0.8": t.values[0] - 0.8})
    feasible = [t for t in trials if t.values[0] <= 0.8]
    expected = {
        t.number
        for t in feasible
        if not any(_dominates(tuple(o.values), tuple(t.values)) for o in feasible)
    }
    front = [t["number"] for t in doc["front"]]
    assert expected and set(front) == expected and len(front) == len(expected)
    firsts = [t["values"][0] for t in doc["front"]]
    assert firsts == sorted(firsts)  # by the first objective, best first
    assert doc["best"] is None and doc["hypervolume"]["value"] > 0
    by_number = {t["number"]: t for t in doc["trials"]}
    for t in trials:
        row = by_number[t.number]
        assert row["values"] == pytest.approx(t.values)
        assert row["feasible"] == (t.values[0] <= 0.8)
        assert row["on_front"] == (t.number in expected)


def test_a_rerun_adds_nothing_and_status_shows_the_front(swept: Path) -> None:
    before = [(t.number, t.values) for t in sweep_trials(swept)]
    again = run_sweep(str(swept))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Pareto front:" in again.stdout
    assert [(t.number, t.values) for t in sweep_trials(swept)] == before
    status = run_sweep("status", str(swept))
    assert status.returncode == 0 and "Pareto front:" in status.stdout


def test_download_best_asks_for_a_trial_of_the_front(swept: Path, tmp_path: Path) -> None:
    asked = run_sweep("report", str(swept), "--download-best", str(tmp_path))
    assert asked.returncode == 1 and "--trial N" in asked.stderr
    assert asked.stderr.count("\n") == 1


def test_the_html_page_draws_the_pareto_front_and_its_hypervolume(
    swept: Path, tmp_path: Path
) -> None:
    page = tmp_path / "front.html"
    result = run_sweep("report", str(swept), "--html", str(page))
    assert result.returncode == 0, result.stderr
    content = page.read_text()
    plots = ["pareto-front", "hypervolume-history", "optimisation-history"]
    for plot in plots:
        assert re.search(rf'Plotly\.newPlot\(\s*"plot-{plot}"', content), plot
    if CHROMIUM is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    dom = drawn(page)
    for plot in plots:  # each div now holds the SVG plotly drew in the browser
        div = dom.split(f'id="plot-{plot}"', 1)[1].split("<h2>", 1)[0]
        assert 'class="main-svg"' in div, plot
