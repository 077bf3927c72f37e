"""Alerts and their fan-out: who gets a rotating-outage alert, planned set-based into the deliveries table.

An alert is created and planned in one transaction: :func:`create` writes the ``alerts`` row and its
groups, then one ``INSERT ... SELECT`` writes one ``outbound_messages`` row per destination (a phone
number, or a Telegram chat nobody's number is linked to) and alert. Nothing about the recipients passes
through Python, so a million deliveries cost the database's time, not the process's memory.

Who: every contact (with a number, not opted out) assigned to a service account in one of the alert's
groups, and every subscriber of one of its groups. A number on several contacts (ten affected service
accounts, two businesses) is one destination. The channel is Telegram where a contact with that number
linked a chat, else SMS; a number that opted out of SMS is left out unless it has Telegram (and then
never falls back to SMS). The language is Vietnamese when any of the destination's contacts asked for
it (``max`` of the locales), else English. ``restored`` and ``cancelled`` go to exactly the
destinations the alert they answer was sent to (:data:`REACHED`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    not_,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError

from bot.storage.models import (
    Alert,
    AlertGroup,
    Contact,
    ContactAssignment,
    OptOut,
    OutboundMessage,
    ServiceAccount,
    Subscription,
    table,
)

KINDS = ("advance", "started", "restored", "cancelled", "test")
# The alerts a follow-up answers, most wanted first: restored ends what started (or was announced);
# cancelled calls off what was announced.
FOLLOWS = {"restored": ("started", "advance"), "cancelled": ("advance", "started")}
ALERT = "alert"  # outbound_messages.kind of an alert delivery
# Statuses of a delivery the provider took: its destination was reached (as far as we can know).
REACHED = ("accepted", "queued", "sending_provider", "sent", "delivered", "read")
OPEN = ("pending", "sending")  # not final yet
MAX_GROUPS = 200
ANALYZE_AFTER = 10_000  # planned rows that make the table's statistics stale enough to matter
MAX_NOTE = 500

_a = table(Alert)
_ag = table(AlertGroup)
_c = table(Contact)
_ca = table(ContactAssignment)
_sa = table(ServiceAccount)
_s = table(Subscription)
_m = table(OutboundMessage)
_o = table(OptOut)


class AlertError(ValueError):
    """A request that cannot become an alert; ``code`` names why, ``details`` what was wrong."""

    def __init__(self, code: str, details: Sequence[str] = ()) -> None:
        super().__init__(code, *details)
        self.code = code
        self.details = tuple(details)


@dataclass(frozen=True, slots=True)
class AlertRequest:
    """What an operator asks for: kind, groups, window (aware datetimes) and optional notes."""

    kind: str
    groups: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    note_en: str | None = None
    note_vi: str | None = None

    def digest(self) -> str:
        """A fingerprint of the request, to tell a retried request from another with the same key."""
        body = json.dumps(
            [
                self.kind,
                sorted(self.groups),
                self.starts_at.isoformat(),
                self.ends_at.isoformat(),
                self.note_en,
                self.note_vi,
            ]
        )
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Created:
    """An alert created (or found again by its idempotency key) and how many deliveries it planned."""

    id: int
    recipients: int
    follows_id: int | None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Audience:
    """Who an alert would reach: destinations by (channel, locale), and its follow-up's target."""

    counts: dict[tuple[str, str], int]
    follows_id: int | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def normalize_group(text: str) -> str:
    """A group as printed on the bill, typed any way: ``" a 012 "`` is ``"A012"``."""
    return "".join(text.split()).upper()


