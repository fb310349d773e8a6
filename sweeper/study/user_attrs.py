"""A running trial's user attributes, written in one transaction.

Optuna writes each user attribute in a transaction of its own (a lookup, a check, an
upsert, a commit, and the ORM around them): a few milliseconds each on the storage
thread, and a sweep writes about ten when it closes a trial. In a database that holds
Optuna's schema and speaks ``ON CONFLICT`` (SQLite, PostgreSQL), they are written here
in one: one check that the trial still runs, one upsert of every row, one commit, the
same rows Optuna would write (``trial_user_attributes``, values as JSON). Elsewhere
(an in-memory study, MySQL) Optuna writes them one by one.
"""

from __future__ import annotations

import json
from typing import Any

import optuna
import sqlalchemy

_STATE = sqlalchemy.text("SELECT state FROM trials WHERE trial_id = :trial")
_UPSERT = sqlalchemy.text(
    "INSERT INTO trial_user_attributes (trial_id, key, value_json)"
    " VALUES (:trial, :key, :value)"
    " ON CONFLICT (trial_id, key) DO UPDATE SET value_json = excluded.value_json"
)
_FINISHED = ("COMPLETE", "PRUNED", "FAIL")  # TrialState names, as Optuna stores them
_DIALECTS = ("sqlite", "postgresql")


def set_user_attrs(
    trial: optuna.Trial, attrs: dict[str, Any], rdb: optuna.storages.RDBStorage | None
) -> None:
    """Set ``attrs`` on ``trial`` (one transaction where ``rdb`` allows it).

    Raises ``optuna.exceptions.UpdateFinishedTrialError`` if the trial has finished
    (another orchestrator closed it), as Optuna does; then nothing is written."""
    if rdb is None or rdb.engine.dialect.name not in _DIALECTS or len(attrs) < 2:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    trial_id = trial._trial_id  # Optuna's Trial has no public accessor for it
    rows = [{"trial": trial_id, "key": k, "value": json.dumps(v)} for k, v in attrs.items()]
    with rdb.engine.begin() as conn:
        state = conn.execute(_STATE, {"trial": trial_id}).scalar_one()
        if state in _FINISHED:
            raise optuna.exceptions.UpdateFinishedTrialError(
                f"Trial#{trial.number} has already finished and can not be updated."
            )
        conn.execute(_UPSERT, rows)
