"""Engines, transactions for turns, and migrating a database to the newest schema.

SQLite (the default) runs in WAL mode with ``synchronous=NORMAL``; a transaction takes the write lock
at its start (``BEGIN IMMEDIATE``), so a turn's read of its session and its write cannot interleave
with another process's turn. Within one process a lock hands the writer role over. The connection
turns use never sleeps inside SQLite's busy handler: :class:`Database` waits for the write lock
itself, for at most ``Waits.lock_seconds``, or (``wait=False``) raises :class:`Busy` at once so that
an event loop can wait without blocking (``bot.storage.aio``).

PostgreSQL serializes turns of one conversation with ``SELECT ... FOR UPDATE`` on its session row and
runs different conversations in parallel. Every connection carries ``lock_timeout`` and
``statement_timeout`` (``Waits``), so no turn waits longer than that for a lock or a slow database.

A turn's transaction is begun and ended on the DBAPI connection; SQLAlchemy joins it only when the
turn runs an ordinary Core statement (most turns only read and write their session row, see
``bot.storage.sessions``), which saves its bookkeeping on the hot path. Errors still reach SQLAlchemy
(``bot.storage.prepared.raise_as_sqlalchemy``), so a lost connection is replaced at the next turn.

Each thread keeps its connection (``Database``), so SQLAlchemy's pool never sees them between turns
and cannot recycle them when the server restarts. ``Database`` does what the pool does for the
connections it holds: a lost connection seen on any thread marks every connection made before it as
suspect, and each is replaced before its next use (after a restart or a failover they are all dead:
without this, a turn retried after a lost connection landed on another dead one).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from bot.storage.files import secure_sqlite_file
from bot.storage.prepared import raise_as_sqlalchemy

MIGRATIONS = Path(__file__).with_name("migrations")
_LOSSES_SEEN = "outagebot.losses_seen"  # in a connection's info: how many lost connections preceded it
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Waits:
    """How long anything on the turn path may wait before the customer gets the apology.

    Attributes:
        lock_seconds: a row lock (PostgreSQL ``lock_timeout``), SQLite's write lock, a pooled connection.
        statement_seconds: one statement (PostgreSQL ``statement_timeout``).
        connect_seconds: opening a connection.
    """

    lock_seconds: float = 3.0
    statement_seconds: float = 5.0
    connect_seconds: float = 5.0


BATCH_WAITS = Waits(lock_seconds=30.0, statement_seconds=0.0, connect_seconds=10.0)  # an import, an export


class Busy(OperationalError):
    """SQLite's write lock is held elsewhere (another process, or another thread of this one)."""

    def __init__(self) -> None:
        super().__init__("BEGIN IMMEDIATE", None, Exception("database is locked"))


class CommitFailed(Exception):
    """The commit itself failed: whether it took effect is unknown, so the turn is not retried."""


def postgres_url(url: str | URL) -> URL:
    """A PostgreSQL URL with the psycopg 3 driver."""
    return make_url(url).set(drivername="postgresql+psycopg")


def postgres_connect_args(waits: Waits) -> dict[str, Any]:
    """psycopg connection arguments that bound every wait (milliseconds; 0 means no limit)."""
    options = f"-c lock_timeout={int(waits.lock_seconds * 1000)}"
    options += f" -c statement_timeout={int(waits.statement_seconds * 1000)}"
    return {"connect_timeout": max(1, round(waits.connect_seconds)), "options": options}