def check(conn: Connection, request: AlertRequest, now: datetime) -> AlertRequest:
    """The request with its groups normalized, or :class:`AlertError` when it cannot be sent.

    Unknown groups, a start not before the end, and a window already over are refused (a ``restored``
    alert may report an outage that ended up to a day ago).
    """
    if request.kind not in KINDS:
        raise AlertError("kind", (request.kind,))
    groups = tuple(dict.fromkeys(normalize_group(g) for g in request.groups if g.strip()))
    if not groups:
        raise AlertError("no_groups")
    if len(groups) > MAX_GROUPS:
        raise AlertError("too_many_groups", (str(MAX_GROUPS),))
    if request.starts_at.tzinfo is None or request.ends_at.tzinfo is None:
        raise ValueError("naive datetime given; use aware datetimes")
    if request.starts_at >= request.ends_at:
        raise AlertError("start_after_end")
    oldest = now - timedelta(days=1) if request.kind == "restored" else now
    if request.ends_at <= oldest:
        raise AlertError("past")
    for note in (request.note_en, request.note_vi):
        if note is not None and len(note) > MAX_NOTE:
            raise AlertError("note_too_long", (str(MAX_NOTE),))
    known = set(conn.scalars(select(_sa.c.outage_group).where(_sa.c.outage_group.in_(groups)).distinct()).all()) | set(
        conn.scalars(select(_s.c.outage_group).where(_s.c.outage_group.in_(groups)).distinct()).all()
    )
    unknown = [g for g in groups if g not in known]
    if unknown:
        raise AlertError("unknown_groups", unknown)
    return AlertRequest(request.kind, groups, request.starts_at, request.ends_at, request.note_en, request.note_vi)


def follows(conn: Connection, kind: str, groups: Sequence[str]) -> int | None:
    """The alert a ``restored`` or ``cancelled`` alert answers: the latest advance or started alert (of
    the preferred kind first) for one of ``groups``, not stopped and not answered yet."""
    if kind not in FOLLOWS:
        return None
    answered = select(_a.c.follows_id).where(_a.c.follows_id.is_not(None))
    for wanted in FOLLOWS[kind]:
        found = conn.scalar(
            select(_a.c.id)
            .where(
                _a.c.kind == wanted,
                _a.c.status != "cancelled",
                _a.c.id.not_in(answered),
                exists().where(_ag.c.alert_id == _a.c.id, _ag.c.outage_group.in_(list(groups))),
            )
            .order_by(_a.c.id.desc())
            .limit(1)
        )
        if found is not None:
            return int(found)
    return None


def _recipients(alert_groups: Any) -> Any:
    """One row per (destination, chat, locale) that an alert for ``alert_groups`` (a selectable of
    outage groups) reaches, before destinations are merged."""
    chat_text = cast(_c.c.telegram_chat_id, String)
    contacts = (
        select(_c.c.phone.label("dest"), chat_text.label("chat"), _c.c.language.label("locale"))
        .select_from(_c.join(_ca, _ca.c.contact_id == _c.c.id).join(_sa, _sa.c.id == _ca.c.service_account_id))
        .where(_sa.c.outage_group.in_(alert_groups), _c.c.phone.is_not(None), _c.c.opted_out_at.is_(None))
    )
    sms_subscribers = select(
        _s.c.address.label("dest"), cast(null(), String).label("chat"), _s.c.locale.label("locale")
    ).where(_s.c.channel == "sms", _s.c.outage_group.in_(alert_groups))
    # A chat whose person shared their number is that number's destination: one message per person.
    linked_phone = (
        select(_c.c.phone)
        .where(_c.c.telegram_chat_id == cast(_s.c.address, BigInteger), _c.c.phone.is_not(None))
        .limit(1)
        .scalar_subquery()
    )
    telegram_subscribers = select(
        func.coalesce(linked_phone, literal("tg:") + _s.c.address).label("dest"),
        _s.c.address.label("chat"),
        _s.c.locale.label("locale"),
    ).where(_s.c.channel == "telegram", _s.c.outage_group.in_(alert_groups))
    return union_all(contacts, sms_subscribers, telegram_subscribers).subquery("r")


def _destinations(alert_groups: Any) -> Any:
    """One row per destination: (dest, channel, address, fallback, locale), opted-out SMS left out."""
    r = _recipients(alert_groups)
    chat = func.max(r.c.chat)
    sms_opted_out = exists().where(_o.c.channel == "sms", _o.c.address == r.c.dest)
    return (
        select(
            r.c.dest,
            case((chat.is_not(None), literal("telegram")), else_=literal("sms")).label("channel"),
            func.coalesce(chat, r.c.dest).label("address"),
            case(
                (and_(chat.is_not(None), not_(r.c.dest.startswith("tg:"))), r.c.dest),
                else_=cast(null(), String),
            ).label("fallback"),
            func.max(r.c.locale).label("locale"),
        )
        .group_by(r.c.dest)
        .having(or_(chat.is_not(None), not_(sms_opted_out)))
    )


