"""Engines, connections for turns, and migrating a database to the newest schema.

SQLite (the default) runs in WAL mode with ``synchronous=NORMAL`` and takes the write lock at the
start of every transaction (``BEGIN IMMEDIATE``), so a turn's read of its session and its write cannot
interleave with another process's turn. Within one process a lock hands the writer role over without
SQLite's sleep-and-retry busy loop. PostgreSQL serializes turns of one address with
``SELECT ... FOR UPDATE`` on the session row and lets different addresses run in parallel.

Each thread keeps one long-lived connection: a turn costs no pool checkout and no reset round trip.
A turn's transaction is begun and ended on the driver connection; SQLAlchemy joins it only when the
turn runs a Core statement (most turns only read and write their session row, see
``bot.storage.sessions``), which saves its bookkeeping on the hot path.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the SQLite settings this project relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            raw = conn.connection.driver_connection
            if not raw.in_transaction:  # type: ignore[union-attr]  # a turn may have begun already
                raw.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_size=10, max_overflow=20, **kwargs)


def alembic_config(engine: Engine) -> Config:
    """Alembic's configuration for our migrations, bound to ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (a new database is created from nothing)."""
    command.upgrade(alembic_config(engine), "head")


def is_empty(engine: Engine) -> bool:
    """Whether the database has no customer accounts table yet, or no rows in it."""
    if not inspect(engine).has_table("customer_accounts"):
        return True
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT 1 FROM customer_accounts LIMIT 1").first() is None


class Database:
    """The engine plus what a turn needs: a transaction on a long-lived connection.

    PostgreSQL: one connection per thread, turns in parallel. SQLite: one connection for the whole
    process, used by one thread at a time (SQLite has one writer anyway, and a connection that other
    connections write behind must drop its page cache at every transaction: with a connection per
    thread of a web server's pool, every turn ran cold, five times slower).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._local = threading.local()
        self._writer = threading.RLock() if self.dialect == "sqlite" else None
        self._shared: Connection | None = None
        self._connections: list[Connection] = []
        self._guard = threading.Lock()

    @contextlib.contextmanager
    def unlocked(self) -> Iterator[Connection]:
        """A connection for reads that need no transaction of their own (and no database lock).

        On SQLite each statement then commits by itself. PostgreSQL's driver opens a transaction
        implicitly; it is ended afterwards so the connection is not left idle in a transaction.
        """
        with self._writer or contextlib.nullcontext():
            conn = self._connection()
            try:
                yield conn
            finally:
                if conn.in_transaction():  # a Core statement began one: end it, nothing was written
                    conn.rollback()
                elif self.dialect != "sqlite":
                    conn.connection.driver_connection.rollback()  # type: ignore[union-attr]

    def _connection(self) -> Connection:
        conn: Connection | None = self._shared if self._writer else getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect()
            if self._writer:
                self._shared = conn
            else:
                self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back if it raises.

        On SQLite it starts with ``BEGIN IMMEDIATE``: the write lock is held from the first read.
        """
        lock = self._writer or contextlib.nullcontext()
        with lock:
            conn = self._connection()
            raw: Any = conn.connection.driver_connection
            try:
                if self.dialect == "sqlite":
                    raw.execute("BEGIN IMMEDIATE")
                yield conn
            except BaseException:
                try:
                    if conn.in_transaction():
                        conn.rollback()
                    else:
                        raw.rollback()
                finally:
                    if conn.invalidated:
                        self._local.conn = self._shared = None
                raise
            if conn.in_transaction():
                conn.commit()
            else:
                raw.commit()

    def close(self) -> None:
        """Close every connection this object opened and dispose of the engine."""
        with self._guard:
            for conn in self._connections:
                with contextlib.suppress(Exception):
                    conn.close()
            self._connections.clear()
        self.engine.dispose()
