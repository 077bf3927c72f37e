"""Many rows into one table, in batches, on every database.

SQLAlchemy sends a plain ``executemany`` INSERT to the driver: sqlite3 runs it natively and fast, but
psycopg sends one statement per row (about 100 µs each here: 30 s for an import's 300,000 rows).
With RETURNING, SQLAlchemy batches the rows itself into multi-row ``INSERT ... VALUES`` pages
("insertmanyvalues"), which PostgreSQL runs some ten times faster; so on PostgreSQL we ask for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert


def insert_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` into ``table`` in as few statements as the database allows."""
    if not rows:
        return
    statement = insert(table)
    if conn.dialect.name == "postgresql":
        statement = statement.returning(*table.primary_key.columns)
    conn.execute(statement, list(rows))