def _followed_destinations(follows_id: int) -> Any:
    """The destinations the answered alert reached, as they are now (an SMS opt-out since is honoured)."""
    sms_opted_out = exists().where(_o.c.channel == "sms", _o.c.address == _m.c.address)
    return select(
        _m.c.destination.label("dest"),
        _m.c.channel,
        _m.c.address,
        _m.c.fallback_address.label("fallback"),
        _m.c.locale,
    ).where(
        _m.c.alert_id == follows_id,
        _m.c.status.in_(REACHED),
        or_(_m.c.channel != "sms", not_(sms_opted_out)),
    )


def _groups_of(alert_id: int) -> Any:
    return select(_ag.c.outage_group).where(_ag.c.alert_id == alert_id).scalar_subquery()


def audience(conn: Connection, request: AlertRequest) -> Audience:
    """Who the (checked) request would reach, counted in the database; nothing is written."""
    follows_id = follows(conn, request.kind, request.groups)
    if request.kind in FOLLOWS:
        if follows_id is None:
            return Audience({}, None)
        rows = _followed_destinations(follows_id).subquery("d")
    else:
        rows = _destinations(list(request.groups)).subquery("d")
    counts = {
        (str(channel), str(locale)): int(n)
        for channel, locale, n in conn.execute(
            select(rows.c.channel, rows.c.locale, func.count()).group_by(rows.c.channel, rows.c.locale)
        )
    }
    return Audience(counts, follows_id)


