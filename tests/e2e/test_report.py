"""``sweep.py report``: text, JSON (checked against its schema) and CSV of a real sweep."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import jsonschema
import pytest

from tests.helpers import ROOT, boto3_client, embedded_emulator, run_sweep, space_doc, write_sweep

SCHEMA = json.loads((ROOT / "sweeper" / "report.schema.json").read_text())


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 6-trial sweep in which trials with x > 0.8 fail."""
    root = tmp_path_factory.mktemp("report")
    doc = space_doc(
        budget={"max_trials": 6, "max_parallel": 3, "max_failures": 6},
        sampler={"kind": "grid"},
        space={"x": {"type": "float", "values": [0.1, 0.3, 0.45, 0.7, 0.9, 0.95]}},
    )
    doc["estimator"]["hyperparameters"] = {"fail_above": 0.8}
    doc["estimator"]["instance_price_per_hour"] = 0.36  # $0.0001 per billable second
    space = write_sweep(root, doc)
    assert run_sweep(str(space)).returncode == 0
    return space


def test_the_json_report_follows_its_schema(swept: Path) -> None:
    result = run_sweep("report", str(swept), "--json", "--top", "3")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["counts"] == {
        "total": 6,
        "complete": 4,
        "fail": 2,
        "running": 0,
        "pruned": 0,
        "not_launched": 0,
    }
    assert [t["params"]["x"] for t in doc["top"]] == [0.3, 0.45, 0.1]  # minimize (x - 0.3)^2
    assert doc["best"]["job"] == doc["top"][0]["job"]
    assert doc["best"]["value"] == 0.0
    assert doc["failures"][0]["count"] == 2
    assert "is too large" in doc["failures"][0]["example"]
    assert doc["totals"]["billable_seconds"] >= 6
    assert all(t["job_seconds"] is not None for t in doc["trials"])
    for t in doc["trials"]:
        assert t["cost"] == pytest.approx(t["billable_seconds"] * 0.0001)
    assert doc["totals"]["cost"] == pytest.approx(doc["totals"]["billable_seconds"] * 0.0001)
    for t in doc["trials"]:  # every trial is a run of experiment "quad"
        assert (t["experiment"], t["run"]) == ("quad", f"quad-trial-{t['number']}")


def test_the_text_report_shows_table_best_params_failures_and_totals(swept: Path) -> None:
    result = run_sweep("report", str(swept))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Sweep quad: 6 trials (4 complete, 2 failed, 0 running, 0 pruned, 0 not launched)" in out
    assert out.splitlines()[2].split() == [
        "rank",
        "trial",
        "value",
        "job",
        "run",
        "seconds",
        "billable",
        "cost",
        "x",
    ]
    assert "ready to paste under estimator.hyperparameters:\n  x: 0.3" in out
    assert "2 x AlgorithmError: ExecuteUserScriptError:" in out
    assert "Totals: wall" in out


def test_the_csv_report_has_a_row_per_trial(swept: Path) -> None:
    result = run_sweep("report", str(swept), "--csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 6
    assert {r["state"] for r in rows} == {"complete", "fail"}
    assert sorted(float(r["x"]) for r in rows) == [0.1, 0.3, 0.45, 0.7, 0.9, 0.95]
    assert {(r["experiment"], r["run"]) for r in rows} == {
        ("quad", f"quad-trial-{r['number']}") for r in rows
    }


def test_a_report_of_a_sweep_that_never_ran_says_so(tmp_path: Path) -> None:
    result = run_sweep("report", str(write_sweep(tmp_path)))
    assert result.returncode == 2
    assert "no sweep named 'quad'" in result.stderr


def test_a_note_on_a_trial_shows_in_the_reports(swept: Path) -> None:
    assert run_sweep("note", str(swept), "1", "baseline: the default learning rate").returncode == 0
    doc = json.loads(run_sweep("report", str(swept), "--json").stdout)
    jsonschema.validate(doc, SCHEMA)
    assert [t["note"] for t in doc["trials"] if t["note"]] == [
        "baseline: the default learning rate"
    ]
    with embedded_emulator(swept.parent / ".sweeps" / "quad" / "emulator") as emu:
        run = boto3_client(emu.endpoint_url).describe_trial_component(
            TrialComponentName="quad-trial-1"
        )
    assert run["Parameters"]["sweeper:note"] == {
        "StringValue": "baseline: the default learning rate"
    }
    assert "trial 1: baseline: the default learning rate" in run_sweep("report", str(swept)).stdout
    missing = run_sweep("note", str(swept), "99", "nope")
    assert missing.returncode == 2
    assert "has no trial 99" in missing.stderr


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=20000",
]


def drawn(page: Path) -> str:
    """The page's DOM after headless Chromium ran its scripts (plotly draws then)."""
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


PLOTS = [
    "optimisation-history",
    "parallel-coordinates",
    "parameter-importances",
    "slices",
    "jobs-per-slot",
]


@pytest.fixture(scope="module")
def page(swept: Path) -> Path:
    out = swept.parent / "report.html"
    result = run_sweep("report", str(swept), "--html", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_the_html_report_is_one_self_contained_file_with_every_plot(page: Path) -> None:
    content = page.read_text()
    assert "<script src=" not in content  # plotly.js is inline: the file works offline
    for plot in PLOTS:  # a div, and the inline call that draws into it
        assert f'id="plot-{plot}"' in content
        assert re.search(rf'Plotly\.newPlot\(\s*"plot-{plot}"', content), plot


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("SWEEPER_REQUIRE_CHROMIUM"),
    reason="headless Chromium is not installed (apt-get install chromium)",
)
def test_headless_chromium_renders_every_plot(page: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None, "SWEEPER_REQUIRE_CHROMIUM is set but chromium is missing"
    dom = drawn(page)
    for plot in PLOTS:  # each plot div now holds the SVG plotly drew in the browser
        div = dom.split(f'id="plot-{plot}"', 1)[1].split("<h2>", 1)[0]
        assert 'class="main-svg"' in div, plot
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            "--window-size=1200,4200",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 100_000  # a page of drawn plots, not a blank one


def test_download_best_leaves_the_model_and_the_log(swept: Path, tmp_path: Path) -> None:
    dest = tmp_path / "best"
    result = run_sweep("report", str(swept), "--json", "--download-best", str(dest))
    assert result.returncode == 0, result.stderr
    best = json.loads(result.stdout)["best"]  # stdout stays pure JSON
    assert sorted(p.name for p in dest.iterdir()) == sorted(["model.tar.gz", f"{best['job']}.log"])
    with tarfile.open(dest / "model.tar.gz") as tar:
        member = tar.extractfile("model.txt")
        assert member is not None and float(member.read()) == best["params"]["x"]
    assert "loss=0.0000000000" in (dest / f"{best['job']}.log").read_text()
    assert f"wrote {dest / 'model.tar.gz'}" in result.stderr
