"""The cost race's workload, the same for every tool: a linear classifier trained by SGD
on scikit-learn's digits data (it ships with scikit-learn: nothing is downloaded), one
epoch at a time, ``epoch_seconds`` of sleep standing in for a larger model's epoch.

Every epoch trained by any tool appends one line to the trace file (JSON: wall time,
trial, epoch, validation accuracy), so resource used, best value and time to a target
are read the same way for all. The trace is also the race's shared budget: once it holds
``budget`` epochs, no more are trained (a SageMaker job then exits 3, a failure that ends
a Sweeper sweep with ``max_failures: 1``; in process, :func:`train` returns).

Three ways in: a SageMaker training script (``--alpha ... --epochs N``, checkpointing to
``/opt/ml/checkpoints`` and resuming from it), a Syne Tune entry point (the same, with
``--st_checkpoint_dir``), and :func:`train` for in-process tools (Ray Tune, Optuna).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pickle
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

TARGET = 0.964  # validation accuracy to reach, fixed before any run (434 of 450)
SPACE = {  # name: (low, high) on a log scale, or the choices
    "alpha": (1e-6, 1e-1),
    "eta0": (1e-4, 1.0),
    "learning_rate": ("constant", "invscaling", "adaptive"),
}
_DATA: tuple[Any, ...] | None = None


def data() -> tuple[Any, ...]:
    """(x_train, x_val, y_train, y_val, classes), scaled; the same split for all."""
    global _DATA
    if _DATA is None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        x, y = load_digits(return_X_y=True)
        xt, xv, yt, yv = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
        scaler = StandardScaler().fit(xt)
        _DATA = (scaler.transform(xt), scaler.transform(xv), yt, yv, np.unique(y))
    return _DATA


def new_model(config: dict[str, Any]) -> Any:
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(
        alpha=float(config["alpha"]),
        eta0=float(config["eta0"]),
        learning_rate=str(config["learning_rate"]),
        random_state=0,
    )


def _spend(trace: str, budget: int, line: dict[str, Any]) -> bool:
    """Append ``line`` if the trace holds fewer than ``budget`` epochs; False once spent."""
    with open(trace, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        if sum(1 for _ in f) >= budget:
            return False
        f.write(json.dumps(line) + "\n")
        f.flush()
        return True


def epochs(
    model: Any, start: int, end: int, trial: str, trace: str, budget: int, epoch_seconds: float
) -> Iterator[tuple[int, float]]:
    """Train ``model`` from epoch ``start + 1`` to ``end``; yield each (epoch, accuracy),
    traced. Stops early, yielding nothing more, once the race's budget is spent."""
    xt, xv, yt, yv, classes = data()
    for epoch in range(start + 1, end + 1):
        order = np.random.default_rng([0, epoch]).permutation(len(xt))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.partial_fit(xt[order], yt[order], classes=classes)
        time.sleep(epoch_seconds)
        accuracy = float(model.score(xv, yv))
        line = {"t": time.time(), "trial": trial, "epoch": epoch, "value": accuracy}
        if not _spend(trace, budget, line):
            return
        yield epoch, accuracy


def train(
    config: dict[str, Any],
    trial: str,
    trace: str,
    budget: int,
    epoch_seconds: float,
    report: Callable[[int, float], bool],
    max_epochs: int,
) -> None:
    """In process: train up to ``max_epochs``, calling ``report(epoch, accuracy)`` after
    each; a False from it stops (the tool's pruner said so)."""
    model = new_model(config)
    for epoch, accuracy in epochs(model, 0, max_epochs, trial, trace, budget, epoch_seconds):
        if not report(epoch, accuracy):
            return


def _script() -> int:
    """A SageMaker training script, or a Syne Tune entry point."""
    p = argparse.ArgumentParser()
    for name in SPACE:
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--epoch_seconds", type=float, required=True)
    p.add_argument("--trace", required=True)
    p.add_argument("--budget", type=int, required=True)
    p.add_argument("--st_checkpoint_dir", default=None)
    a = p.parse_args()
    if a.st_checkpoint_dir:  # Syne Tune
        from syne_tune import Reporter

        checkpoints, trial = Path(a.st_checkpoint_dir), Path(a.st_checkpoint_dir).parent.name
        say: Callable[[int, float], None] = Reporter()  # type: ignore[assignment]
        tell = lambda epoch, value: say(epoch=epoch, accuracy=value)  # noqa: E731
    else:  # SageMaker: the job's name without its attempt is the trial
        checkpoints = Path(os.environ["SM_MODEL_DIR"]).parent / "checkpoints"
        trial = os.environ.get("TRAINING_JOB_NAME", "job").rsplit("-", 1)[0]
        tell = lambda epoch, value: print(f"val_accuracy={value:.6f} epoch={epoch}", flush=True)  # noqa: E731
    state = checkpoints / "race.pkl"
    done, model = 0, new_model(vars(a))
    if state.is_file():
        done, model = pickle.loads(state.read_bytes())
        print(f"resumed from checkpoint at epoch {done}", flush=True)
    trained = done
    for epoch, accuracy in epochs(model, done, a.epochs, trial, a.trace, a.budget, a.epoch_seconds):
        checkpoints.mkdir(parents=True, exist_ok=True)
        (checkpoints / "race.tmp").write_bytes(pickle.dumps((epoch, model)))
        (checkpoints / "race.tmp").replace(state)
        tell(epoch, accuracy)
        trained = epoch
    if trained < a.epochs:
        print("the race's budget is spent", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(_script())
