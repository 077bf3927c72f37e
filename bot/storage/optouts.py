"""Opt-outs per channel address: a number that said STOP (or NGỪNG) gets nothing more until it opts in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select

from bot.storage.models import OptOut, table
from bot.storage.prepared import InsertIgnoring, Prepared

_o = table(OptOut)
_KEY = (_o.c.channel == bindparam("channel"), _o.c.address == bindparam("address"))
_IS_OUT = Prepared(select(_o.c.opted_out_at).where(*_KEY))
_OPT_IN = Prepared(delete(_o).where(*_KEY))
_OPT_OUT = InsertIgnoring(
    _o,
    ["channel", "address"],
    channel=bindparam("channel"),
    address=bindparam("address"),
    keyword=bindparam("keyword"),
    opted_out_at=bindparam("at"),
)


def is_opted_out(conn: Connection, channel: str, address: str) -> bool:
    """Whether the address asked to receive nothing more on the channel."""
    return _IS_OUT.first(conn, {"channel": channel, "address": address}) is not None


def opt_out(conn: Connection, channel: str, address: str, keyword: str, now: datetime) -> None:
    """Record an opt-out (the first one stands)."""
    _OPT_OUT.execute(conn, {"channel": channel, "address": address, "keyword": keyword[:32], "at": now})


def opt_in(conn: Connection, channel: str, address: str) -> bool:
    """Clear an opt-out; returns whether there was one."""
    return _OPT_IN.execute(conn, {"channel": channel, "address": address}) > 0
