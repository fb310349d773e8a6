"""``warm_start:`` in the space file: the earlier sweeps a new one starts from.

Each ``from`` entry is a space file (its path relative to this one; the parent's own
storage and name are read from it) or ``{storage: URL, study: NAME}``. What the parents
hold is checked when the study opens (:mod:`sweeper.study.warm`), not here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweeper.config import fields
from sweeper.config.model import Parent, SweepConfig, WarmMode, WarmStart
from sweeper.errors import ConfigError

MAX_PARENTS = 5  # as SageMaker's tuner allows


def parse(
    raw: dict[str, Any] | None, base: Path, load: Callable[[Path], SweepConfig]
) -> WarmStart | None:
    """The section, or None without one; ``load`` reads a parent's space file."""
    if raw is None:
        return None
    sec = fields.mapping(raw, "warm_start", {"from", "mode", "top"})
    mode = fields.get(sec, "mode", "warm_start", str, WarmMode.IDENTICAL.value)
    fields.one_of(mode, [m.value for m in WarmMode], "warm_start.mode")
    top = fields.get(sec, "top", "warm_start", int, 5)
    if top < 1:
        raise ConfigError(f"warm_start.top: must be >= 1, got {top}")
    if "top" in sec and mode != WarmMode.TRANSFER:
        raise ConfigError("warm_start.top: goes with mode: transfer")
    found = fields.get(sec, "from", "warm_start", list)
    if not 1 <= len(found) <= MAX_PARENTS:
        raise ConfigError(
            f"warm_start.from: give 1 to {MAX_PARENTS} earlier sweeps, got {len(found)}"
        )
    parents = tuple(
        _parent(item, f"warm_start.from[{i}]", base, load) for i, item in enumerate(found)
    )
    if len({(p.storage, p.study) for p in parents}) < len(parents):
        raise ConfigError("warm_start.from: names the same sweep twice")
    return WarmStart(parents, WarmMode(mode), top)


def _parent(item: object, where: str, base: Path, load: Callable[[Path], SweepConfig]) -> Parent:
    if isinstance(item, str):
        path = (base / item).resolve()
        if not path.is_file():
            raise ConfigError(f"{where}: no space file at {fields.shown_path(path)}")
        try:
            parent = load(path)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        return Parent(parent.storage_url, parent.name, item)
    sec = fields.mapping(item, where, {"storage", "study"})
    storage = fields.get(sec, "storage", where, str)
    study = fields.get(sec, "study", where, str)
    return Parent(storage, study, study)


def check_not_self(warm: WarmStart | None, config: SweepConfig) -> None:
    """A sweep cannot start from itself."""
    for i, parent in enumerate(warm.parents if warm else ()):
        if (parent.storage, parent.study) == (config.storage_url, config.name):
            raise ConfigError(f"warm_start.from[{i}]: is this sweep itself")
