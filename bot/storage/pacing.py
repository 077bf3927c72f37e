"""The shared send budget: one rate per channel and sender, held by every worker together.

A budget is one row (``send_pacing``): the earliest time, in Unix seconds, at which its next unit may
leave. A worker that wants to send ``units`` (SMS segments, Telegram messages) moves that time on by
``units / rate`` in one atomic statement and gets the start of the span it reserved (the generic cell
rate algorithm, with no burst): however many workers on however many machines reserve at once, their
spans never overlap, so the sends they space within them never exceed the rate together. A 429 moves
the budget past the provider's ``retry_after`` for everyone.
"""

from __future__ import annotations

from sqlalchemy import Connection, func
from sqlalchemy.dialects import postgresql, sqlite

from bot.storage.models import SendPacing, table

_p = table(SendPacing)


def reserve(conn: Connection, key: str, seconds: float, now: float) -> float:
    """Reserve ``seconds`` of the budget ``key`` (units / rate) in the caller's transaction; returns
    when the reserved span starts (``now`` or later)."""
    later = func.greatest if conn.dialect.name == "postgresql" else func.max
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(_p)
        .values(key=key, next_at=now + seconds)
        .on_conflict_do_update(index_elements=[_p.c.key], set_={"next_at": later(_p.c.next_at, now) + seconds})
        .returning(_p.c.next_at)
    )
    end = float(conn.execute(statement).scalar_one())
    return end - seconds


def hold(conn: Connection, key: str, until: float) -> None:
    """Nobody sends on ``key`` before ``until`` (the provider asked us to wait)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    later = func.greatest if conn.dialect.name == "postgresql" else func.max
    conn.execute(
        dialect.insert(_p)
        .values(key=key, next_at=until)
        .on_conflict_do_update(index_elements=[_p.c.key], set_={"next_at": later(_p.c.next_at, until)})
    )
