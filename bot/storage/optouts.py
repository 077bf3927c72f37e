"""Opt-outs per channel address, and the replay guard for inbound provider messages."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select

from bot.storage.models import OptOut, ProcessedMessage, table
from bot.storage.prepared import InsertIgnoring, Prepared

_o = table(OptOut)
_p = table(ProcessedMessage)
_KEY = (_o.c.channel == bindparam("channel"), _o.c.address == bindparam("address"))
_IS_OUT = Prepared(select(_o.c.opted_out_at).where(*_KEY))
_OPT_IN = Prepared(delete(_o).where(*_KEY))
_OPT_OUT = InsertIgnoring(_o, ["channel", "address"], channel=bindparam("channel"), address=bindparam("address"),
                          keyword=bindparam("keyword"), opted_out_at=bindparam("at"))
_SEEN = Prepared(select(_p.c.reply).where(_p.c.channel == bindparam("channel"),
                                          _p.c.external_id == bindparam("external_id")))
_REMEMBER = Prepared(_p.insert().values(channel=bindparam("channel"), external_id=bindparam("external_id"),
                                        reply=bindparam("reply"), created_at=bindparam("at")))


def is_opted_out(conn: Connection, channel: str, address: str) -> bool:
    """Whether the address asked to receive nothing more on the channel."""
    return _IS_OUT.first(conn, {"channel": channel, "address": address}) is not None


def opt_out(conn: Connection, channel: str, address: str, keyword: str, now: datetime) -> None:
    """Record an opt-out (the first one stands)."""
    _OPT_OUT.execute(conn, {"channel": channel, "address": address, "keyword": keyword[:32], "at": now})


def opt_in(conn: Connection, channel: str, address: str) -> bool:
    """Clear an opt-out; returns whether there was one."""
    return _OPT_IN.execute(conn, {"channel": channel, "address": address}) > 0


def replayed(conn: Connection, channel: str, external_id: str) -> list[str] | None:
    """The reply already given to this provider message, if it was seen before."""
    row = _SEEN.first(conn, {"channel": channel, "external_id": external_id})
    return None if row is None else list(json.loads(row[0]))


def remember(conn: Connection, channel: str, external_id: str, reply: list[str], now: datetime) -> None:
    """Record the reply given to a provider message, in the turn's transaction."""
    _REMEMBER.execute(conn, {"channel": channel, "external_id": external_id[:64],
                             "reply": json.dumps(reply, ensure_ascii=False), "at": now})
