"""A study's trials in six queries, for reports of large sweeps and for every ask and
tell of a sweep; counts by state in two.

Optuna's own loader builds an ORM object per row (about 0.5 ms a trial: 5 s for 10 000
trials), and its cache re-reads every unfinished trial that way two or three times per
ask. This reads Optuna's tables directly: the trials, then their parameters, values,
attributes and intermediate values, each in one query. The tables are Optuna's RDB
schema (unchanged since Optuna 3.2, the schema version ``v3.2.0.a``); only the columns
read here are declared.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Container
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.trial import FrozenTrial, TrialState

_META = sa.MetaData()
_TRIALS = sa.Table(
    "trials",
    _META,
    sa.Column("trial_id", sa.Integer),
    sa.Column("number", sa.Integer),
    sa.Column("study_id", sa.Integer),
    sa.Column("state", sa.String),
    sa.Column("datetime_start", sa.DateTime),
    sa.Column("datetime_complete", sa.DateTime),
)
_PARAMS = sa.Table(
    "trial_params",
    _META,
    sa.Column("param_id", sa.Integer),
    sa.Column("trial_id", sa.Integer),
    sa.Column("param_name", sa.String),
    sa.Column("param_value", sa.Float),
    sa.Column("distribution_json", sa.Text),
)
_VALUES = sa.Table(
    "trial_values",
    _META,
    sa.Column("trial_id", sa.Integer),
    sa.Column("objective", sa.Integer),
    sa.Column("value", sa.Float),
    sa.Column("value_type", sa.String),
)
_INTERMEDIATE = sa.Table(
    "trial_intermediate_values",
    _META,
    sa.Column("trial_id", sa.Integer),
    sa.Column("step", sa.Integer),
    sa.Column("intermediate_value", sa.Float),
    sa.Column("intermediate_value_type", sa.String),
)
_USER = sa.Table(
    "trial_user_attributes",
    _META,
    sa.Column("trial_user_attribute_id", sa.Integer),
    sa.Column("trial_id", sa.Integer),
    sa.Column("key", sa.String),
    sa.Column("value_json", sa.Text),
)
_SYSTEM = sa.Table(
    "trial_system_attributes",
    _META,
    sa.Column("trial_system_attribute_id", sa.Integer),
    sa.Column("trial_id", sa.Integer),
    sa.Column("key", sa.String),
    sa.Column("value_json", sa.Text),
)
_STUDIES = sa.Table("studies", _META, sa.Column("study_id", sa.Integer))
_SPECIAL = {"INF_POS": float("inf"), "INF_NEG": float("-inf"), "NAN": float("nan")}
_MAX_LISTED = 500  # trial ids named in one query; beyond, they are picked out here
_NOT_FOUND = "Record does not exist."  # Optuna's words


def read_trials(
    engine: sa.Engine,
    study_id: int,
    states: Container[TrialState] | None = None,
    ids: Collection[int] = (),
    after: int = -1,
) -> list[FrozenTrial]:
    """The trials of study ``study_id``, by number, as Optuna's loader returns them: all,
    or (as Optuna's ``RDBStorage._get_trials``) those in ``states`` whose id is in ``ids``
    or above ``after`` (when ``after`` > -1). Raises KeyError if there is no such study."""
    ids = {i for i in ids if i <= after}
    where = [_TRIALS.c.study_id == study_id]
    if states is not None:  # by name: PostgreSQL's state column is an enum, not text
        names = [s.name for s in TrialState if s in states]
        where.append(sa.cast(_TRIALS.c.state, sa.String).in_(names))
    if after > -1 and (not ids or len(ids) <= _MAX_LISTED):
        newer = _TRIALS.c.trial_id > after
        where.append(sa.or_(_TRIALS.c.trial_id.in_(ids), newer) if ids else newer)
    chosen = sa.select(_TRIALS.c.trial_id).where(*where)
    with engine.connect() as conn:
        rows = list(conn.execute(sa.select(_TRIALS).where(*where).order_by(_TRIALS.c.trial_id)))
        if after > -1 and len(ids) > _MAX_LISTED:
            rows = [r for r in rows if r.trial_id in ids or r.trial_id > after]
        if not rows:
            _check_study(conn, study_id)
            return []
        return _build(conn, rows, chosen)


def read_trial(engine: sa.Engine, trial_id: int) -> FrozenTrial:
    """Trial ``trial_id`` as Optuna's ``RDBStorage.get_trial`` returns it (KeyError if
    there is no such trial)."""
    where = _TRIALS.c.trial_id == trial_id
    with engine.connect() as conn:
        rows = list(conn.execute(sa.select(_TRIALS).where(where)))
        if not rows:
            raise KeyError(_NOT_FOUND)
        return _build(conn, rows, sa.select(_TRIALS.c.trial_id).where(where))[0]


def _check_study(conn: sa.Connection, study_id: int) -> None:
    found = conn.execute(sa.select(_STUDIES.c.study_id).where(_STUDIES.c.study_id == study_id))
    if found.first() is None:
        raise KeyError(_NOT_FOUND)


def _build(conn: sa.Connection, rows: list[Any], chosen: Any) -> list[FrozenTrial]:
    """The rows' trials, their other tables read in one query each (``chosen``: a
    selection of trial ids including theirs)."""
    params: dict[int, dict[str, tuple[float, BaseDistribution]]] = defaultdict(dict)
    for _, tid, name, value, dist in conn.execute(
        sa.select(_PARAMS).where(_PARAMS.c.trial_id.in_(chosen)).order_by(_PARAMS.c.param_id)
    ):
        params[tid][name] = (value, _distribution(dist))
    values: dict[int, dict[int, float]] = defaultdict(dict)
    for tid, objective, value, kind in conn.execute(
        sa.select(_VALUES).where(_VALUES.c.trial_id.in_(chosen))
    ):
        values[tid][objective] = _SPECIAL.get(kind, value)
    steps: dict[int, dict[int, float]] = defaultdict(dict)
    for tid, step, value, kind in conn.execute(
        sa.select(_INTERMEDIATE).where(_INTERMEDIATE.c.trial_id.in_(chosen))
    ):
        steps[tid][step] = _SPECIAL.get(kind, value)
    user, system = (_attrs(conn, table, chosen) for table in (_USER, _SYSTEM))
    return [
        _frozen(r, params[r.trial_id], values[r.trial_id], steps[r.trial_id], user, system)
        for r in rows
    ]


def _frozen(
    row: Any,
    params: dict[str, tuple[float, BaseDistribution]],
    values: dict[int, float],
    steps: dict[int, float],
    user: dict[int, dict[str, Any]],
    system: dict[int, dict[str, Any]],
) -> FrozenTrial:
    return FrozenTrial(
        number=row.number,
        state=TrialState[row.state],
        value=None,
        values=[values[k] for k in sorted(values)] or None,
        datetime_start=_local(row.datetime_start),
        datetime_complete=_local(row.datetime_complete),
        params={k: d.to_external_repr(v) for k, (v, d) in params.items()},
        distributions={k: d for k, (_, d) in params.items()},
        user_attrs=user.get(row.trial_id, {}),
        system_attrs=system.get(row.trial_id, {}),
        intermediate_values=steps,
        trial_id=row.trial_id,
    )


def _attrs(conn: sa.Connection, table: sa.Table, chosen: Any) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = defaultdict(dict)
    query = sa.select(table).where(table.c.trial_id.in_(chosen)).order_by(table.c[0])
    for _, tid, key, value in conn.execute(query):
        out[tid][key] = json.loads(value)
    return out


@lru_cache(maxsize=256)
def _distribution(text: str) -> BaseDistribution:
    """A parameter's distribution from its JSON (a study has few distinct ones)."""
    return json_to_distribution(text)


