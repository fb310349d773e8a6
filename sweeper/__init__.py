"""Sweeper: asynchronous hyperparameter sweeps over SageMaker training jobs."""

__version__ = "0.1.0"