def make_engine(url: str, waits: Waits | None = None, *, pool_size: int = 10, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the SQLite settings and PostgreSQL time limits this project relies on.

    ``pool_size``: PostgreSQL connections kept (one per thread that runs turns, plus a few).
    """
    waits = waits or Waits()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            secure_sqlite_file(parsed.database)  # 0600 for the database and its -wal/-shm (bot.storage.files)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": waits.lock_seconds}, **kwargs)
        busy_ms = int(waits.lock_seconds * 1000)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")  # Database's own connection sets 0
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            raw = conn.connection.dbapi_connection
            if not raw.in_transaction:  # type: ignore[union-attr]  # a turn may have begun already
                raw.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]

        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ArgumentError(f"{parsed.get_backend_name()} is not supported: use sqlite:///FILE or postgresql://...")
    try:
        return create_engine(
            postgres_url(parsed),
            pool_size=pool_size,
            max_overflow=5,
            pool_timeout=waits.lock_seconds,
            connect_args=postgres_connect_args(waits),
            **kwargs,
        )
    except ImportError as exc:
        raise NoSuchModuleError(f"PostgreSQL needs psycopg 3: pip install 'outagebot[postgres]' ({exc})") from exc


def alembic_config(engine: Engine) -> Config:
    """Alembic's configuration for our migrations, bound to ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (the newest schema by default; a new database is created)."""
    command.upgrade(alembic_config(engine), revision)


@dataclass(frozen=True, slots=True)
class Schema:
    """Where a database's schema is, against the migrations this code carries."""

    current: str | None  # None: no schema at all (a new database)
    head: str
    known: tuple[str, ...]  # every revision, newest first

    @property
    def up_to_date(self) -> bool:
        """Whether the database has the newest schema."""
        return self.current == self.head

    @property
    def newer(self) -> bool:
        """Whether the database was migrated by a newer version of this code (a revision it does not know)."""
        return self.current is not None and self.current not in self.known


def schema(engine: Engine) -> Schema:
    """The database's revision and the code's (read-only: nothing is created)."""
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return Schema(current, scripts.get_current_head() or "", tuple(s.revision for s in scripts.walk_revisions()))


def is_empty(engine: Engine) -> bool:
    """Whether the database has no customer accounts table yet, or no rows in it."""
    if not inspect(engine).has_table("customer_accounts"):
        return True
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT 1 FROM customer_accounts LIMIT 1").first() is None


def _is_locked(exc: BaseException) -> bool:
    return "database is locked" in str(getattr(exc, "orig", exc)).lower()


def begin(conn: Connection) -> None:
    """Begin a transaction on the DBAPI connection (SQLite: take the write lock now)."""
    if conn.dialect.name == "sqlite":
        try:
            conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
        except Exception as exc:
            if _is_locked(exc):
                raise Busy from exc
            raise_as_sqlalchemy(conn, exc, "BEGIN IMMEDIATE", ())
    # psycopg begins implicitly at the first statement


def commit(conn: Connection) -> None:
    """Commit what :func:`begin` began (or SQLAlchemy, if a Core statement joined)."""
    try:
        if conn.in_transaction():
            conn.commit()
        else:
            try:
                conn.connection.dbapi_connection.commit()  # type: ignore[union-attr]
            except Exception as exc:
                raise_as_sqlalchemy(conn, exc, "COMMIT", ())
    except Exception as exc:
        raise CommitFailed(f"commit failed: {type(exc).__name__}") from exc


def rollback(conn: Connection) -> None:
    """Roll back, quietly: the connection may be gone, and then there is nothing to roll back."""
    with contextlib.suppress(Exception):
        if conn.in_transaction():
            conn.rollback()
        elif not conn.invalidated:
            conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]


