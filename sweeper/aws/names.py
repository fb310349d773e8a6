"""Deterministic, valid SageMaker resource names."""

from __future__ import annotations

import hashlib
import re

MAX_JOB_NAME = 63
_INVALID = re.compile(r"[^A-Za-z0-9-]+")


def job_name(sweep: str, trial: int, attempt: int = 1) -> str:
    """``<sweep>-<trial>-<attempt>``, valid for ``TrainingJobName`` whatever the sweep name.

    Characters SageMaker refuses become ``-``. When the result would pass 63 characters,
    the prefix is cut and an 8-character hash of the whole sweep name is kept, so two long
    sweep names that share a start never collide. Same inputs, same name: this is what
    makes job creation idempotent.
    """
    prefix = _clean(sweep)
    suffix = f"-{trial}-{attempt}"
    if len(prefix) + len(suffix) > MAX_JOB_NAME:
        digest = hashlib.sha256(sweep.encode()).hexdigest()[:8]
        keep = MAX_JOB_NAME - len(suffix) - len(digest) - 1
        prefix = f"{prefix[:keep].rstrip('-')}-{digest}"
    return prefix + suffix


def trial_key(sweep: str, trial: int) -> str:
    """``<sweep>-<trial>``: what every job of one trial shares (its checkpoint prefix)."""
    return f"{_clean(sweep)}-{trial}"


def job_prefix(sweep: str) -> str:
    """A prefix every job name of ``sweep`` starts with (to list their log streams).

    For a name short enough to be kept whole it is ``<sweep>-``; a long one is cut, by
    :func:`job_name`, at a length that depends on the trial number, so the prefix is
    its start up to the shortest cut (a trial number of up to 9 digits, 3 for attempts).
    """
    prefix = _clean(sweep)
    if len(prefix) + len("-999999999-999") <= MAX_JOB_NAME:
        return f"{prefix}-"
    return prefix[: MAX_JOB_NAME - len("-999999999-999") - 9].rstrip("-")


def _clean(sweep: str) -> str:
    """The sweep name with what SageMaker refuses in names replaced by ``-``."""
    return _INVALID.sub("-", sweep).strip("-") or "sweep"
