"""Every row of every table, to show that something changed nothing (or exactly one thing)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from bot.storage.models import Base

Rows = dict[str, list[dict[str, Any]]]


def every_row(engine: Engine) -> Rows:
    """Each table of the schema (new tables included as they are added) -> its rows, in a stable order."""
    with engine.connect() as conn:
        return {
            table.name: sorted((dict(r) for r in conn.execute(select(table)).mappings()), key=repr)
            for table in Base.metadata.sorted_tables
        }


def without_session(rows: Rows, channel: str, address: str) -> Rows:
    """``rows`` without the session row of ``(channel, address)`` (it changes on every turn)."""
    sessions = [r for r in rows["sessions"] if (r["channel"], r["address"]) != (channel, address)]
    return {**rows, "sessions": sessions}
