"""The study's algorithms: Optuna's samplers and pruners, made from the space file."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from typing import Any

import optuna

from sweeper import space
from sweeper.config import PrunerKind, SamplerKind, SweepConfig
from sweeper.errors import ConfigError


def first_params(config: SweepConfig) -> dict[str, Any]:
    """The parameters the sweep's first trial gets (an in-memory study; nothing stored)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = [optuna.study.StudyDirection[d.upper()] for d in config.goal.directions]
    study = optuna.create_study(sampler=make_sampler(config), directions=directions)
    return dict(study.ask(space.distributions(config.space)).params)


def make_sampler(config: SweepConfig, offset: int = 0) -> optuna.samplers.BaseSampler:
    """The configured sampler; TPE uses ``constant_liar`` so parallel asks spread out.

    ``offset`` (trials already in the study) derives a new seed for a resumed sweep,
    deterministically; the grid keeps its seed so its order, and so its progress, holds.
    """
    kind, seed = config.sampler.kind, config.sampler.seed
    if seed is not None and offset and kind != SamplerKind.GRID:
        seed = (seed * 1_000_003 + offset) % 2**32
    s = optuna.samplers
    if kind == SamplerKind.GRID:
        return _AskTellGridSampler(space.grid(config.space), seed=seed)
    if kind == SamplerKind.CMAES:
        _require("cmaes", "sampler.kind cmaes needs the 'cmaes' package: pip install cmaes")
        return s.CmaEsSampler(seed=seed)
    if kind == SamplerKind.GP:
        _require("torch", "sampler.kind gp needs PyTorch: pip install torch")
        return s.GPSampler(seed=seed)
    size = config.sampler.population_size or 50  # Optuna's default, for both
    factories: dict[SamplerKind, Callable[[], s.BaseSampler]] = {
        SamplerKind.TPE: lambda: s.TPESampler(seed=seed, constant_liar=True),
        SamplerKind.RANDOM: lambda: s.RandomSampler(seed=seed),
        SamplerKind.QMC: lambda: s.QMCSampler(seed=seed),
        SamplerKind.NSGA2: lambda: s.NSGAIISampler(seed=seed, population_size=size),
        SamplerKind.NSGA3: lambda: s.NSGAIIISampler(seed=seed, population_size=size),
    }
    with warnings.catch_warnings():  # NSGA-III is "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return factories[kind]()


def make_pruner(config: SweepConfig) -> optuna.pruners.BasePruner:
    """The configured pruner (Optuna's, with the space file's options)."""
    p, options = optuna.pruners, dict(config.pruner.options)
    factories: dict[PrunerKind, Callable[..., optuna.pruners.BasePruner]] = {
        PrunerKind.NONE: p.NopPruner,
        PrunerKind.MEDIAN: p.MedianPruner,
        PrunerKind.PERCENTILE: p.PercentilePruner,
        PrunerKind.SUCCESSIVE_HALVING: p.SuccessiveHalvingPruner,
        PrunerKind.HYPERBAND: p.HyperbandPruner,
        PrunerKind.WILCOXON: p.WilcoxonPruner,
    }
    with warnings.catch_warnings():  # "experimental" in Optuna: nothing the user can act on
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if config.pruner.kind == PrunerKind.ASHA:  # promotion pauses: nothing to prune
            if options["mode"] == "promotion":
                return p.NopPruner()
            return p.SuccessiveHalvingPruner(
                min_resource=options["min_resource"], reduction_factor=options["reduction_factor"]
            )
        if config.pruner.kind == PrunerKind.PATIENT:
            wrapped = options.pop("wrapped", None)
            inner = factories[PrunerKind(wrapped)]() if wrapped else None
            return p.PatientPruner(inner, **options)
        return factories[config.pruner.kind](**options)


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler for ask/tell: Optuna's calls ``study.stop()`` when the grid is used up,
    which raises outside ``optimize``. The sweep bounds itself by the grid's size instead
    (:attr:`SweepStudy.trial_limit`)."""

    def after_trial(self, *args: Any, **kwargs: Any) -> None:
        return None


def _require(module: str, message: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(message)
