"""The notebook in ``examples/`` runs as a user runs it: in a real Jupyter kernel
(nbclient, ipykernel), with the SDK v2 ``SKLearn`` estimator for ``src/train.py`` as the
job template, its sweep awaited in a cell on the kernel's running event loop, on the
embedded emulator. Run again, it resumes: not one more job."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from optuna.trial import TrialState

from tests.helpers import ROOT, sweep_trials

NOTEBOOK = ROOT / "examples" / "sweep_an_estimator.ipynb"
NAME = "notebook-digits"

# Appended to the notebook: what its objects hold, for the test to compare with the study.
CHECK = """
import json
print("CHECK " + json.dumps({
    "rows": frame[["number", "state", "value", "params_learning_rate"]].to_dict("records"),
    "best": sweep.best_trial.number,
    "attached": best.latest_training_job.name,
    "attached_class": type(best).__name__,
    "attached_lr": best.hyperparameters()["learning_rate"],
    "model_data": best.model_data,
    "estimator_hps": estimator.hyperparameters(),
}))
"""


def _execute(folder: Path) -> tuple[dict[str, Any], str]:
    """Run the notebook in ``folder`` in a fresh kernel; its check and its outputs' text."""
    nb = nbformat.read(folder / NOTEBOOK.name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CHECK))
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    text = "\n".join(
        str(out.get("text", "")) for cell in nb.cells for out in cell.get("outputs", [])
    )
    assert "\x1b[" not in text  # no terminal redraws in a cell
    line = next(x for x in text.splitlines() if x.startswith("CHECK "))
    return json.loads(line.removeprefix("CHECK ")), text


@pytest.mark.timeout(1800)
def test_the_example_notebook_sweeps_an_sdk_estimator_and_resumes(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "src", tmp_path / "src")
    (tmp_path / "examples").mkdir()
    shutil.copy(NOTEBOOK, tmp_path / "examples")
    check, text = _execute(tmp_path / "examples")

    trials = sweep_trials(tmp_path / "examples" / "space.yaml", NAME)
    assert len(trials) == 8 and all(t.state == TrialState.COMPLETE for t in trials)
    assert check["rows"] == [
        {
            "number": t.number,
            "state": "complete",
            "value": t.value,
            "params_learning_rate": t.params["learning_rate"],
        }
        for t in trials
    ]
    best = max(trials, key=lambda t: t.value or 0.0)
    assert check["best"] == best.number
    assert check["attached"] == f"{NAME}-{best.number}-1"
    assert check["attached_class"] == "SKLearn"
    assert json.loads(check["attached_lr"]) == best.params["learning_rate"]
    assert check["model_data"].endswith(f"/{NAME}-{best.number}-1/output/model.tar.gz")
    assert check["estimator_hps"] == {"max_iter": "20", "epochs": "2"}  # left as it was
    assert len(re.findall(r"trial \d+\s+started", text)) == 8
    jobs = tmp_path / "examples" / ".sweeps" / NAME / "emulator" / "jobs"
    assert len(list(jobs.iterdir())) == 8

    again, text = _execute(tmp_path / "examples")  # the same notebook, run again
    assert again["rows"] == check["rows"]
    assert re.findall(r"trial \d+\s+started", text) == []
    assert len(list(jobs.iterdir())) == 8  # not one more job
    assert f"Sweep {NAME}: 8 trials (8 complete, 0 failed, 0 running)" in text
