"""The cost race's peers, each on the race's workload: run in the race's own venv by
``cost_race.py`` (which builds it), one tool and one seed per call.

    python race_peers.py {syne_tune,ray,optuna} --seed 1 --trace FILE --budget 324 ...

Prints one JSON line: the wall-clock time the tool's run started (after imports).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import race_workload as w

WORKLOAD = Path(__file__).with_name("race_workload.py")


def spent(trace: str, budget: int) -> bool:
    path = Path(trace)
    return path.exists() and sum(1 for _ in path.open()) >= budget


def syne_tune(a: argparse.Namespace) -> float:
    """Syne Tune 0.13: LocalBackend, HyperbandScheduler type promotion (ASHA that pauses
    and resumes from checkpoints), random search, ``epochs`` as max_resource_attr."""
    from syne_tune import Tuner
    from syne_tune.backend import LocalBackend
    from syne_tune.config_space import choice, loguniform
    from syne_tune.optimizer.schedulers import HyperbandScheduler

    space: dict[str, Any] = {
        "alpha": loguniform(*w.SPACE["alpha"]),
        "eta0": loguniform(*w.SPACE["eta0"]),
        "learning_rate": choice(list(w.SPACE["learning_rate"])),
        "epochs": a.max_epochs,
        "epoch_seconds": a.epoch_seconds,
        "trace": a.trace,
        "budget": a.budget,
    }
    scheduler = HyperbandScheduler(
        space,
        type="promotion",
        searcher="random",
        metric="accuracy",
        mode="max",
        resource_attr="epoch",
        max_resource_attr="epochs",
        grace_period=1,
        reduction_factor=3,
        random_seed=a.seed,
    )
    tuner = Tuner(
        trial_backend=LocalBackend(entry_point=str(WORKLOAD)),
        scheduler=scheduler,
        stop_criterion=lambda status: spent(a.trace, a.budget),
        n_workers=a.parallel,
        sleep_time=0.2,
        results_update_interval=5,
        save_tuner=False,
        tuner_name=f"race-{a.seed}",
    )
    start = time.time()
    tuner.run()
    return start


def ray(a: argparse.Namespace) -> float:
    """Ray Tune: ASHAScheduler (stopping), random search, trials in process."""
    import ray as ray_
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.stopper import Stopper

    class Spent(Stopper):
        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            return False

        def stop_all(self) -> bool:
            return spent(a.trace, a.budget)

    def trainable(config: dict[str, Any]) -> None:
        trial = tune.get_context().get_trial_id()

        def report(epoch: int, value: float) -> bool:
            tune.report({"accuracy": value, "epoch": epoch})
            return True

        w.train(config, trial, a.trace, a.budget, a.epoch_seconds, report, a.max_epochs)

    ray_.init(num_cpus=a.parallel, include_dashboard=False, log_to_driver=False)
    space = {
        "alpha": tune.loguniform(*w.SPACE["alpha"]),
        "eta0": tune.loguniform(*w.SPACE["eta0"]),
        "learning_rate": tune.choice(list(w.SPACE["learning_rate"])),
    }
    scheduler = ASHAScheduler(
        time_attr="epoch", max_t=a.max_epochs, grace_period=1, reduction_factor=3
    )
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(
            metric="accuracy",
            mode="max",
            scheduler=scheduler,
            num_samples=a.max_trials,
            max_concurrent_trials=a.parallel,
            search_alg=BasicVariantGenerator(random_state=a.seed),
        ),
        run_config=tune.RunConfig(
            stop=Spent(), storage_path=tempfile.mkdtemp(prefix="race-ray-"), verbose=0
        ),
    )
    start = time.time()
    tuner.fit()
    ray_.shutdown()
    return start


def optuna(a: argparse.Namespace) -> float:
    """Optuna in process: HyperbandPruner, RandomSampler, ``optimize(n_jobs=parallel)``."""
    import optuna as optuna_

    optuna_.logging.set_verbosity(optuna_.logging.WARNING)
    study = optuna_.create_study(
        direction="maximize",
        sampler=optuna_.samplers.RandomSampler(seed=a.seed),
        pruner=optuna_.pruners.HyperbandPruner(
            min_resource=1, max_resource=a.max_epochs, reduction_factor=3
        ),
    )

    def objective(trial: optuna_.Trial) -> float:
        config = {
            "alpha": trial.suggest_float("alpha", *w.SPACE["alpha"], log=True),
            "eta0": trial.suggest_float("eta0", *w.SPACE["eta0"], log=True),
            "learning_rate": trial.suggest_categorical(
                "learning_rate", list(w.SPACE["learning_rate"])
            ),
        }
        best = -math.inf

        def report(epoch: int, value: float) -> bool:
            nonlocal best
            best = max(best, value)
            trial.report(value, epoch)
            return not trial.should_prune()

        w.train(config, str(trial.number), a.trace, a.budget, a.epoch_seconds, report, a.max_epochs)
        if spent(a.trace, a.budget):
            study.stop()
        return best if best > -math.inf else 0.0

    start = time.time()
    study.optimize(objective, n_trials=a.max_trials, n_jobs=a.parallel)
    return start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tool", choices=["syne_tune", "ray", "optuna"])
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--trace", required=True)
    p.add_argument("--budget", type=int, required=True)
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument("--max-epochs", type=int, default=27)
    p.add_argument("--max-trials", type=int, default=400)
    p.add_argument("--epoch-seconds", type=float, default=0.2)
    a = p.parse_args()
    start = {"syne_tune": syne_tune, "ray": ray, "optuna": optuna}[a.tool](a)
    print(json.dumps({"start": start}))


if __name__ == "__main__":
    main()
