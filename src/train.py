"""Example training script: a gradient-boosted classifier on scikit-learn's digits data.

Runs unchanged on SageMaker (any scikit-learn container) and in Sweeper's emulator:
hyperparameters arrive as ``--name value`` arguments, metrics are printed for the
space file's ``metric_definitions`` regexes, and the model is written to
``SM_MODEL_DIR``. The data ships with scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from pathlib import Path

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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    return p.parse_args()


def main() -> None:
    args = parse_args()
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, random_state=args.seed, stratify=y
    )
    model = HistGradientBoostingClassifier(
        learning_rate=args.learning_rate,
        max_depth=args.max_depth,
        max_leaf_nodes=args.max_leaf_nodes,
        l2_regularization=args.l2_regularization,
        early_stopping=args.early_stopping == "true",
        max_iter=args.max_iter,
        random_state=args.seed,
    )
    start = time.perf_counter()
    model.fit(x_train, y_train)
    print(f"train_seconds={time.perf_counter() - start:.3f} iterations={model.n_iter_}")
    accuracy = accuracy_score(y_val, model.predict(x_val))
    loss = log_loss(y_val, model.predict_proba(x_val))
    print(f"val_loss={loss:.6f}")
    print(f"val_accuracy={accuracy:.6f}")
    out = Path(args.model_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "model.pkl").open("wb") as f:
        pickle.dump(model, f)


if __name__ == "__main__":
    main()
