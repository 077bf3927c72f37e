"""Opt-outs per channel address: a number that said STOP (or NGỪNG) gets nothing more until it opts in.

Who enforces an opt-out depends on the word. After Twilio's own words (STOP, ...) Twilio refuses
everything we send to the number (error 21610), so that opt-out is recorded as the provider's. Our
own words (NGỪNG, DỪNG, HỦY ĐĂNG KÝ) Twilio does not know: only we can keep them, by answering
nothing but, once, a reminder of how to opt in again (``reminded_at`` remembers that it was sent).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select, update

from bot.storage.models import OptOut, table
from bot.storage.prepared import InsertIgnoring, Prepared

_o = table(OptOut)
_KEY = (_o.c.channel == bindparam("channel"), _o.c.address == bindparam("address"))
_IS_OUT = Prepared(select(_o.c.opted_out_at).where(*_KEY))
_HELD = select(_o.c.provider_blocks, _o.c.reminded_at).where(*_KEY)
_HOLD = Prepared(_HELD)
_HOLD_FOR_UPDATE = Prepared(_HELD.with_for_update())
_OPT_IN = Prepared(delete(_o).where(*_KEY))
_OPT_OUT = InsertIgnoring(
    _o,
    ["channel", "address"],
    channel=bindparam("channel"),
    address=bindparam("address"),
    keyword=bindparam("keyword"),
    opted_out_at=bindparam("at"),
    provider_blocks=bindparam("provider_blocks"),
)
# An address we kept opted out that then opts out at the provider too: the provider blocks it now.
_PROVIDER_BLOCKS = Prepared(update(_o).where(*_KEY, _o.c.provider_blocks.is_(False)).values(provider_blocks=True))
_REMINDED = Prepared(update(_o).where(*_KEY).values(reminded_at=bindparam("at")))


class OptedOut(enum.Enum):
    """Who keeps an address's opt-out."""

    PROVIDER = "provider"  # the provider blocks whatever we send: send nothing at all
    US = "us"  # only we know of it: send nothing but one reminder of how to opt in again

    @classmethod
    def of(cls, provider_blocks: bool | None) -> OptedOut | None:
        """The opt-out an ``opt_outs.provider_blocks`` value stands for (None: no row, not opted out)."""
        if provider_blocks is None:
            return None
        return cls.PROVIDER if provider_blocks else cls.US


@dataclass(frozen=True, slots=True)
class Held:
    """An opt-out row as a turn sees it under its lock."""

    by: OptedOut
    reminded_at: datetime | None


def is_opted_out(conn: Connection, channel: str, address: str) -> bool:
    """Whether the address asked to receive nothing more on the channel."""
    return _IS_OUT.first(conn, {"channel": channel, "address": address}) is not None


def held(conn: Connection, channel: str, address: str, *, lock: bool = False) -> Held | None:
    """The address's opt-out, if any; with ``lock``, locked for the caller's transaction (PostgreSQL)."""
    read = _HOLD_FOR_UPDATE if lock and conn.dialect.name == "postgresql" else _HOLD
    row = read.first(conn, {"channel": channel, "address": address})
    if row is None:
        return None
    return Held(OptedOut.PROVIDER if row[0] else OptedOut.US, row[1])


def opt_out(
    conn: Connection, channel: str, address: str, keyword: str, now: datetime, *, provider_blocks: bool
) -> None:
    """Record an opt-out (the first one stands, except that the provider blocking the address is kept).

    ``provider_blocks``: the provider itself refuses to send to the address from now on (Twilio after
    its own STOP words, or when it answered 21610); otherwise only we keep the opt-out.
    """
    params = {"channel": channel, "address": address}
    _OPT_OUT.execute(conn, {**params, "keyword": keyword[:32], "at": now, "provider_blocks": provider_blocks})
    if provider_blocks:
        _PROVIDER_BLOCKS.execute(conn, params)


def remind(conn: Connection, channel: str, address: str, now: datetime) -> None:
    """Record that the one reminder of how to opt in again was sent to the address."""
    _REMINDED.execute(conn, {"channel": channel, "address": address, "at": now})


def opt_in(conn: Connection, channel: str, address: str) -> bool:
    """Clear an opt-out; returns whether there was one."""
    return _OPT_IN.execute(conn, {"channel": channel, "address": address}) > 0
