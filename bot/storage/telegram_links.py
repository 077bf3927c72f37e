"""Which alert contacts get their alerts in which Telegram chat (``contacts.telegram_chat_id``).

A Telegram user links a chat by sharing their own phone number (Telegram has verified it): every
contact with that number, of every customer, is then alerted in that chat first and by SMS when
Telegram fails. Each change is audited once per customer it touches, in its own transaction, and
remembered under the update's id so that a replayed update changes nothing twice. A contact whose
number is edited loses its link (``bot.storage.accounts``): the new number never shared this chat.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, insert, select, update

from bot.storage import replays
from bot.storage.models import AuditEntry, ChatSession, Contact, table

CHANNEL = "telegram"
_co, _audit, _s = table(Contact), table(AuditEntry), table(ChatSession)


def _audit_each(conn: Connection, chat_id: int, now: datetime, action: str, customers: Counter[int]) -> None:
    if customers:
        conn.execute(
            insert(_audit),
            [
                {
                    "at": now,
                    "channel": CHANNEL,
                    "address": str(chat_id),
                    "customer_id": customer,
                    "action": action,
                    "details": {"contacts": count},
                }
                for customer, count in sorted(customers.items())
            ],
        )


def _set_chat(
    conn: Connection, chat_id: int, now: datetime, action: str, where: ColumnElement[bool], to: int | None
) -> int:
    """Point the contacts ``where`` selects at chat ``to`` (None: SMS only), audited once per customer."""
    rows = conn.execute(
        update(_co).where(where).values(telegram_chat_id=to, updated_at=now).returning(_co.c.customer_id)
    ).all()
    _audit_each(conn, chat_id, now, action, Counter(row[0] for row in rows))
    return len(rows)


def link(conn: Connection, chat_id: int, phone: str, now: datetime) -> int:
    """Link every contact numbered ``phone`` to ``chat_id``; how many contacts have that number.

    A Telegram account has one phone number: contacts linked to this chat by a number it shared before
    (the person changed numbers) are unlinked first, and go back to SMS.
    """
    others = (_co.c.telegram_chat_id == chat_id) & _co.c.phone.is_distinct_from(phone)
    _set_chat(conn, chat_id, now, "telegram.unlink", others, None)
    return _set_chat(conn, chat_id, now, "telegram.link", _co.c.phone == phone, chat_id)


def unlink(conn: Connection, chat_id: int, now: datetime, action: str = "telegram.unlink") -> int:
    """Stop alerts in ``chat_id`` (its contacts are alerted by SMS again); how many contacts it had."""
    return _set_chat(conn, chat_id, now, action, _co.c.telegram_chat_id == chat_id, None)


def linked_phone(conn: Connection, chat_id: int) -> str | None:
    """The number whose alerts come to ``chat_id``, if any."""
    row = conn.execute(select(_co.c.phone).where(_co.c.telegram_chat_id == chat_id).limit(1)).first()
    return None if row is None else row[0]


def session_locale(conn: Connection, chat_id: int) -> str | None:
    """The language the chat's conversation is in, if it has one."""
    row = conn.execute(select(_s.c.locale).where(_s.c.channel == CHANNEL, _s.c.address == str(chat_id))).first()
    return None if row is None else str(row[0])


def session_state(conn: Connection, chat_id: int) -> str | None:
    """The dialog state the chat's conversation is at, if it has one."""
    row = conn.execute(select(_s.c.state).where(_s.c.channel == CHANNEL, _s.c.address == str(chat_id))).first()
    return None if row is None else str(row[0])


def once(conn: Connection, update_id: str, now: datetime) -> bool:
    """Whether this update is seen for the first time (then it is remembered, in this transaction)."""
    if replays.replayed(conn, CHANNEL, update_id) is not None:
        return False
    replays.remember(conn, CHANNEL, update_id, [], now)
    return True