def plan(conn: Connection, alert_id: int, follows_id: int | None, now: datetime, groups: Sequence[str] = ()) -> int:
    """Write the alert's deliveries (one ``INSERT ... SELECT``); returns how many.

    ``groups``: the alert's groups as values (PostgreSQL plans hash joins for a list it can count; for a
    subquery it guesses a few groups and loops). On PostgreSQL a large plan may take longer than a turn's
    statement limit and its grouping more memory than the default: both are raised for this transaction.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL statement_timeout = '300s'")
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    alert_groups = list(groups) if groups else _groups_of(alert_id)
    rows = _followed_destinations(follows_id) if follows_id is not None else _destinations(alert_groups)
    d = rows.subquery("d")
    columns = ["alert_id", "destination", "channel", "address", "fallback_address", "locale"]
    columns += ["kind", "params", "status", "attempts", "next_attempt_at", "created_at", "updated_at"]
    source = select(
        literal(alert_id, Integer),
        d.c.dest,
        d.c.channel,
        d.c.address,
        d.c.fallback,
        d.c.locale,
        literal(ALERT),
        literal({}, _m.c.params.type),
        literal("pending"),
        literal(0),
        literal(now, _m.c.next_attempt_at.type),
        literal(now, _m.c.created_at.type),
        literal(now, _m.c.updated_at.type),
    )
    result = conn.execute(insert(_m).from_select(columns, source), execution_options={"preserve_rowcount": True})
    planned = int(result.rowcount or 0)
    if conn.dialect.name == "postgresql" and planned >= ANALYZE_AFTER:
        # The claim reads the due index in order; with statistics of a table a million rows smaller
        # PostgreSQL would scan and sort instead, for every batch, until autovacuum noticed.
        conn.exec_driver_sql("ANALYZE outbound_messages")
    return planned


def create(
    conn: Connection,
    request: AlertRequest,
    now: datetime,
    created_by: str,
    *,
    idempotency_key: str | None = None,
) -> Created:
    """Create and plan a checked alert in the caller's transaction.

    With ``idempotency_key``, a second request with the same key (from the same ``created_by``) gets the
    first alert back and creates nothing; a different request with a used key is :class:`AlertError`
    ``key_reused``.
    """
    digest = request.digest()
    if idempotency_key is not None:
        found = _by_key(conn, created_by, idempotency_key)
        if found is not None:
            return _replayed(found, digest)
    follows_id = follows(conn, request.kind, request.groups)
    if request.kind in FOLLOWS and follows_id is None:
        raise AlertError("nothing_to_follow", (request.kind,))
    values = {
        "kind": request.kind,
        "starts_at": request.starts_at,
        "ends_at": request.ends_at,
        "note_en": request.note_en,
        "note_vi": request.note_vi,
        "follows_id": follows_id,
        "status": "active",
        "recipients": 0,
        "created_by": created_by[:100],
        "idempotency_key": idempotency_key,
        "request_digest": digest if idempotency_key is not None else None,
        "created_at": now,
    }
    if idempotency_key is not None:  # two requests with one key at once: the second finds the first
        try:
            with conn.begin_nested():
                alert_id = int(conn.execute(_a.insert().values(**values).returning(_a.c.id)).scalar_one())
        except IntegrityError:
            found = _by_key(conn, created_by, idempotency_key)
            if found is None:  # pragma: no cover - the conflict was on another constraint
                raise
            return _replayed(found, digest)
    else:
        alert_id = int(conn.execute(_a.insert().values(**values).returning(_a.c.id)).scalar_one())
    conn.execute(_ag.insert(), [{"alert_id": alert_id, "outage_group": g} for g in request.groups])
    planned = plan(conn, alert_id, follows_id, now, request.groups)
    conn.execute(update(_a).where(_a.c.id == alert_id).values(recipients=planned))
    return Created(alert_id, planned, follows_id)


def _by_key(conn: Connection, created_by: str, key: str) -> Any:
    return conn.execute(
        select(_a.c.id, _a.c.recipients, _a.c.follows_id, _a.c.request_digest).where(
            _a.c.created_by == created_by[:100], _a.c.idempotency_key == key
        )
    ).first()


def _replayed(found: Any, digest: str) -> Created:
    if found.request_digest != digest:
        raise AlertError("key_reused")
    return Created(int(found.id), int(found.recipients), found.follows_id, replayed=True)


def cancel(conn: Connection, alert_id: int, now: datetime) -> int | None:
    """Stop an alert: its deliveries not yet sent become ``cancelled``. Returns how many, or None when
    there is no such alert. Messages a worker is sending at this instant may still leave."""
    if conn.scalar(select(_a.c.id).where(_a.c.id == alert_id).with_for_update()) is None:
        return None
    conn.execute(
        update(_a).where(_a.c.id == alert_id, _a.c.status != "cancelled").values(status="cancelled", cancelled_at=now)
    )
    result = conn.execute(
        update(_m)
        .where(_m.c.alert_id == alert_id, _m.c.status.in_(OPEN))
        .values(status="cancelled", reason="alert cancelled", updated_at=now)
    )
    return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class AlertInfo:
    """An alert as operators see it."""

    id: int
    kind: str
    groups: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    note_en: str | None
    note_vi: str | None
    follows_id: int | None
    status: str
    recipients: int
    created_by: str
    created_at: datetime
    cancelled_at: datetime | None


@dataclass(frozen=True, slots=True)
class Progress:
    """Where an alert's deliveries stand: counts by (status, channel), SMS segments sent, failures."""

    counts: dict[tuple[str, str], int]
    segments: int
    failures: list[tuple[str, str, int]] = field(default_factory=list)  # (reason, channel, n)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def open(self) -> int:
        return sum(n for (status, _), n in self.counts.items() if status in OPEN)

    @property
    def done(self) -> int:
        return self.total - self.open

    def by_status(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (status, _), n in self.counts.items():
            out[status] = out.get(status, 0) + n
        return out


def _info(conn: Connection, rows: Sequence[Any]) -> list[AlertInfo]:
    ids = [row.id for row in rows]
    groups: dict[int, list[str]] = {}
    if ids:
        for alert_id, group in conn.execute(
            select(_ag.c.alert_id, _ag.c.outage_group).where(_ag.c.alert_id.in_(ids)).order_by(_ag.c.outage_group)
        ):
            groups.setdefault(int(alert_id), []).append(str(group))
    return [
        AlertInfo(
            int(row.id),
            row.kind,
            tuple(groups.get(int(row.id), ())),
            row.starts_at,
            row.ends_at,
            row.note_en,
            row.note_vi,
            row.follows_id,
            row.status,
            int(row.recipients),
            row.created_by,
            row.created_at,
            row.cancelled_at,
        )
        for row in rows
    ]


_INFO_COLUMNS = (
    _a.c.id,
    _a.c.kind,
    _a.c.starts_at,
    _a.c.ends_at,
    _a.c.note_en,
    _a.c.note_vi,
    _a.c.follows_id,
    _a.c.status,
    _a.c.recipients,
    _a.c.created_by,
    _a.c.created_at,
    _a.c.cancelled_at,
)


def get(conn: Connection, alert_id: int) -> AlertInfo | None:
    """One alert, or None."""
    rows = conn.execute(select(*_INFO_COLUMNS).where(_a.c.id == alert_id)).all()
    found = _info(conn, rows)
    return found[0] if found else None


def recent(conn: Connection, limit: int = 20) -> list[AlertInfo]:
    """The latest alerts, newest first."""
    return _info(conn, conn.execute(select(*_INFO_COLUMNS).order_by(_a.c.id.desc()).limit(limit)).all())


def progress(conn: Connection, alert_id: int, *, failures: int = 20) -> Progress:
    """Counts of an alert's deliveries by status and channel, the SMS segments sent, and its failures
    grouped by reason (the ``failures`` most frequent)."""
    counts = {
        (str(status), str(channel)): int(n)
        for status, channel, n in conn.execute(
            select(_m.c.status, _m.c.channel, func.count())
            .where(_m.c.alert_id == alert_id)
            .group_by(_m.c.status, _m.c.channel)
        )
    }
    segments = conn.scalar(
        select(func.coalesce(func.sum(_m.c.segments), 0)).where(
            _m.c.alert_id == alert_id, _m.c.channel == "sms", _m.c.sent_at.is_not(None)
        )
    )
    failed = [
        (str(reason), str(channel), int(n))
        for reason, channel, n in conn.execute(
            select(func.coalesce(_m.c.reason, _m.c.status), _m.c.channel, func.count().label("n"))
            .where(_m.c.alert_id == alert_id, _m.c.status.in_(("failed", "undelivered", "expired", "opted_out")))
            .group_by(func.coalesce(_m.c.reason, _m.c.status), _m.c.channel)
            .order_by(func.count().desc())
            .limit(failures)
        )
    ]
    return Progress(counts, int(segments or 0), failed)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One delivery, for the operator's report."""

    id: int
    destination: str
    channel: str
    address: str
    locale: str
    status: str
    attempts: int
    segments: int | None
    provider_id: str | None
    error_code: int | None
    reason: str | None
    sent_at: datetime | None
    updated_at: datetime


def deliveries(conn: Connection, alert_id: int, *, batch: int = 5000) -> Iterator[DeliveryRow]:
    """Every delivery of an alert in id order, read a batch at a time (keyset), never all at once."""
    last = 0
    columns = (
        _m.c.id,
        _m.c.destination,
        _m.c.channel,
        _m.c.address,
        _m.c.locale,
        _m.c.status,
        _m.c.attempts,
        _m.c.segments,
        _m.c.provider_id,
        _m.c.error_code,
        _m.c.reason,
        _m.c.sent_at,
        _m.c.updated_at,
    )
    while True:
        rows = conn.execute(
            select(*columns).where(_m.c.alert_id == alert_id, _m.c.id > last).order_by(_m.c.id).limit(batch)
        ).all()
        if not rows:
            return
        for row in rows:
            yield DeliveryRow(*row)  # type: ignore[call-arg]
        last = int(rows[-1].id)


@dataclass(frozen=True, slots=True)
class Account:
    """A service account as an alert names it: its number's last digits and its street."""

    number: str
    address: str


def affected(conn: Connection, alert_id: int, destinations: Sequence[str]) -> dict[str, list[Account]]:
    """For each destination (a phone number), the service accounts in the alert's groups it is a contact
    of, in account-number order: what its message names. One query for a batch of deliveries."""
    phones = [d for d in destinations if not d.startswith("tg:")]
    out: dict[str, list[Account]] = {}
    if not phones:
        return out
    rows = conn.execute(
        select(_c.c.phone, _sa.c.number, _sa.c.service_address)
        .select_from(_c.join(_ca, _ca.c.contact_id == _c.c.id).join(_sa, _sa.c.id == _ca.c.service_account_id))
        .where(_c.c.phone.in_(phones), _sa.c.outage_group.in_(_groups_of(alert_id)))
        .distinct()
        .order_by(_c.c.phone, _sa.c.number)
    )
    for phone, number, address in rows:
        out.setdefault(str(phone), []).append(Account(str(number), str(address)))
    return out
