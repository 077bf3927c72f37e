"""Keep personal data only as long as it serves: remembered replies and idle sessions are purged.

- ``processed_messages`` keeps the rendered reply to each provider message (names, numbers), so
  that a provider's retry of the same message gets the same answer and changes nothing. Providers
  retry for minutes to hours; after ``replay_retention`` (``OUTAGEBOT_REPLAY_RETENTION_HOURS``,
  48 by default) the reply is deleted. A message older than that is not expected again.
- ``sessions`` keep a conversation's state, its unfinished slots (names, numbers being entered) and
  the per-address verification throttle. A session idle for ``session_retention``
  (``OUTAGEBOT_SESSION_RETENTION_DAYS``, 30 by default) is deleted. The throttle's window and the
  idle timeout are at most a day (and the retention at least a day), so nothing still in force is
  lost: the address's next message starts a new conversation, as it would after the idle timeout.
  A session without ``last_seen_at`` (none is written so) is left alone: its age is unknown.

Opt-outs (``opt_outs``: an address's request to get nothing more must outlive everything) and the
audit log are never touched here.

Rows go in batches of ``batch_size``, each batch its own short transaction, so a large backlog
never holds SQLite's write lock, or PostgreSQL's row locks, for long; turns run between batches.
On PostgreSQL a batch skips rows another transaction holds (``FOR UPDATE SKIP LOCKED``): a session
in the middle of a turn is not waited for (the next purge gets it if it is still idle), and
several workers purging at once share the work instead of queueing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Delete, Table, delete, select, tuple_

from bot.storage.db import Database
from bot.storage.models import ChatSession, ProcessedMessage, table

log = logging.getLogger(__name__)

BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class Purged:
    """What one purge removed."""

    replies: int
    sessions: int


def _batch(rows: Table, keys: tuple[Column[object], ...], age: Column[object], cutoff: datetime, size: int) -> Delete:
    """DELETE of at most ``size`` rows whose ``age`` column is at or before ``cutoff``.

    No index on ``age`` and no ORDER BY: every turn writes these tables, and an index on the column it
    changes cost each turn a fifth of its time on SQLite; an hourly scan that stops at ``size`` rows
    found costs far less than that.
    """
    chosen = (
        select(*keys).where(age <= cutoff).limit(size).with_for_update(skip_locked=True)
    )  # PostgreSQL; SQLite's write lock covers it
    key = keys[0] if len(keys) == 1 else tuple_(*keys)
    return delete(rows).where(key.in_(chosen), age <= cutoff)  # checked again on the row deleted


def _purge(
    db: Database, rows: Table, keys: tuple[Column[object], ...], age: Column[object], cutoff: datetime, size: int
) -> int:
    statement = _batch(rows, keys, age, cutoff, size)
    removed = 0
    while True:
        count: int = db.run(lambda conn: conn.execute(statement).rowcount)
        removed += count
        if count < size:
            return removed


def purge_expired(
    db: Database,
    now: datetime,
    replay_retention: timedelta,
    session_retention: timedelta,
    *,
    batch_size: int = BATCH_SIZE,
) -> Purged:
    """Delete remembered replies and idle sessions past their retention; returns how many went.

    Args:
        db: the database (each batch is one transaction of its own; call it outside any transaction).
        now: the current time (aware, UTC), from the injected clock.
        replay_retention: age at which a remembered reply to a provider message is deleted
            (``Settings.replay_retention``).
        session_retention: idle time at which a session is deleted (``Settings.session_retention``).
        batch_size: rows deleted per transaction.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    p, s = table(ProcessedMessage), table(ChatSession)
    replies = _purge(db, p, (p.c.channel, p.c.external_id), p.c.created_at, now - replay_retention, batch_size)
    sessions = _purge(db, s, (s.c.id,), s.c.last_seen_at, now - session_retention, batch_size)
    if replies or sessions:
        log.info(
            "purged %s remembered replies older than %s and %s sessions idle for %s or more",
            f"{replies:,}",
            _span(replay_retention),
            f"{sessions:,}",
            _span(session_retention),
        )
    return Purged(replies, sessions)


def _span(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    if hours % 24 == 0:
        return f"{hours / 24:g} days"
    return f"{hours:g} hours"
