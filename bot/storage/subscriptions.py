"""Rotating outage status and group subscriptions of one channel address (no account needed).

An address (an SMS number, or a Telegram chat id as text) concerns these outage groups: those of the
service accounts it is an alert contact for (SMS: a contact with that phone, of any customer;
Telegram: a contact linked to that chat) and those it subscribed to. An alert is *active or upcoming*
when it announces an outage (``advance`` or ``started``), the operator has not stopped it, its window
has not ended, and no later alert answers it (a ``restored`` or ``cancelled`` alert, or a ``started``
one, whose ``follows_id`` is it) unless that answer was itself stopped.

Plain Core statements: these run rarely, unlike the turn's hot path (``bot.storage.prepared``). The
callers own the transaction; writes are audited by the caller in the same one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, exists, select
from sqlalchemy.orm import aliased

from bot.storage.models import (
    Alert,
    AlertGroup,
    Contact,
    ContactAssignment,
    ServiceAccount,
    Subscription,
    table,
)
from dialogs.ports import AlertView, StatusView, Subscribed

CHANNELS = ("sms", "telegram")  # where alerts can reach an address
ANNOUNCING = ("advance", "started")  # the kinds that announce an outage (test is no outage)

_a, _g, _sub = table(Alert), table(AlertGroup), table(Subscription)
_sa, _co, _as = table(ServiceAccount), table(Contact), table(ContactAssignment)
_answer = aliased(_a)


def group_exists(conn: Connection, group: str) -> bool:
    """Whether some service account is in ``group`` (compared as stored: the CIS's own spelling)."""
    return conn.execute(select(exists().where(_sa.c.outage_group == group))).scalar_one()


def subscribed_groups(conn: Connection, channel: str, address: str) -> list[str]:
    """The groups ``address`` subscribed to, in order."""
    rows = conn.execute(
        select(_sub.c.outage_group)
        .where(_sub.c.channel == channel, _sub.c.address == address)
        .order_by(_sub.c.outage_group)
    )
    return [row[0] for row in rows]


def subscribe(
    conn: Connection, channel: str, address: str, group: str, locale: str, now: datetime, limit: int
) -> Subscribed:
    """Subscribe ``address`` to ``group``, unless it already is, has ``limit`` groups, or the group is unknown.

    Turns of one address are serialized by its session row, so the count cannot race another turn
    of the same address; the unique index stands behind it anyway.
    """
    if channel not in CHANNELS:
        raise ValueError(f"alerts cannot reach the {channel!r} channel")
    groups = subscribed_groups(conn, channel, address)
    if group in groups:
        return Subscribed.ALREADY
    if len(groups) >= limit:
        return Subscribed.TOO_MANY
    if not group_exists(conn, group):
        return Subscribed.UNKNOWN_GROUP
    conn.execute(
        _sub.insert().values(channel=channel, address=address, outage_group=group, locale=locale, created_at=now)
    )
    return Subscribed.SAVED


def unsubscribe(conn: Connection, channel: str, address: str, group: str) -> Subscribed:
    """Remove ``address``'s subscription to ``group``; NOT_SUBSCRIBED when there was none."""
    removed = conn.execute(
        delete(_sub).where(_sub.c.channel == channel, _sub.c.address == address, _sub.c.outage_group == group)
    ).rowcount
    return Subscribed.SAVED if removed else Subscribed.NOT_SUBSCRIBED


def _own_accounts(conn: Connection, channel: str, address: str) -> list[tuple[str, str]]:
    """(outage group, service account number) of the accounts ``address`` is an alert contact for."""
    if channel == "sms":
        who = _co.c.phone == address
    elif channel == "telegram" and address.lstrip("-").isdigit():
        who = _co.c.telegram_chat_id == int(address)
    else:
        return []
    rows = conn.execute(
        select(_sa.c.outage_group, _sa.c.number)
        .select_from(_co.join(_as, _as.c.contact_id == _co.c.id).join(_sa, _sa.c.id == _as.c.service_account_id))
        .where(who)
        .distinct()
    )
    return [(row[0], row[1]) for row in rows]


def active_alerts(conn: Connection, groups: Iterable[str], now: datetime) -> list[tuple[AlertView, set[str]]]:
    """The active or upcoming alerts of ``groups``, soonest first, each with which of ``groups`` it is for."""
    wanted = sorted(set(groups))
    if not wanted:
        return []
    answered = exists().where(_answer.c.follows_id == _a.c.id, _answer.c.status != "cancelled")
    rows = conn.execute(
        select(_a.c.id, _a.c.kind, _a.c.starts_at, _a.c.ends_at, _a.c.note_en, _a.c.note_vi, _g.c.outage_group)
        .select_from(_a.join(_g, _g.c.alert_id == _a.c.id))
        .where(
            _g.c.outage_group.in_(wanted),
            _a.c.kind.in_(ANNOUNCING),
            _a.c.status != "cancelled",
            _a.c.ends_at > now,
            ~answered,
        )
        .order_by(_a.c.starts_at, _a.c.id, _g.c.outage_group)
    )
    found: dict[int, tuple[AlertView, set[str]]] = {}
    for row in rows:
        view = AlertView(row.id, row.kind, row.starts_at, row.ends_at, (), (), row.note_en, row.note_vi)
        found.setdefault(row.id, (view, set()))[1].add(row.outage_group)
    return list(found.values())


def group_status(conn: Connection, group: str, now: datetime) -> list[AlertView]:
    """One group's active or upcoming alerts: group-level facts only, never anyone's accounts."""
    return [_with(view, sorted(groups), ()) for view, groups in active_alerts(conn, [group], now)]


def status_for(conn: Connection, channel: str, address: str, now: datetime) -> StatusView:
    """What concerns ``address``: its groups and their active or upcoming alerts, each naming the
    groups of the address it is for and the address's own service accounts in them."""
    accounts = _own_accounts(conn, channel, address)
    groups = sorted({group for group, _ in accounts} | set(subscribed_groups(conn, channel, address)))
    alerts = []
    for view, hit in active_alerts(conn, groups, now):
        numbers = sorted({number for group, number in accounts if group in hit})
        alerts.append(_with(view, sorted(hit), numbers))
    return StatusView(tuple(groups), tuple(alerts))


def _with(view: AlertView, groups: Sequence[str], accounts: Sequence[str]) -> AlertView:
    return AlertView(
        view.id, view.kind, view.starts_at, view.ends_at, tuple(groups), tuple(accounts), view.note_en, view.note_vi
    )
