"""The replay guard for inbound provider messages: a message id already answered gets the same reply.

Twilio (and later Telegram) may deliver one message more than once. The reply a turn gave is stored
under the provider's message id in that turn's own transaction, so a replay is answered with the same
texts and changes nothing. Rows are kept only as long as a provider retries (``bot.storage.retention``).
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, bindparam, select

from bot.storage.models import ProcessedMessage, table
from bot.storage.prepared import Prepared

_p = table(ProcessedMessage)
_SEEN = Prepared(
    select(_p.c.reply).where(_p.c.channel == bindparam("channel"), _p.c.external_id == bindparam("external_id"))
)
_REMEMBER = Prepared(
    _p.insert().values(
        channel=bindparam("channel"),
        external_id=bindparam("external_id"),
        reply=bindparam("reply"),
        created_at=bindparam("at"),
    )
)


def replayed(conn: Connection, channel: str, external_id: str) -> list[str] | None:
    """The reply already given to this provider message, if it was seen before."""
    row = _SEEN.first(conn, {"channel": channel, "external_id": external_id})
    return None if row is None else list(json.loads(row[0]))


def remember(conn: Connection, channel: str, external_id: str, reply: list[str], now: datetime) -> None:
    """Record the reply given to a provider message, in the turn's transaction."""
    _REMEMBER.execute(
        conn,
        {
            "channel": channel,
            "external_id": external_id[:64],
            "reply": json.dumps(reply, ensure_ascii=False),
            "at": now,
        },
    )
