"""Writing to the outbox (``outbound_messages``) inside a turn's transaction; ``bot.outbox`` sends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, bindparam

from bot.storage.models import OutboundMessage, table
from bot.storage.prepared import Prepared

OPT_IN_NOTICE = "optin_notice"
# Every status an outbox message can have (bot.outbox moves them; status callbacks move sent ones on).
STATUSES = (
    "pending",
    "sending",
    "accepted",
    "queued",
    "sending_provider",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "read",
    "expired",
    "opted_out",
    "cancelled",
)

_m = table(OutboundMessage)
_NEW = Prepared(
    _m.insert().values(
        channel=bindparam("channel"),
        address=bindparam("address"),
        kind=bindparam("kind"),
        locale=bindparam("locale"),
        params=bindparam("params", type_=JSON),
        customer_id=bindparam("customer_id"),
        status="pending",
        attempts=0,
        next_attempt_at=bindparam("at"),
        created_at=bindparam("at"),
        updated_at=bindparam("at"),
    )
)


def enqueue(
    conn: Connection,
    channel: str,
    address: str,
    kind: str,
    locale: str,
    params: dict[str, Any],
    now: datetime,
    *,
    customer_id: int | None = None,
) -> None:
    """Add a message to the outbox in the caller's transaction (``customer_id``: whose change caused it)."""
    _NEW.execute(
        conn,
        {
            "channel": channel,
            "address": address,
            "kind": kind,
            "locale": locale,
            "params": params,
            "at": now,
            "customer_id": customer_id,
        },
    )
