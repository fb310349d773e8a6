"""Optuna storage from a URL, and what counts as that storage being briefly away.

SQLite (the default) is tuned for a few writers on one machine; PostgreSQL
(``postgresql://``, with the ``postgres`` extra) for several orchestrators anywhere.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Collection, Container, Iterator
from pathlib import Path

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState

from sweeper.errors import ConfigError, StorageFault
from sweeper.study.reader import read_trial, read_trials

# What a dropped connection, a database restart or a locked SQLite file raise.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    optuna.exceptions.StorageInternalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
)
# ... and what a damaged database raises too (see :func:`fault`).
STORAGE_ERRORS: tuple[type[BaseException], ...] = (*OUTAGE_ERRORS, sqlalchemy.exc.DatabaseError)


def redacted(url: str) -> str:
    """``url`` with its password masked: safe to print and to log."""
    if not url or "@" not in url:
        return url
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url.split("://", 1)[0] + "://***"


def open_storage(
    url: str, read_only: bool = False, idle_seconds: float | None = None
) -> optuna.storages.RDBStorage | None:
    """Optuna storage for ``url`` ("" means in memory).

    SQLite runs in WAL mode with ``synchronous=NORMAL``: a commit survives the
    orchestrator being killed (what resume relies on), only an OS crash may lose the
    last few, and each commit skips an fsync, which halves the cost of ask and tell.
    Optuna's schema-version check (about 0.35 s of loading migration scripts) is skipped
    only for a database file this call creates: it guards files older Optunas made. Such
    a file's schema stamp is deferred too (see :func:`stamp_schema`).
    Other databases check each pooled connection before use, so a database restart
    costs a reconnect, not an error. On PostgreSQL, ``idle_seconds`` bounds how long a
    session may sit in a transaction between statements (the server ends it after that):
    Optuna numbers a new trial under a lock on the study's row, so an orchestrator frozen
    mid-ask (a paused VM) would otherwise stall every other one for as long as it stays
    frozen. Its lease is the right bound: by then the others take it for dead anyway;
    thawed, it finds its connection gone and retries, as after a database restart.

    ``read_only`` (SQLite): open the file for reading only, so that ``status`` and
    ``report`` work on a study in a read-only directory, or on a read-only disk (then
    reading it as it is, since SQLite can make no lock file there).

    Raises ConfigError, in one line, for a missing driver or a database that does not
    answer; StorageFault for a damaged, full or read-only one.
    """
    if not url:
        return None
    if not url.startswith("sqlite:///"):
        kwargs: dict[str, object] = {"pool_pre_ping": True}
        if idle_seconds is not None and url.startswith("postgres"):
            kwargs["connect_args"] = {"options": _idle_bound(url, idle_seconds)}
        return _connect(url, kwargs, skip=False)
    path = Path(url.removeprefix("sqlite:///"))
    if read_only:
        return _connect(url, {"creator": lambda: _read_only(path)}, skip=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=60, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return _connect(url, {"creator": connect}, skip=new)


def _idle_bound(url: str, seconds: float) -> str:
    """libpq's ``options`` for a PostgreSQL ``url``: those the URL gives, and the bound
    on a session idle in a transaction."""
    given = sqlalchemy.engine.make_url(url).query.get("options", "")
    mine = f"-c idle_in_transaction_session_timeout={round(seconds * 1000)}"
    return " ".join(filter(None, [*([given] if isinstance(given, str) else given), mine]))


def release(rdb: optuna.storages.RDBStorage) -> None:
    """Close the calling thread's session on ``rdb`` and every connection its pool holds
    (the last connection to close a SQLite file folds the write-ahead log into it and
    removes it). Never raises: a database that is away has nothing left to close."""
    with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError, sqlite3.Error):
        rdb.remove_session()
        rdb.engine.dispose()


def no_study_yet(url: str) -> bool:
    """Whether ``url`` is a SQLite file that holds no study yet: no file, or one a
    starting sweep made a moment ago and has not filled in (Optuna's tables, stamped), which
    a reader opening it would have to write. False for any other storage."""
    if not url.startswith("sqlite:///"):
        return False
    return not _holds_studies(Path(url.removeprefix("sqlite:///")))


def _holds_studies(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        conn = _read_only(path)
    except sqlite3.DatabaseError:
        return True  # damaged: opening it says so
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if not {"studies", "version_info"} <= tables:
            return False
        return conn.execute("SELECT 1 FROM version_info LIMIT 1").fetchone() is not None
    except sqlite3.DatabaseError:
        return True
    finally:
        conn.close()


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes: shared locks where SQLite can make them, else the
    file as it is (``immutable``: a read-only disk holds no writer either)."""
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        return conn
    except sqlite3.OperationalError:
        conn.close()
        return sqlite3.connect(uri + "&immutable=1", uri=True, check_same_thread=False)


def _connect(url: str, engine_kwargs: dict[str, object], skip: bool) -> optuna.storages.RDBStorage:
    for attempt in range(3):  # orchestrators creating Optuna's tables at once: one loses
        try:
            return _rdb(url, engine_kwargs, skip)
        except (ConfigError, sqlalchemy.exc.IntegrityError) as exc:
            if "already exists" not in str(exc.__cause__ or exc) and not isinstance(
                exc, sqlalchemy.exc.IntegrityError
            ):
                raise
            skip = False
            time.sleep(0.2 * (attempt + 1))
    return _rdb(url, engine_kwargs, skip)


class _CoreReads(optuna.storages.RDBStorage):
    """Optuna's RDB storage, reading trials with :func:`read_trials` (six Core queries)
    instead of its ORM: the same trials, in about a fifth of the time. Optuna's cache
    re-reads every unfinished trial two or three times per ask, which made that read
    most of what an ask and a tell cost."""

    def _get_trials(
        self,
        study_id: int,
        states: Container[TrialState] | None,
        included_trial_ids: Collection[int],
        trial_id_greater_than: int,
    ) -> list[FrozenTrial]:
        return read_trials(self.engine, study_id, states, included_trial_ids, trial_id_greater_than)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return read_trial(self.engine, trial_id)


@functools.cache
def _storage_class() -> type[optuna.storages.RDBStorage]:
    """:class:`_CoreReads`, or Optuna's own class if the readers :class:`_CoreReads`
    replaces (one private) are not those it knows (another Optuna): then its ORM reads."""
    known = {
        "_get_trials": [
            "self",
            "study_id",
            "states",
            "included_trial_ids",
            "trial_id_greater_than",
        ],
        "get_trial": ["self", "trial_id"],
    }
    for name, parameters in known.items():
        reader = getattr(optuna.storages.RDBStorage, name, None)
        if reader is None or list(inspect.signature(reader).parameters) != parameters:
            return optuna.storages.RDBStorage
    return _CoreReads


def _rdb(url: str, engine_kwargs: dict[str, object], skip: bool) -> optuna.storages.RDBStorage:
    try:
        if skip and (deferring := _deferring_manager()) is not None:
            with _swapped(deferring):
                return _storage_class()(
                    url, engine_kwargs=engine_kwargs, skip_compatibility_check=True
                )
        return _storage_class()(url, engine_kwargs=engine_kwargs, skip_compatibility_check=skip)
    except ImportError as exc:
        scheme = url.split("://", 1)[0]
        hint = (
            "install the PostgreSQL driver: pip install 'sweeper[postgres]'"
            if scheme.startswith("postgres")
            else "install the SQLAlchemy driver for it"
        )
        raise ConfigError(
            f"storage {redacted(url)}: no database driver for {scheme}://; {hint}"
        ) from exc
    except sqlalchemy.exc.IntegrityError:  # orchestrators making Optuna's tables at once
        raise
    except STORAGE_ERRORS as exc:
        if (meaning := fault(exc, url)) is not None:
            raise StorageFault(meaning) from exc
        raise ConfigError(
            f"storage {redacted(url)} does not answer ({describe(exc)}); start the database"
            " or fix the URL, then run the same command again"
        ) from exc


def stamp_schema(rdb: optuna.storages.RDBStorage) -> None:
    """Write the schema revision (Alembic's) that :func:`open_storage` deferred for a
    database file it created; nothing for any other storage, or once done.

    Writing it imports Alembic and reads Optuna's migration scripts: about 0.35 s of one
    core, a third of a sweep's start-up, so a sweep does it once its first jobs are under
    way. The stamp is what ``optuna storage upgrade`` starts from; a file that never got
    it (its sweep killed in its first seconds) gets it from the next process to open it,
    as Optuna stamps any file that lacks it.
    """
    manager = getattr(rdb, "_version_manager", None)
    if manager is not None and hasattr(manager, "stamp"):
        manager.stamp()


_SWAP = threading.Lock()  # one storage at a time is built with the deferring manager


@functools.cache
def _deferring_manager() -> type | None:
    """Optuna's schema-version manager, stamping only when asked; None if this Optuna
    has no such class (then nothing is deferred)."""
    module = optuna.storages._rdb.storage
    real = getattr(module, "_VersionManager", None)
    if real is None or not hasattr(real, "_init_alembic"):
        return None

    class Deferring(real):  # type: ignore[valid-type, misc]
        _stamped = False

        def _init_alembic(self) -> None:  # at construction: not yet
            pass

        def stamp(self) -> None:
            if not self._stamped:
                super()._init_alembic()  # a no-op if another process stamped meanwhile
                self._stamped = True

    return Deferring


@contextlib.contextmanager
def _swapped(manager: type) -> Iterator[None]:
    """Optuna's storages built in this block use ``manager`` for their schema version."""
    module = optuna.storages._rdb.storage
    with _SWAP:
        real = module._VersionManager
        setattr(module, "_VersionManager", manager)  # noqa: B010 (a private name)
        try:
            yield
        finally:
            setattr(module, "_VersionManager", real)  # noqa: B010


# Local faults, by the words SQLite (and the OS) use: what is wrong, and what to do.
_FAULTS = (
    (
        ("database disk image is malformed", "file is not a database"),
        "is damaged ({text}): keep a copy of it, then restore it from a backup, or move it"
        " aside to start the sweep afresh",
    ),
    (
        ("database or disk is full", "no space left on device", "disk quota exceeded"),
        "cannot be written: the disk is full ({text}); free some space, then run the same"
        " command again (what was recorded is kept)",
    ),
    (
        ("readonly database", "read-only file system", "unable to open database file"),
        "cannot be written ({text}): make the file and its directory writable, then run"
        " the same command again (`status` and `report` read it as it is)",
    ),
)


def fault(exc: BaseException, url: str) -> str | None:
    """What a local storage fault means for the study at ``url``, in one line; None if
    ``exc`` is not one (an outage, a bug)."""
    text = describe(exc)
    for needles, meaning in _FAULTS:
        if any(n in text.lower() for n in needles):
            return f"the study's database {redacted(url)} " + meaning.format(text=text)
    return None


def describe(exc: BaseException) -> str:
    """The database's own words for an outage, in one line."""
    cause = exc.__cause__ or exc
    text = str(getattr(cause, "orig", None) or cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def count_trials(engine: sqlalchemy.Engine, study_id: int) -> int:
    """How many trials a study holds, in one COUNT over Optuna's ``trials`` table (Optuna's
    own ``get_n_trials`` loads every trial: seconds at 10 000)."""
    query = sqlalchemy.text("SELECT COUNT(*) FROM trials WHERE study_id = :study")
    with engine.connect() as conn:
        return int(conn.execute(query, {"study": study_id}).scalar_one())


def memory_engine() -> sqlalchemy.Engine:
    """An in-memory database for the leases of an in-memory study: one connection for
    every thread, so all of them see the same tables."""
    return sqlalchemy.create_engine(
        "sqlite://", poolclass=sqlalchemy.pool.StaticPool, connect_args={"check_same_thread": False}
    )


def trial_count(rdb: optuna.storages.RDBStorage | None, study: optuna.Study, name: str) -> int:
    """How many trials the study holds: one COUNT query, not a load of every trial."""
    if rdb is None:
        return len(study.get_trials(deepcopy=False))
    return count_trials(rdb.engine, rdb.get_study_id_from_name(name))


def uncached(study: optuna.Study, rdb: optuna.storages.RDBStorage) -> None:
    """Let ``study`` use ``rdb`` directly, without the cache Optuna puts in front of it.

    For samplers that never read the study's trials (random, QMC). Optuna's cache keeps
    every trial it has seen for the life of the process (about 6 MB per 1 000 trials)
    and re-reads every unfinished trial at each ask (with 100 jobs in flight, half the
    cost of an ask). It pays for samplers that read the whole history at each ask (TPE,
    CMA-ES, GP, NSGA-II, the grid). Optuna has no switch for it: the study's storage
    attribute is replaced; an Optuna that renamed it keeps its cache, and works as before.
    """
    if isinstance(getattr(study, "_storage", None), optuna.storages.BaseStorage):
        study._storage = rdb
