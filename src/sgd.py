"""Example training script with a learning curve: a linear classifier trained by SGD, one
epoch at a time, on scikit-learn's digits data (it ships with scikit-learn: nothing is
downloaded).

Each epoch prints its validation accuracy (``val_accuracy=0.91 epoch=3``), which a
sweep with a ``pruner:`` reads while the job runs to stop hopeless trials early; the
last line is the final value. ``--epoch_seconds`` stands in for the cost of an epoch of
a larger model (the digits data trains in milliseconds). Runs unchanged on SageMaker
and in Sweeper's emulator; the model is written to ``SM_MODEL_DIR``.

After each epoch the model is checkpointed to SageMaker's ``/opt/ml/checkpoints`` (found
beside ``SM_MODEL_DIR``; by hand, ``--checkpoint-dir``); a job that finds a checkpoint
goes on from the epoch after it, up to ``--epochs``, so a trial that ASHA promotion paused
at a rung resumes where it stopped (``resumed from checkpoint at epoch 3``), and its curve
is the one an uninterrupted run would print (each epoch shuffles with its own seed).
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--alpha", type=float, default=1e-4)
    p.add_argument("--eta0", type=float, default=0.01)
    p.add_argument("--learning_rate", default="constant")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--epoch_seconds", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    beside = (
        Path(os.environ["SM_MODEL_DIR"]).parent / "checkpoints"
        if "SM_MODEL_DIR" in os.environ
        else None
    )
    p.add_argument("--checkpoint-dir", default=str(beside) if beside else None)
    return p.parse_args()


def load_checkpoint(directory: str | None) -> tuple[int, Any]:
    """(last finished epoch, model) from the checkpoint directory, or (0, None)."""
    path = Path(directory, "sgd.pkl") if directory else None
    if path is None or not path.is_file():
        return 0, None
    with path.open("rb") as f:
        state = pickle.load(f)
    print(f"resumed from checkpoint at epoch {state['epoch']}", flush=True)
    return int(state["epoch"]), state["model"]


def save_checkpoint(directory: str | None, epoch: int, model: Any) -> None:
    if directory is None:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    tmp = Path(directory, "sgd.pkl.tmp")
    with tmp.open("wb") as f:
        pickle.dump({"epoch": epoch, "model": model}, f)
    tmp.replace(Path(directory, "sgd.pkl"))  # atomic: never a half-written checkpoint


def main() -> None:
    args = parse_args()
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, random_state=args.seed, stratify=y
    )
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    done, model = load_checkpoint(args.checkpoint_dir)
    if model is None:
        model = SGDClassifier(
            alpha=args.alpha,
            eta0=args.eta0,
            learning_rate=args.learning_rate,
            random_state=args.seed,
        )
    classes = np.unique(y)
    for epoch in range(done + 1, args.epochs + 1):
        order = np.random.default_rng([args.seed, epoch]).permutation(len(x_train))
        model.partial_fit(x_train[order], y_train[order], classes=classes)
        time.sleep(args.epoch_seconds)
        accuracy = model.score(x_val, y_val)
        print(f"val_accuracy={accuracy:.6f} epoch={epoch}", flush=True)
        save_checkpoint(args.checkpoint_dir, epoch, model)
    out = Path(args.model_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "model.pkl").open("wb") as f:
        pickle.dump({"scaler": scaler, "model": model}, f)


if __name__ == "__main__":
    main()
