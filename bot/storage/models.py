"""The tables, as typed SQLAlchemy models. The hot path uses their ``__table__`` with Core statements."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints the same everywhere."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in Python, stored naive in UTC on every database (SQLite has no zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class CustomerAccount(Base):
    """A business customer: the unit of verification."""

    __tablename__ = "customer_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    access_code_hash: Mapped[str] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Moves on every access-code change, lockout and revocation: a session verified at an older
    # value is no longer verified (checked at its next turn).
    credential_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ServiceAccount(Base):
    """A premises with a meter, in one outage group."""

    __tablename__ = "service_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer_accounts.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    service_address: Mapped[str] = mapped_column(String(200))
    outage_group: Mapped[str] = mapped_column(String(20), index=True)
    demand_kw: Mapped[float | None] = mapped_column(Numeric(10, 2), nullable=True)
    medical: Mapped[bool] = mapped_column(Boolean, default=False)


class Contact(Base):
    """A person who gets alerts for some of a customer's service accounts."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("customer_id", "phone", name="uq_contacts_customer_phone"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer_accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20), index=True, nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    language: Mapped[str] = mapped_column(String(5), default="en")
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger, index=True, nullable=True)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ContactAssignment(Base):
    """Many-to-many: which contacts are alerted for which service accounts."""

    __tablename__ = "contact_assignments"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    service_account_id: Mapped[int] = mapped_column(
        ForeignKey("service_accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ChatSession(Base):
    """The durable state of one conversation, keyed by (channel, address).

    The row outlives resets (expiry, sign-out): the per-address throttle counters live here.
    """

    __tablename__ = "sessions"
    __table_args__ = (UniqueConstraint("channel", "address", name="uq_sessions_channel_address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(64), default="")
    slots: Mapped[str] = mapped_column(Text, default="{}")
    locale: Mapped[str] = mapped_column(String(5), default="en")
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer_accounts.id", ondelete="SET NULL"), nullable=True
    )
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    customer_version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # credential_version verified
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    invalid_count: Mapped[int] = mapped_column(Integer, default=0)
    auth_failures: Mapped[int] = mapped_column(Integer, default=0)
    auth_window_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """Who changed what, when: one row per saved change, written in the same transaction."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_customer_at", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, object]] = mapped_column(JSON)


def table(model: type[Base]) -> Table:
    """A model's table, typed as a Table for Core statements."""
    return cast(Table, model.__table__)


class ProcessedMessage(Base):
    """An inbound provider message already answered: a replay gets the same reply and changes nothing."""

    __tablename__ = "processed_messages"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reply: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OptOut(Base):
    """An address that asked to receive no more messages on a channel (SMS STOP, NGỪNG, ...)."""

    __tablename__ = "opt_outs"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(128), primary_key=True)
    keyword: Mapped[str] = mapped_column(String(32))
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The provider blocks everything we send to the address (Twilio's own words, error 21610); otherwise
    # the opt-out is ours alone (NGỪNG), and we keep it: no replies but one reminder of how to come back.
    provider_blocks: Mapped[bool] = mapped_column(Boolean, server_default=false())
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # that one reminder


class OutboundMessage(Base):
    """The deliveries table: every message we send that is not a direct reply, and its fate.

    Opt-in notices (``kind`` ``optin_notice``, one row each, written in the turn that adds the contact)
    and alert deliveries (``kind`` ``alert``, planned set-based by :mod:`bot.storage.alerts`, one row
    per alert and destination) are claimed, paced, sent, retried and tracked by the same dispatcher
    (:mod:`bot.dispatch`).
    """

    __tablename__ = "outbound_messages"
    __table_args__ = (
        # What the dispatcher claims: only rows that may still be sent are in it, in the order they fall due.
        Index(
            "ix_outbound_messages_due",
            "next_attempt_at",
            sqlite_where=text("status IN ('pending', 'sending')"),
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
        Index(
            "ix_outbound_messages_customer_created",
            "customer_id",
            "created_at",
            sqlite_where=text("customer_id IS NOT NULL"),
            postgresql_where=text("customer_id IS NOT NULL"),
        ),
        Index(
            "uq_outbound_messages_provider_id",
            "provider_id",
            unique=True,
            sqlite_where=text("provider_id IS NOT NULL"),
            postgresql_where=text("provider_id IS NOT NULL"),
        ),
        # One message per alert and destination, whoever and however many times it is planned.
        UniqueConstraint("alert_id", "destination", name="uq_outbound_messages_alert_destination"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # whose change caused it
    locale: Mapped[str] = mapped_column(String(5))
    params: Mapped[dict[str, object]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    provider_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Alert deliveries only:
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), nullable=True)
    # Who the message is for, whatever channel carries it: the phone number (E.164), or "tg:" and the
    # chat for a Telegram subscriber with no number we know. One row per alert and destination.
    destination: Mapped[str | None] = mapped_column(String(128), nullable=True)
    fallback_address: Mapped[str | None] = mapped_column(String(128), nullable=True)  # SMS, if Telegram fails
    segments: Mapped[int | None] = mapped_column(Integer, nullable=True)  # SMS segments of what was sent
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)  # why it failed, for operators
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # when the provider took it


class Alert(Base):
    """A rotating-outage alert an operator (or the outage-management system) issued for outage groups."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("created_by", "idempotency_key", name="uq_alerts_created_by_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # advance, started, restored, cancelled, test
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note_en: Mapped[str | None] = mapped_column(Text, nullable=True)
    note_vi: Mapped[str | None] = mapped_column(Text, nullable=True)
    # restored / cancelled: the advance or started alert they answer; they go to exactly its recipients.
    follows_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, cancelled (stopped by an operator)
    recipients: Mapped[int] = mapped_column(Integer, default=0)  # deliveries planned
    created_by: Mapped[str] = mapped_column(String(100))  # "cli:<user>" or "api:<token name>"
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)  # what that key asked for
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AlertGroup(Base):
    """The rotating outage groups an alert is for."""

    __tablename__ = "alert_groups"

    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    outage_group: Mapped[str] = mapped_column(String(20), primary_key=True, index=True)


class Subscription(Base):
    """An SMS number or Telegram chat that asked for a group's alerts without being a contact."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("channel", "address", "outage_group", name="uq_subscriptions_channel_address_group"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # sms, telegram
    address: Mapped[str] = mapped_column(String(128))  # E.164 number or chat id
    outage_group: Mapped[str] = mapped_column(String(20), index=True)
    locale: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A bearer token of the outage-management system's HTTP API; only its keyed hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SendPacing(Base):
    """The shared send budget of one channel and sender: the earliest time (Unix seconds) its next unit
    may leave. Every worker reserves its sends here, so the rate holds across all of them together."""

    __tablename__ = "send_pacing"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_at: Mapped[float] = mapped_column(Float(precision=53))


class ImportSnapshot(Base):
    """What the contact rows of a CIS export said about one contact when they were last imported.

    The CIS names a contact by its phone, else its email, within its customer (``contact_key``); its
    rows put it on service accounts. A re-import compares each row with what it said last time: a row
    that says the same as before changes nothing (customers' changes through the bot stand), a row
    that says something new applies only what is new. ``contact_id`` is the contact the rows feed,
    even after a customer changed that contact's phone. One row per contact (not per service
    account): an import of 100,000 rows keeps some 2,000 of these.
    """

    __tablename__ = "import_snapshots"
    __table_args__ = (UniqueConstraint("customer_id", "contact_key", name="uq_import_snapshots_customer_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer_accounts.id", ondelete="CASCADE"))
    contact_key: Mapped[str] = mapped_column(String(260))  # the phone (E.164), else "email:" + the email
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True, nullable=True
    )
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    language: Mapped[str] = mapped_column(String(5))
    service_accounts: Mapped[list[str]] = mapped_column(JSON)  # the numbers of the rows' service accounts
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
