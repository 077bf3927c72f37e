"""The outbox: messages written in a turn's transaction, sent after it commits, tracked to delivery.

A turn that adds a contact writes an ``outbound_messages`` row (the opt-in notice) with the rest of
its changes, so the notice exists if and only if the contact does. :func:`flush` then claims due rows
(with a lease, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several workers can share the table),
renders each in the recipient's language, skips opted-out numbers, sends, and records the provider's
id or the error. A worker that dies mid-way leaves its rows to be claimed again when the lease ends;
the only duplicate that can cause is a message Twilio accepted in the instant before it was recorded.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from bot import metrics
from bot.channels.base import Outcome, SendResult
from bot.i18n import Catalogs
from bot.security import mask
from bot.storage import optouts
from bot.storage.db import Database
from bot.storage.models import OutboundMessage, table
from bot.storage.outbound import OPT_IN_NOTICE
from bot.storage.prepared import Prepared
from dialogs.text import NP_, Literal, Msg

log = logging.getLogger(__name__)
_m = table(OutboundMessage)

# The utility's name comes first: a stranger's text that only names a business reads as spam.
NOTICE = NP_(
    "{utility}: {business} added you to rotating outage alerts for {n} service account. "
    "Msg & data rates may apply. Reply STOP to stop. Help: {support}",
    "{utility}: {business} added you to rotating outage alerts for {n} service accounts. "
    "Msg & data rates may apply. Reply STOP to stop. Help: {support}",
)
LEASE = timedelta(minutes=5)
# A notice is retried for a day (Twilio away, rate limits), then expires. Full-jitter backoff capped at
# ten minutes makes about 300 attempts in that day; the attempt limit is only a ceiling above that.
STALE = timedelta(hours=24)
MAX_ATTEMPTS = 500
# Status callbacks may arrive out of order; a status never moves back.
_RANK = {
    "pending": 0,
    "sending": 1,
    "accepted": 2,
    "queued": 2,
    "sending_provider": 3,
    "sent": 4,
    "delivered": 5,
    "undelivered": 5,
    "failed": 5,
    "read": 6,
}

_DONE = Prepared(
    update(_m)
    .where(_m.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        provider_id=bindparam("b_provider_id"),
        error_code=bindparam("b_error"),
        next_attempt_at=bindparam("b_next"),
        updated_at=bindparam("b_at"),
    )
)
_BY_PROVIDER_ID = Prepared(select(_m.c.id, _m.c.status).where(_m.c.provider_id == bindparam("sid")))
_SET_STATUS = Prepared(
    update(_m)
    .where(_m.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), error_code=bindparam("b_error"), updated_at=bindparam("b_at"))
)

Sender = Callable[[str, str], SendResult]


@dataclass(frozen=True, slots=True)
class Claimed:
    """An outbox row claimed for sending."""

    id: int
    channel: str
    address: str
    kind: str
    locale: str
    params: dict[str, Any]
    attempts: int
    created_at: datetime


def render(catalogs: Catalogs, message: Claimed, support: str, utility: str) -> str:
    """The text of an outbox message in its recipient's language; ``utility`` is the utility's name."""
    if message.kind == OPT_IN_NOTICE:
        params = message.params
        return catalogs.render(
            Msg.count(
                NOTICE,
                int(params["accounts"]),
                utility=Literal(utility),
                business=Literal(str(params["business"])),
                support=Literal(support),
            ),
            message.locale,
        )
    raise ValueError(f"unknown outbox message kind {message.kind!r}")


def _claim(db: Database, now: datetime, limit: int) -> list[Claimed]:
    with db.transaction() as conn:
        query = (
            select(
                _m.c.id, _m.c.channel, _m.c.address, _m.c.kind, _m.c.locale, _m.c.params, _m.c.attempts, _m.c.created_at
            )
            .where(_m.c.status.in_(("pending", "sending")), _m.c.next_attempt_at <= now)
            .order_by(_m.c.next_attempt_at)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = [Claimed(*row) for row in conn.execute(query)]
        if rows:
            conn.execute(
                update(_m)
                .where(_m.c.id.in_([r.id for r in rows]))
                .values(status="sending", attempts=_m.c.attempts + 1, next_attempt_at=now + LEASE, updated_at=now)
            )
    return rows


def _backoff(attempts: int, retry_after: float | None) -> timedelta:
    """Full-jitter exponential backoff (1 s base, 10 min cap), at least what the provider asked."""
    delay = random.uniform(0, min(600.0, 2.0**attempts))
    return timedelta(seconds=max(delay, retry_after or 0.0))


def flush(
    db: Database,
    send: Sender,
    catalogs: Catalogs,
    clock: Callable[[], datetime],
    support: str,
    *,
    utility: str,
    limit: int = 50,
    max_attempts: int = MAX_ATTEMPTS,
) -> int:
    """Send what is due; returns how many messages were handled.

    ``support`` (the support number) and ``utility`` (the utility's name) go into every message.

    A transient failure is tried again after a backoff, until the message is a day old (``expired``)
    or has had ``max_attempts`` attempts (``failed``).
    """
    now = clock()
    claimed = _claim(db, now, limit)
    for message in claimed:
        status, provider_id, error, next_at = "failed", None, None, now
        with db.unlocked() as conn:
            opted_out = optouts.is_opted_out(conn, message.channel, message.address)
        if opted_out:
            status = "opted_out"
        elif now - message.created_at > STALE:
            status = "expired"
        else:
            result = send(message.address, render(catalogs, message, support, utility))
            provider_id, error = result.provider_id, result.error_code
            if result.outcome is not Outcome.ACCEPTED:
                metrics.PROVIDER_ERRORS.labels(str(error or "none")).inc()
            if result.outcome is Outcome.ACCEPTED:
                status = "accepted"
            elif result.outcome is Outcome.OPTED_OUT:
                status = "opted_out"
            elif result.outcome is Outcome.PERMANENT:
                status = "failed"
            elif message.attempts + 1 < max_attempts:
                status, next_at = "pending", now + _backoff(message.attempts + 1, result.retry_after)
                if next_at - message.created_at > STALE:
                    status, next_at = "expired", now
        with db.transaction() as conn:
            if status == "opted_out" and not opted_out:
                optouts.opt_out(conn, message.channel, message.address, "provider:21610", now, provider_blocks=True)
            _DONE.execute(
                conn,
                {
                    "b_id": message.id,
                    "b_status": status,
                    "b_provider_id": provider_id,
                    "b_error": error,
                    "b_next": next_at,
                    "b_at": now,
                },
            )
        log.info("outbox %s to %s: %s", message.kind, mask(message.address), status)
    return len(claimed)


def apply_status(conn: Connection, provider_id: str, status: str, error_code: int | None, now: datetime) -> bool:
    """Apply a provider status callback in the caller's transaction; returns whether the message is ours."""
    row = _BY_PROVIDER_ID.first(conn, {"sid": provider_id})
    if row is None:
        return False
    if _RANK.get(status, -1) > _RANK.get(row[1], -1):
        _SET_STATUS.execute(conn, {"b_id": row[0], "b_status": status, "b_error": error_code, "b_at": now})
        if error_code == 21610:
            address = conn.execute(select(_m.c.channel, _m.c.address).where(_m.c.id == row[0])).one()
            optouts.opt_out(conn, address[0], address[1], "provider:21610", now, provider_blocks=True)
    return True


def record_status(db: Database, provider_id: str, status: str, error_code: int | None, now: datetime) -> bool:
    """Apply a provider status callback in a transaction of its own."""
    return db.run(lambda conn: apply_status(conn, provider_id, status, error_code, now))