def _local(utc: datetime | None) -> datetime | None:
    """Optuna stores naive UTC and hands out naive local time."""
    if utc is None:
        return None
    return utc.replace(tzinfo=UTC).astimezone().replace(tzinfo=None)


def count_states(
    engine: sa.Engine, study_id: int, marked: str
) -> tuple[dict[TrialState, int], int]:
    """How many trials of study ``study_id`` are in each state, and how many PRUNED ones
    carry the user attribute ``marked``: two counting queries, no trial read."""
    by_state = (
        sa.select(_TRIALS.c.state, sa.func.count())
        .where(_TRIALS.c.study_id == study_id)
        .group_by(_TRIALS.c.state)
    )
    with_mark = (  # by state too: PostgreSQL's state column is an enum, not text
        sa.select(_TRIALS.c.state, sa.func.count())
        .select_from(_TRIALS.join(_USER, _USER.c.trial_id == _TRIALS.c.trial_id))
        .where(_TRIALS.c.study_id == study_id, _USER.c.key == marked)
        .group_by(_TRIALS.c.state)
    )
    with engine.connect() as conn:
        counts = {TrialState[s]: int(n) for s, n in conn.execute(by_state)}
        marks = {TrialState[s]: int(n) for s, n in conn.execute(with_mark)}
    return counts, marks.get(TrialState.PRUNED, 0)
