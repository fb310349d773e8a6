"""Example training script: a gradient-boosted classifier on scikit-learn's digits data.

Runs unchanged on SageMaker (any scikit-learn container) and in Sweeper's emulator:
hyperparameters arrive as ``--name value`` arguments, metrics are printed for the
space file's ``metric_definitions`` regexes, and the model is written to
``SM_MODEL_DIR``. The data ships with scikit-learn, so nothing is downloaded; give the
job a ``train`` channel (``inputs: {train: s3://...}``) of CSV files (pixel columns,
then the label) and it trains on those instead.

Training runs in epochs (``--epochs``, adding ``max_iter / epochs`` boosting rounds
each, with ``warm_start``) and saves a checkpoint after each one, so a managed-spot
job that is interrupted resumes from its last epoch instead of from zero. The
checkpoint directory is SageMaker's ``/opt/ml/checkpoints``, found beside
``SM_MODEL_DIR``; run by hand, the script checkpoints only with ``--checkpoint-dir``.

With ``--log_to_run true`` (and the SageMaker SDK installed: ``pip install sagemaker``),
the script also logs each epoch's accuracy (``epoch_accuracy``) and its data size to
its trial's SageMaker Experiments run itself, with the SDK's ``load_run()``, as scripts
do on SageMaker; the emulator gives each job the credentials and endpoints it needs.
Without the SDK it says so and trains all the same.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--learning_rate", type=float, default=0.1)
    p.add_argument("--max_depth", type=int, default=None)
    p.add_argument("--max_leaf_nodes", type=int, default=31)
    p.add_argument("--l2_regularization", type=float, default=0.0)
    p.add_argument("--early_stopping", choices=["true", "false"], default="false")
    p.add_argument("--max_iter", type=int, default=100)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log_to_run", choices=["true", "false"], default="false")
    p.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    p.add_argument("--train-dir", default=os.environ.get("SM_CHANNEL_TRAIN"))
    default_checkpoints = (
        str(Path(os.environ["SM_MODEL_DIR"]).parent / "checkpoints")
        if "SM_MODEL_DIR" in os.environ
        else None
    )
    p.add_argument("--checkpoint-dir", default=default_checkpoints)
    return p.parse_args()


def load_data(directory: str | None) -> tuple[Any, Any]:
    """(features, labels): every CSV in the ``train`` channel, else scikit-learn's digits."""
    if directory is None:
        return load_digits(return_X_y=True)
    files = sorted(Path(directory).rglob("*.csv"))
    if not files:
        raise SystemExit(f"no CSV files in the train channel {directory}")
    rows = np.concatenate([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    print(f"data: {len(rows)} samples from {len(files)} files in {directory}", flush=True)
    return rows[:, :-1], rows[:, -1].astype(int)


def load_checkpoint(directory: str | None) -> tuple[int, Any]:
    """(last finished epoch, model) from the checkpoint directory, or (0, None)."""
    path = Path(directory, "checkpoint.pkl") if directory else None
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
    tmp = Path(directory, "checkpoint.pkl.tmp")
    with tmp.open("wb") as f:
        pickle.dump({"epoch": epoch, "model": model}, f)
    tmp.replace(Path(directory, "checkpoint.pkl"))  # atomic: never a half-written checkpoint
    print(f"checkpoint saved epoch={epoch}", flush=True)


def experiment_run(enabled: bool) -> Any:
    """The job's SageMaker Experiments run (``load_run()``) when asked for and the SDK is
    installed; else a stand-in that gives ``None`` (nothing is logged)."""
    if enabled:
        try:
            from sagemaker.experiments.run import load_run

            return load_run()
        except ImportError:
            print("log_to_run: the SageMaker SDK is not installed; not logging", flush=True)
        except Exception as exc:  # run by hand, or a job without an ExperimentConfig
            print(f"log_to_run: no run to log to ({exc})", flush=True)
    return contextlib.nullcontext(None)


def main() -> None:
    args = parse_args()
    with experiment_run(args.log_to_run == "true") as run:
        train(args, run)


def train(args: argparse.Namespace, run: Any) -> None:
    x, y = load_data(args.train_dir)
    if run is not None:
        run.log_parameter("samples", len(y))
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, random_state=args.seed, stratify=y
    )
    done, model = load_checkpoint(args.checkpoint_dir)
    if model is None:
        model = HistGradientBoostingClassifier(
            learning_rate=args.learning_rate,
            max_depth=args.max_depth,
            max_leaf_nodes=args.max_leaf_nodes,
            l2_regularization=args.l2_regularization,
            early_stopping=args.early_stopping == "true",
            random_state=args.seed,
            warm_start=True,
        )
    per_epoch = max(1, args.max_iter // args.epochs)
    for epoch in range(done + 1, args.epochs + 1):
        model.set_params(max_iter=per_epoch * epoch)
        model.fit(x_train, y_train)
        accuracy = accuracy_score(y_val, model.predict(x_val))
        print(f"epoch={epoch} iterations={model.n_iter_} val_accuracy={accuracy:.6f}", flush=True)
        if run is not None:
            run.log_metric(name="epoch_accuracy", value=accuracy, step=epoch)
        save_checkpoint(args.checkpoint_dir, epoch, model)
    loss = log_loss(y_val, model.predict_proba(x_val))
    print(f"val_loss={loss:.6f}")
    print(f"val_accuracy={accuracy_score(y_val, model.predict(x_val)):.6f}")
    out = Path(args.model_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "model.pkl").open("wb") as f:
        pickle.dump(model, f)
    print(f"model_kb={(out / 'model.pkl').stat().st_size / 1024:.1f}", flush=True)


if __name__ == "__main__":
    main()
