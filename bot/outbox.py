"""The outbox: messages written in a turn's transaction, sent after it commits, tracked to delivery.

A turn that adds a contact writes an ``outbound_messages`` row (the opt-in notice) with the rest of
its changes, so the notice exists if and only if the contact does. The dispatcher (:mod:`bot.dispatch`)
sends it as it sends alerts: claimed with a lease, rendered here in the recipient's language, paced,
retried for a day (:data:`STALE`), and moved on by Twilio's status callbacks (:func:`apply_status`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from bot.i18n import Catalogs
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

_BY_PROVIDER_ID = Prepared(select(_m.c.id, _m.c.status).where(_m.c.provider_id == bindparam("sid")))
_SET_STATUS = Prepared(
    update(_m)
    .where(_m.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        error_code=bindparam("b_error"),
        reason=bindparam("b_reason"),
        updated_at=bindparam("b_at"),
    )
)


def render(catalogs: Catalogs, kind: str, locale: str, params: dict[str, Any], support: str, utility: str) -> str:
    """The text of an outbox message of ``kind`` in its recipient's language; ``utility`` is the utility's name."""
    if kind == OPT_IN_NOTICE:
        return catalogs.render(
            Msg.count(
                NOTICE,
                int(params["accounts"]),
                utility=Literal(utility),
                business=Literal(str(params["business"])),
                support=Literal(support),
            ),
            locale,
        )
    raise ValueError(f"unknown outbox message kind {kind!r}")


def apply_status(conn: Connection, provider_id: str, status: str, error_code: int | None, now: datetime) -> bool:
    """Apply a provider status callback in the caller's transaction; returns whether the message is ours."""
    row = _BY_PROVIDER_ID.first(conn, {"sid": provider_id})
    if row is None:
        return False
    if _RANK.get(status, -1) > _RANK.get(row[1], -1):
        reason = f"provider {error_code}" if error_code else None
        values = {"b_id": row[0], "b_status": status, "b_error": error_code, "b_reason": reason, "b_at": now}
        _SET_STATUS.execute(conn, values)
        if error_code == 21610:
            address = conn.execute(select(_m.c.channel, _m.c.address).where(_m.c.id == row[0])).one()
            optouts.opt_out(conn, address[0], address[1], "provider:21610", now, provider_blocks=True)
    return True


def record_status(db: Database, provider_id: str, status: str, error_code: int | None, now: datetime) -> bool:
    """Apply a provider status callback in a transaction of its own."""
    return db.run(lambda conn: apply_status(conn, provider_id, status, error_code, now))
