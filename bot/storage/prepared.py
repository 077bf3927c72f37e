"""Core statements compiled once per dialect and run on the DBAPI cursor: the turn's fast path.

A turn runs a handful of statements that never change shape (read the session, write it back, list
a customer's service accounts). SQLAlchemy's ``Connection.execute`` spends about 100 microseconds of
bookkeeping on each, more than SQLite spends running them (``bench/turns.py`` shows the difference).
:class:`Prepared` keeps SQLAlchemy as the author of the SQL and of the value conversions (its
compiler and its type processors, per dialect) and only skips the per-call bookkeeping. It runs
inside the caller's transaction on the same connection, so it mixes freely with ordinary Core calls.

Errors still reach SQLAlchemy: a driver error is raised as SQLAlchemy's own exception (so callers
see ``OperationalError``, ``IntegrityError``, ... with ``orig``), and a lost connection goes through
``Connection._handle_dbapi_exception``, exactly as in SQLAlchemy's own execution: the connection is
invalidated and so is every pooled connection older than it, so the next turn connects afresh.
The cursor is the DBAPI connection's (``dbapi_connection``): with an asyncio driver that is
SQLAlchemy's adapter, which awaits the driver from inside a greenlet (``bot.storage.aio``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

Processor = Callable[[Any], Any]


class _Compiled:
    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.positional: tuple[str, ...] | None = tuple(compiled.positiontup) if compiled.positiontup else None
        self.binds: list[tuple[str, Processor]] = []
        self.defaults = {
            name: bind.value for name, bind in compiled.binds.items() if not bind.required and bind.callable is None
        }
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.binds.append((name, processor))
        self.results: list[tuple[int, Processor]] = []
        if getattr(statement, "is_select", False):
            for index, column in enumerate(statement.selected_columns):
                processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
                if processor is not None:
                    self.results.append((index, processor))

    def params(self, values: Mapping[str, Any]) -> Any:
        converted = {**self.defaults, **values} if self.defaults else dict(values)
        for name, processor in self.binds:
            if name in converted:
                converted[name] = processor(converted[name])
        if self.positional is None:
            return converted
        return tuple(converted[name] for name in self.positional)

    def row(self, raw: Any) -> tuple[Any, ...]:
        if not self.results:
            return tuple(raw)
        values = list(raw)
        for index, processor in self.results:
            values[index] = processor(values[index])
        return tuple(values)


class Prepared:
    """One Core statement, compiled on first use for each dialect."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _statement(self, dialect: Dialect) -> ClauseElement:
        return self.statement

    def _for(self, conn: Connection) -> _Compiled:
        key = f"{conn.dialect.name}+{conn.dialect.driver}"
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self._statement(conn.dialect), conn.dialect)
        return compiled

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        compiled = self._for(conn)
        values = compiled.params(params)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, values)
        except Exception as exc:
            cursor.close()
            raise_as_sqlalchemy(conn, exc, compiled.sql, values)
        return compiled, cursor

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row of a SELECT."""
        compiled, cursor = self._run(conn, params)
        try:
            return [compiled.row(raw) for raw in cursor.fetchall()]
        finally:
            cursor.close()

    def first(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row of a SELECT, or None."""
        compiled, cursor = self._run(conn, params)
        try:
            raw = cursor.fetchone()
            return None if raw is None else compiled.row(raw)
        finally:
            cursor.close()

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run an INSERT, UPDATE or DELETE once per parameter set."""
        compiled = self._for(conn)
        values = [compiled.params(row) for row in rows]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(compiled.sql, values)
        except Exception as exc:
            raise_as_sqlalchemy(conn, exc, compiled.sql, values)
        finally:
            cursor.close()

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run an INSERT, UPDATE or DELETE; returns the number of rows it touched."""
        _compiled, cursor = self._run(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()


def raise_as_sqlalchemy(conn: Connection, exc: Exception, sql: str | None, params: Any) -> NoReturn:
    """Raise a driver error as SQLAlchemy's execution would, invalidating a lost connection."""
    dialect = conn.dialect
    if not isinstance(exc, dialect.loaded_dbapi.Error):
        raise exc
    raw = None if conn.invalidated else conn.connection.dbapi_connection
    if dialect.is_disconnect(exc, raw, None):
        conn._handle_dbapi_exception(exc, sql, params, None, None)  # invalidates; always raises
    raise DBAPIError.instance(sql, params, exc, dialect.loaded_dbapi.Error, dialect=dialect) from exc


class InsertIgnoring(Prepared):
    """``INSERT ... ON CONFLICT (keys) DO NOTHING``, in each dialect's own syntax (SQLite, PostgreSQL)."""

    def __init__(self, table: Table, keys: Sequence[str], returning: Sequence[Any] = (), **values: Any) -> None:
        super().__init__(table.insert())
        self.table, self.keys, self.values, self.returning = table, list(keys), values, tuple(returning)

    def _statement(self, dialect: Dialect) -> ClauseElement:
        insert = pg_insert if dialect.name == "postgresql" else sqlite_insert
        statement = insert(self.table).values(**self.values).on_conflict_do_nothing(index_elements=self.keys)
        return statement.returning(*self.returning) if self.returning else statement
