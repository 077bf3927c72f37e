"""Sessions on the hot path: one row read under lock and written back, statements prepared once.

A turn costs: (BEGIN IMMEDIATE on SQLite) + one SELECT (``FOR UPDATE`` on PostgreSQL) + one UPDATE +
COMMIT. The first turn of an address inserts its row first (``ON CONFLICT DO NOTHING``, so two first
turns racing each other end with one row). The UPDATE checks the version it read, so a write that
raced past the lock would be refused rather than lost.

The same SELECT reads, as scalar subqueries, the verified customer's ``credential_version`` (a session
verified before the access code changed, the account locked or support revoked it is no longer
verified), the reply already given to this provider message id, if any (a replay), and whether the
address opted out (and who keeps that opt-out), so that an SMS turn pays nothing more to honour it. On PostgreSQL
the UPDATE and the remembering of the reply are one statement. So an SMS turn is four round trips:
BEGIN, SELECT, UPDATE-and-INSERT, COMMIT.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from bot.storage import replays
from bot.storage.models import ChatSession, CustomerAccount, OptOut, ProcessedMessage, UTCDateTime, table
from bot.storage.optouts import OptedOut
from bot.storage.prepared import InsertIgnoring, Prepared
from dialogs.engine import Session

_t = table(ChatSession)
_ca = table(CustomerAccount)
_p = table(ProcessedMessage)
_o = table(OptOut)
# The customer's credential_version as a scalar subquery, not a join: when the SELECT ... FOR UPDATE waits
# for the row lock, PostgreSQL re-reads the locked row and re-evaluates this subquery for its new
# customer_id, whereas an outer join would keep the row it joined before the wait (none, if the turn
# that held the lock is the one that verified).
_CREDENTIALS = select(_ca.c.credential_version).where(_ca.c.id == _t.c.customer_id).scalar_subquery()
_REPLY = (
    select(_p.c.reply)
    .where(_p.c.channel == _t.c.channel, _p.c.external_id == bindparam("external_id", type_=_p.c.external_id.type))
    .scalar_subquery()
)
_OPTED_OUT = (
    select(_o.c.provider_blocks).where(_o.c.channel == _t.c.channel, _o.c.address == _t.c.address).scalar_subquery()
)
_COLUMNS = (
    _t.c.id,
    _t.c.state,
    _t.c.slots,
    _t.c.locale,
    _t.c.customer_id,
    _t.c.verified_at,
    _t.c.last_seen_at,
    _t.c.invalid_count,
    _t.c.auth_failures,
    _t.c.auth_window_start,
    _t.c.version,
    _t.c.customer_version,
    _CREDENTIALS,
    _REPLY,
    _OPTED_OUT,
)
_SELECT = select(*_COLUMNS).where(_t.c.channel == bindparam("channel"), _t.c.address == bindparam("address"))
_READ = Prepared(_SELECT)
_READ_FOR_UPDATE = Prepared(_SELECT.with_for_update())
_VALUES: dict[str, Any] = {
    "state": bindparam("b_state"),
    "slots": bindparam("b_slots"),
    "locale": bindparam("b_locale"),
    "customer_id": bindparam("b_customer_id"),
    "verified_at": bindparam("b_verified_at"),
    "last_seen_at": bindparam("b_last_seen_at"),
    "invalid_count": bindparam("b_invalid_count"),
    "auth_failures": bindparam("b_auth_failures"),
    "auth_window_start": bindparam("b_auth_window_start"),
    "customer_version": bindparam("b_customer_version"),
    "version": bindparam("b_next_version"),
}
_UPDATE = update(_t).where(_t.c.id == bindparam("b_id"), _t.c.version == bindparam("b_version")).values(_VALUES)
_WRITE = Prepared(_UPDATE)
# A conversation's first turn inserts its row at the end, like any other turn writes it: two first
# messages from one address racing each other end with one row, and the other turn runs again.
_CREATE = InsertIgnoring(
    _t, ["channel", "address"], channel=bindparam("b_channel"), address=bindparam("b_address"), **_VALUES
)
_INSERT = (
    pg_insert(_t)
    .values(channel=bindparam("b_channel"), address=bindparam("b_address"), **_VALUES)
    .on_conflict_do_nothing(index_elements=["channel", "address"])
)


def _and_remember(written: Any) -> Prepared:
    """PostgreSQL: the session's write and the remembering of the reply, as one statement.

    One round trip, not two. Both counts must be 1: a write that found another version (or another
    first turn's row), or a message id remembered meanwhile by a racing replay, makes the turn run
    again (it then sees the new version, or the replay).
    """
    session = written.returning(_t.c.channel).cte("session")
    remembered = (
        pg_insert(_p)
        .from_select(
            ["channel", "external_id", "reply", "created_at"],
            select(
                session.c.channel,
                bindparam("r_external_id", type_=_p.c.external_id.type),
                bindparam("r_reply", type_=Text()),
                bindparam("r_at", type_=UTCDateTime()),
            ),
        )
        .on_conflict_do_nothing()
        .returning(_p.c.external_id)
        .cte("remembered")
    )
    return Prepared(
        select(
            select(func.count()).select_from(session).scalar_subquery(),
            select(func.count()).select_from(remembered).scalar_subquery(),
        )
    )


_WRITE_AND_REMEMBER = _and_remember(_UPDATE)
_CREATE_AND_REMEMBER = _and_remember(_INSERT)


class LostUpdate(RuntimeError):
    """The session row changed under us (should not happen while turns hold the row lock)."""


@dataclass(slots=True)
class AddressThrottle:
    """Verification failures from one address in the current window (kept on the session row)."""

    failures: int = 0
    window_start: datetime | None = None


@dataclass(slots=True)
class StoredSession:
    """A session row: the dialog's :class:`Session` plus what the service keeps beside it.

    ``customer_version`` is the customer's ``credential_version`` when this session verified it;
    ``current_version`` is the customer's value now (None when the customer is gone); ``replayed`` the
    texts already answered to this provider message id (None when it is new).
    """

    id: int | None  # None: a conversation's first turn (the row is written at its end)
    session: Session
    throttle: AddressThrottle
    version: int
    customer_version: int | None = None
    current_version: int | None = None
    replayed: list[str] | None = None
    opted_out: OptedOut | None = None
    channel: str = ""  # for a new conversation's row
    address: str = ""

    @property
    def revoked(self) -> bool:
        """Whether the session's verification no longer holds (code changed, account locked, revoked)."""
        return self.session.customer_id is not None and (
            self.current_version is None or self.customer_version != self.current_version
        )


def _session(row: tuple[Any, ...]) -> StoredSession:
    (
        sid,
        state,
        slots,
        locale,
        customer_id,
        verified_at,
        last_seen_at,
        invalid_count,
        auth_failures,
        auth_window_start,
        version,
        customer_version,
        current_version,
        reply,
        provider_blocks,
    ) = row
    session = Session(
        state=state,
        slots=json.loads(slots),
        locale=locale,
        customer_id=customer_id,
        verified_at=verified_at,
        last_seen_at=last_seen_at,
        invalid_count=invalid_count,
    )
    return StoredSession(
        sid,
        session,
        AddressThrottle(auth_failures, auth_window_start),
        version,
        customer_version,
        current_version,
        None if reply is None else list(json.loads(reply)),
        OptedOut.of(provider_blocks),
    )


def peek(conn: Connection, channel: str, address: str) -> Session | None:
    """The session as last committed, read without a lock (it may change before a turn runs)."""
    row = _READ.first(conn, {"channel": channel, "address": address, "external_id": None})
    return None if row is None else _session(row).session


def load_for_update(
    conn: Connection,
    channel: str,
    address: str,
    locale_hint: str | None,
    external_id: str | None = None,
    *,
    lock: bool = True,
) -> StoredSession:
    """The session of ``(channel, address)``, locked for this transaction; created when new.

    With ``external_id``, ``replayed`` holds the reply already given to that provider message. With
    ``lock=False`` (a turn outside a transaction) the row is not locked: :func:`save` still refuses
    to write over a version it did not read.
    """
    read = _READ_FOR_UPDATE if lock and conn.dialect.name == "postgresql" else _READ
    row = read.first(conn, {"channel": channel, "address": address, "external_id": external_id})
    if row is None:  # a new conversation: its row is inserted when the turn saves it
        return StoredSession(
            None, Session(locale=locale_hint or "en"), AddressThrottle(), 0, channel=channel, address=address
        )
    return _session(row)


def save(conn: Connection, stored: StoredSession, remember: tuple[str, str, list[str], datetime] | None = None) -> None:
    """Write the session back (and remember ``(channel, external_id, texts, at)``); :class:`LostUpdate`
    if its version moved or the message id was remembered meanwhile."""
    s, throttle = stored.session, stored.throttle
    values = {
        "b_id": stored.id,
        "b_version": stored.version,
        "b_next_version": stored.version + 1,
        "b_state": s.state,
        "b_slots": json.dumps(s.slots, ensure_ascii=False, separators=(",", ":")),
        "b_locale": s.locale,
        "b_customer_id": s.customer_id,
        "b_verified_at": s.verified_at,
        "b_last_seen_at": s.last_seen_at,
        "b_invalid_count": s.invalid_count,
        "b_auth_failures": throttle.failures,
        "b_auth_window_start": throttle.window_start,
        "b_customer_version": stored.customer_version if s.customer_id is not None else None,
        "b_channel": stored.channel,
        "b_address": stored.address,
    }
    new = stored.id is None
    if remember is not None and conn.dialect.name == "postgresql":
        _channel, external_id, texts, at = remember
        statement = _CREATE_AND_REMEMBER if new else _WRITE_AND_REMEMBER
        counts = statement.first(
            conn,
            {**values, "r_external_id": external_id[:64], "r_at": at, "r_reply": json.dumps(texts, ensure_ascii=False)},
        )
        if counts is None or tuple(counts) != (1, 1):
            raise LostUpdate(f"session {stored.id} or message {external_id[:12]} changed concurrently")
    else:
        if (_CREATE if new else _WRITE).execute(conn, values) != 1:
            raise LostUpdate(f"session {stored.id} changed concurrently")
        if remember is not None:
            replays.remember(conn, *remember)
    stored.version += 1