def in_transaction(conn: Connection, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one transaction on ``conn``: committed if it returns, rolled back if it raises."""
    begin(conn)
    try:
        result = work(conn)
    except BaseException:
        rollback(conn)
        raise
    commit_or_end(conn)
    return result


def commit_or_end(conn: Connection) -> None:
    """Commit; if the commit is refused, end the transaction anyway (SQLite keeps it open) and raise."""
    try:
        commit(conn)
    except CommitFailed:
        rollback(conn)
        raise


def outside_transaction(conn: Connection, work: Callable[[Connection], T]) -> T:
    """Run reads that need no transaction of their own, and end the one the driver may have opened."""
    try:
        return work(conn)
    finally:
        rollback(conn)


class Database:
    """The synchronous engine plus what turns need: a transaction on a long-lived connection.

    PostgreSQL: one connection per thread, turns in parallel. SQLite: one connection for the whole
    process, used by one thread at a time (SQLite has one writer anyway, and a connection that other
    connections write behind must drop its page cache at every transaction: with a connection per
    thread of a web server's pool, every turn ran cold, five times slower).
    """

    def __init__(self, engine: Engine, waits: Waits | None = None) -> None:
        self.engine = engine
        self.waits = waits or Waits()
        self.dialect = engine.dialect.name
        self._local = threading.local()
        self._writer = threading.RLock() if self.dialect == "sqlite" else None
        self._shared: Connection | None = None
        self._connections: list[Connection] = []
        self._guard = threading.Lock()
        self._losses = 0  # lost connections seen so far, on any thread; a connection made earlier is suspect
        event.listen(engine, "handle_error", self._on_error)

    def _on_error(self, context: ExceptionContext) -> None:
        if context.is_disconnect:
            with self._guard:
                self._losses += 1

    def _suspect(self, conn: Connection) -> bool:
        """Made before the last lost connection (it may be dead too), or left holding a transaction that
        died with its connection (SQLAlchemy then refuses even to read its ``info``)."""
        try:
            return bool(conn.info.get(_LOSSES_SEEN, 0) < self._losses)
        except Exception:
            return True

    def _connection(self) -> Connection:
        conn: Connection | None = self._shared if self._writer else getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated or self._suspect(conn):
            if conn is not None:  # a lost connection: release it (and forget it) before taking another
                with contextlib.suppress(Exception):
                    if not conn.invalidated:
                        conn.invalidate()  # no ROLLBACK over a connection that may be dead
                    conn.close()
                with self._guard:
                    if conn in self._connections:
                        self._connections.remove(conn)
                self._shared = self._local.conn = None
            losses = self._losses
            conn = self.engine.connect()
            conn.info[_LOSSES_SEEN] = losses
            if self._writer:
                conn.connection.dbapi_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
                self._shared = conn
            else:
                self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def _held(self, wait: bool) -> Iterator[None]:
        """Hold the SQLite connection for this thread (a no-op on PostgreSQL)."""
        if self._writer is None:
            yield
            return
        acquired = self._writer.acquire(timeout=self.waits.lock_seconds) if wait else self._writer.acquire(False)
        if not acquired:
            raise Busy
        try:
            yield
        finally:
            self._writer.release()

    def _retrying(self, attempt: Callable[[], T], wait: bool) -> T:
        """Run ``attempt``; while SQLite is busy elsewhere and ``wait``, try again until the deadline."""
        deadline = time.monotonic() + self.waits.lock_seconds
        delay = 0.001
        while True:
            try:
                return attempt()
            except Busy:
                if not wait or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def run(self, work: Callable[[Connection], T], *, wait: bool = True) -> T:
        """Run ``work`` in one transaction; with ``wait=False`` raise :class:`Busy` rather than wait."""

        def attempt() -> T:
            with self._held(wait):
                return in_transaction(self._connection(), work)

        return self._retrying(attempt, wait)

    def autocommit(self, work: Callable[[Connection], T]) -> T:
        """PostgreSQL: run ``work`` with every statement committing by itself (no BEGIN, no COMMIT).

        For a turn that only reads and then writes its session row in one statement: two round trips
        instead of four. What it writes must be one statement, or checked like the session's version.
        """
        if self._writer is not None:
            raise RuntimeError("autocommit turns are for PostgreSQL")
        conn = self._connection()
        raw: Any = conn.connection.dbapi_connection
        raw.autocommit = True
        try:
            return work(conn)
        finally:
            if conn.in_transaction():  # a Core statement made SQLAlchemy begin: nothing is open on the server
                with contextlib.suppress(Exception):
                    conn.commit()
            with contextlib.suppress(Exception):
                raw.autocommit = False

    def read(self, work: Callable[[Connection], T], *, wait: bool = True) -> T:
        """Run reads outside any transaction (no write lock on SQLite)."""

        def attempt() -> T:
            with self._held(wait):
                try:
                    return outside_transaction(self._connection(), work)
                except OperationalError as exc:
                    if _is_locked(exc):
                        raise Busy from exc
                    raise

        return self._retrying(attempt, wait)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction as a block: committed when it ends, rolled back if it raises (waits for locks)."""

        def attempt() -> Connection:
            if self._writer is not None and not self._writer.acquire(timeout=self.waits.lock_seconds):
                raise Busy
            try:
                conn = self._connection()
                begin(conn)
            except BaseException:
                if self._writer is not None:
                    self._writer.release()
                raise
            return conn

        conn = self._retrying(attempt, True)
        try:
            try:
                yield conn
            except BaseException:
                rollback(conn)
                raise
            commit_or_end(conn)
        finally:
            if self._writer is not None:
                self._writer.release()

    @contextlib.contextmanager
    def unlocked(self) -> Iterator[Connection]:
        """A connection for reads that need no transaction of their own (and no database lock)."""
        with self._held(True):
            conn = self._connection()
            try:
                yield conn
            finally:
                rollback(conn)

    def close(self) -> None:
        """Close every connection this object opened and dispose of the engine."""
        with contextlib.suppress(Exception):
            event.remove(self.engine, "handle_error", self._on_error)
        with self._guard:
            for conn in self._connections:
                with contextlib.suppress(Exception):
                    conn.close()
            self._connections.clear()
        self.engine.dispose()
