"""Accounts and contacts: the storage side of :class:`dialogs.ports.AccountsPort` (and, for the
turn's own address, of :class:`dialogs.ports.SubscriptionsPort`, through ``bot.storage.subscriptions``).

One instance serves one turn: it holds the turn's connection, the actor (channel and address) for
the audit log, and the address throttle from the session row. Every query is scoped to the customer
id it is given, and ids chosen in a dialog are re-checked against that customer before any write.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Connection, and_, bindparam, delete, exists, func, insert, not_, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.security import CodeChecker, FailureAlarm, mask
from bot.storage import subscriptions
from bot.storage.models import (
    AuditEntry,
    ChatSession,
    Contact,
    ContactAssignment,
    CustomerAccount,
    OptOut,
    OutboundMessage,
    ServiceAccount,
    table,
)
from bot.storage.outbound import OPT_IN_NOTICE, enqueue
from bot.storage.prepared import InsertIgnoring, Prepared
from bot.storage.sessions import AddressThrottle
from dialogs.ports import (
    AlertView,
    ChangeResult,
    ContactView,
    NewContact,
    Outcome,
    ServiceAccountView,
    StatusView,
    Subscribed,
    VerifyResult,
)

log = logging.getLogger(__name__)

_ca = table(CustomerAccount)
_sa = table(ServiceAccount)
_co = table(Contact)
_as = table(ContactAssignment)
_audit = table(AuditEntry)
_om = table(OutboundMessage)
_oo = table(OptOut)

_CUSTOMER_BY_NUMBER = select(
    _ca.c.id, _ca.c.name, _ca.c.access_code_hash, _ca.c.failed_attempts, _ca.c.locked_until, _ca.c.credential_version
).where(_ca.c.number == bindparam("number"))
_CUSTOMER = Prepared(_CUSTOMER_BY_NUMBER)
_CUSTOMER_FOR_UPDATE = Prepared(_CUSTOMER_BY_NUMBER.with_for_update())
_CUSTOMER_RESULT = Prepared(
    update(_ca)
    .where(_ca.c.id == bindparam("b_id"))
    .values(
        failed_attempts=bindparam("b_failed"),
        locked_until=bindparam("b_locked"),
        access_code_hash=bindparam("b_hash"),
        credential_version=bindparam("b_version"),
    )
)
_CUSTOMER_NAME = Prepared(select(_ca.c.name).where(_ca.c.id == bindparam("cid")))
_LOCK_CUSTOMER = Prepared(select(_ca.c.id).where(_ca.c.id == bindparam("cid")).with_for_update())
_SERVICE_ACCOUNTS = Prepared(
    select(_sa.c.id, _sa.c.number, _sa.c.service_address, _sa.c.outage_group)
    .where(_sa.c.customer_id == bindparam("cid"))
    .order_by(_sa.c.number)
)
# whether an alert reaches the contact, as alert planning decides it (bot.storage.alerts): a number,
# not opted out as a contact, and on Telegram or not opted out of SMS
_REACHABLE = and_(
    _co.c.phone.is_not(None),
    _co.c.opted_out_at.is_(None),
    or_(
        _co.c.telegram_chat_id.is_not(None),
        not_(exists().where(_oo.c.channel == "sms", _oo.c.address == _co.c.phone)),
    ),
)
_REACHABLE_CONTACTS = Prepared(select(_co.c.id).where(_co.c.customer_id == bindparam("cid"), _REACHABLE))
_CONTACTS = Prepared(
    select(_co.c.id, _co.c.name, _co.c.phone, _co.c.email, _co.c.language, _as.c.service_account_id)
    .select_from(_co.outerjoin(_as, _as.c.contact_id == _co.c.id))
    .where(_co.c.customer_id == bindparam("cid"))
    .order_by(_co.c.name, _co.c.id)
)
_COUNT_CONTACTS = Prepared(select(func.count()).select_from(_co).where(_co.c.customer_id == bindparam("cid")))
_NOTICES_SINCE = Prepared(
    select(func.count())
    .select_from(_om)
    .where(_om.c.customer_id == bindparam("cid"), _om.c.kind == OPT_IN_NOTICE, _om.c.created_at > bindparam("since"))
)
_CONTACT_BY_PHONE = Prepared(
    select(_co.c.name).where(_co.c.customer_id == bindparam("cid"), _co.c.phone == bindparam("phone"))
)
_AUDIT = Prepared(
    insert(_audit).values(
        at=bindparam("at"),
        channel=bindparam("channel"),
        address=bindparam("address"),
        customer_id=bindparam("customer_id"),
        action=bindparam("action"),
        details=bindparam("details", type_=JSON),
    )
)
_NEW_CONTACT = InsertIgnoring(
    _co,
    ["customer_id", "phone"],
    customer_id=bindparam("customer_id"),
    name=bindparam("name"),
    phone=bindparam("phone"),
    email=bindparam("email"),
    language=bindparam("language"),
    created_at=bindparam("at"),
    updated_at=bindparam("at"),
    returning=(_co.c.id,),
)
_ASSIGN = Prepared(
    insert(_as).values(contact_id=bindparam("contact_id"), service_account_id=bindparam("service_account_id"))
)
_EDITABLE = ("name", "phone", "email", "language")


def revoke_sessions(conn: Connection, number: str, channel: str, actor: str, now: datetime) -> int | None:
    """End every session verified on a customer account, at its next turn; audited.

    Returns how many sessions were signed in, or None when there is no such account.
    """
    row = conn.execute(
        select(_ca.c.id, _ca.c.credential_version).where(_ca.c.number == number).with_for_update()
    ).first()
    if row is None:
        return None
    _s = table(ChatSession)
    signed_in = int(
        conn.execute(
            select(func.count())
            .select_from(_s)
            .where(_s.c.customer_id == row.id, _s.c.customer_version == row.credential_version)
        ).scalar_one()
    )
    conn.execute(update(_ca).where(_ca.c.id == row.id).values(credential_version=_ca.c.credential_version + 1))
    _AUDIT.execute(
        conn,
        {
            "at": now,
            "channel": channel,
            "address": actor[:128],
            "customer_id": row.id,
            "action": "sessions.revoke",
            "details": {"sessions": signed_in},
        },
    )
    return signed_in


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """How many failures lock an account or throttle an address, and for how long."""

    account_failures: int = 5
    account_lock: timedelta = timedelta(minutes=15)
    address_failures: int = 10
    address_window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ContactLimits:
    """Limits against SMS pumping: contacts per customer, new numbers texted per customer per hour."""

    max_contacts: int = 25
    notices_per_hour: int = 20
    subscriptions_per_address: int = 10  # the dialogs' ``max_subscriptions``


class NeedsTransaction(Exception):
    """A turn run without a transaction (reads only) reached a write: run it again in a transaction."""


class AccountsRepo:
    """Accounts, contacts and the address's subscriptions for one turn (implements :class:`dialogs.ports.Ports`).

    Every check that a concurrent turn could race is made under a lock, in the same transaction as
    the write it guards: the customer row (``FOR UPDATE`` on PostgreSQL; SQLite has one writer) for
    failure counts and limits, compare-and-set for edits, the unique index for duplicate numbers.
    With ``read_only`` (a turn run without a transaction) every write raises :class:`NeedsTransaction`
    before it touches anything.
    """

    def __init__(
        self,
        conn: Connection,
        *,
        channel: str,
        address: str,
        now: datetime,
        hasher: CodeChecker,
        policy: LockoutPolicy,
        throttle: AddressThrottle,
        alarm: FailureAlarm | None = None,
        limits: ContactLimits | None = None,
        read_only: bool = False,
    ) -> None:
        self.conn = conn
        self.read_only = read_only
        self.channel, self.address, self.now = channel, address, now
        self.hasher, self.policy, self.throttle, self.alarm = hasher, policy, throttle, alarm
        self.limits = limits or ContactLimits()
        self.postgres = conn.dialect.name == "postgresql"
        self.enqueued = 0  # outbox messages written in this turn
        self.actions: list[str] = []  # the audit actions written in this turn (for the metrics)
        self.verified_version: int | None = None  # the customer's credential_version, once verified
        self._accounts: dict[int, list[ServiceAccountView]] = {}
        self._contacts: dict[int, list[ContactView]] = {}

    # -- audit -----------------------------------------------------------------------------------

    def _writing(self) -> None:
        if self.read_only:
            raise NeedsTransaction

    def audit(self, action: str, customer_id: int | None, **details: Any) -> None:
        """Write one audit row in the turn's transaction."""
        self._writing()
        self.actions.append(action)
        _AUDIT.execute(
            self.conn,
            {
                "at": self.now,
                "channel": self.channel,
                "address": self.address,
                "customer_id": customer_id,
                "action": action,
                "details": details,
            },
        )

    # -- verification ----------------------------------------------------------------------------

    def verify(self, account_number: str, access_code: str, *alternatives: str) -> VerifyResult:
        """Check the pair; the same answer for unknown account, wrong code and locked account.

        ``alternatives`` are other readings of the typed code ("482913 ạ" is "482913 ạ" joined, and
        "482913"): any matching verifies, none matching is one failure (never one per reading).

        The customer row is locked first, so concurrent attempts against one account (from any
        number of addresses and workers) are decided one at a time: exactly ``account_failures``
        wrong codes lock it, and no code is accepted after that. A lockout also ends every session
        verified on the account (its ``credential_version`` moves).
        """
        self._writing()
        throttle, policy = self.throttle, self.policy
        if throttle.window_start is None or self.now - throttle.window_start > policy.address_window:
            throttle.failures, throttle.window_start = 0, self.now
        if throttle.failures >= policy.address_failures:
            log.info("verification throttled for %s:%s", self.channel, mask(self.address))
            minutes = (throttle.window_start + policy.address_window - self.now).total_seconds() / 60
            return VerifyResult(None, throttled=True, retry_minutes=max(1, math.ceil(minutes)))

        read = _CUSTOMER_FOR_UPDATE if self.postgres else _CUSTOMER
        row = read.first(self.conn, {"number": account_number})
        customer_id, name, stored_hash, failed_attempts, locked_until, version = row or (None, None, None, 0, None, 0)
        for code in dict.fromkeys((access_code, *alternatives[:1])):  # at most two checks a message
            check = self.hasher.verify(code, stored_hash)  # computed before the turn (NeedsCheck)
            if check.matches:
                break
        locked = locked_until is not None and locked_until > self.now
        if customer_id is not None and check.matches and not locked:
            if failed_attempts or locked_until is not None or check.rehash:
                _CUSTOMER_RESULT.execute(
                    self.conn,
                    {
                        "b_id": customer_id,
                        "b_failed": 0,
                        "b_locked": None,
                        "b_hash": check.rehash or stored_hash,
                        "b_version": version,
                    },
                )
            self.verified_version = version
            self.audit("verify.success", customer_id, **({"rehashed": True} if check.rehash else {}))
            return VerifyResult(customer_id, name)

        throttle.failures += 1
        reason = "unknown" if customer_id is None else "locked" if locked else "wrong_code"
        if customer_id is not None and not locked:
            failed, lock_until = failed_attempts + 1, None
            if failed >= policy.account_failures:
                failed, lock_until, version = 0, self.now + policy.account_lock, version + 1
                log.warning("customer account %s locked until %s", mask(account_number), lock_until)
            _CUSTOMER_RESULT.execute(
                self.conn,
                {
                    "b_id": customer_id,
                    "b_failed": failed,
                    "b_locked": lock_until,
                    "b_hash": stored_hash,
                    "b_version": version,
                },
            )
            if lock_until is not None:
                self.audit("verify.locked", customer_id, account=mask(account_number))
        self.audit("verify.failure", customer_id, account=mask(account_number), reason=reason)
        if self.alarm is not None:
            self.alarm.failure()
        return VerifyResult(None)

    # -- reads -----------------------------------------------------------------------------------

    def service_accounts(self, customer_id: int) -> Sequence[ServiceAccountView]:
        """The customer's service accounts, ordered by number (read once per turn)."""
        cached = self._accounts.get(customer_id)
        if cached is None:
            cached = [ServiceAccountView(*r) for r in _SERVICE_ACCOUNTS.all(self.conn, {"cid": customer_id})]
            self._accounts[customer_id] = cached
        return cached

    def contacts(self, customer_id: int) -> Sequence[ContactView]:
        """The customer's contacts with their assignments, ordered by name (read once per turn)."""
        cached = self._contacts.get(customer_id)
        if cached is None:
            grouped: dict[int, tuple[tuple[Any, ...], set[int]]] = {}
            for row in _CONTACTS.all(self.conn, {"cid": customer_id}):
                entry = grouped.setdefault(row[0], (row, set()))
                if row[5] is not None:
                    entry[1].add(row[5])
            cached = [ContactView(r[0], r[1], r[2], r[3], r[4], frozenset(ids)) for r, ids in grouped.values()]
            self._contacts[customer_id] = cached
        return cached

    def reachable_contacts(self, customer_id: int) -> frozenset[int]:
        """The customer's contacts an alert would reach (read only where a read-back needs it)."""
        return frozenset(int(r[0]) for r in _REACHABLE_CONTACTS.all(self.conn, {"cid": customer_id}))

    def _own_accounts(self, customer_id: int, ids: Sequence[int]) -> list[int]:
        mine = {a.id for a in self.service_accounts(customer_id)}
        return sorted({i for i in ids if i in mine})

    def _own_contacts(self, customer_id: int, ids: Sequence[int]) -> dict[int, ContactView]:
        wanted = set(ids)
        return {c.id: c for c in self.contacts(customer_id) if c.id in wanted}

    # -- limits ----------------------------------------------------------------------------------

    def _lock_customer(self, customer_id: int) -> None:
        """Serialize this customer's limited writes (PostgreSQL; SQLite has one writer anyway)."""
        if self.postgres:
            _LOCK_CUSTOMER.first(self.conn, {"cid": customer_id})
        self._contacts.pop(customer_id, None)  # read again under the lock

    def _notices_left(self, customer_id: int) -> bool:
        since = self.now - timedelta(hours=1)
        sent = _NOTICES_SINCE.first(self.conn, {"cid": customer_id, "since": since})
        return (sent[0] if sent else 0) < self.limits.notices_per_hour

    def _notify(self, customer_id: int, phone: str, language: str, accounts: int) -> None:
        """Queue the opt-in notice to a number that was just given to a contact (CTIA practice)."""
        business = _CUSTOMER_NAME.first(self.conn, {"cid": customer_id})
        enqueue(
            self.conn,
            "sms",
            phone,
            OPT_IN_NOTICE,
            language,
            {"business": business[0] if business else "", "accounts": accounts},
            self.now,
            customer_id=customer_id,
        )
        self.enqueued += 1

    # -- writes ----------------------------------------------------------------------------------

    def add_contact(self, customer_id: int, contact: NewContact, service_account_ids: Sequence[int]) -> ChangeResult:
        """Create a contact of ``customer_id`` and assign it to those of its service accounts."""
        self._writing()
        self._lock_customer(customer_id)
        count = _COUNT_CONTACTS.first(self.conn, {"cid": customer_id})
        if count is not None and count[0] >= self.limits.max_contacts:
            return ChangeResult(Outcome.TOO_MANY_CONTACTS, limit=self.limits.max_contacts)
        if contact.phone and not self._notices_left(customer_id):
            return ChangeResult(Outcome.TOO_MANY_NOTICES, limit=self.limits.notices_per_hour)
        accounts = self._own_accounts(customer_id, service_account_ids)
        row = _NEW_CONTACT.first(
            self.conn,
            {
                "customer_id": customer_id,
                "name": contact.name,
                "phone": contact.phone,
                "email": contact.email,
                "language": contact.language,
                "at": self.now,
            },
        )
        if row is None:  # the unique (customer, phone) index: someone saved this number meanwhile
            return ChangeResult(Outcome.DUPLICATE, other_name=self._owner_of(customer_id, contact.phone))
        contact_id = int(row[0])
        if accounts:
            _ASSIGN.execute_many(self.conn, [{"contact_id": contact_id, "service_account_id": a} for a in accounts])
        self.audit(
            "contact.add",
            customer_id,
            contact_id=contact_id,
            name=contact.name,
            phone=contact.phone,
            email=contact.email,
            language=contact.language,
            service_accounts=accounts,
        )
        if contact.phone:
            self._notify(customer_id, contact.phone, contact.language, len(accounts))
        self._contacts.pop(customer_id, None)
        return ChangeResult(Outcome.SAVED, contact_id=contact_id)

    def _owner_of(self, customer_id: int, phone: str | None) -> str | None:
        row = _CONTACT_BY_PHONE.first(self.conn, {"cid": customer_id, "phone": phone})
        return None if row is None else str(row[0])

    def assign(self, customer_id: int, contact_ids: Sequence[int], service_account_ids: Sequence[int]) -> int:
        """Assign the customer's contacts to its service accounts; existing pairs are left alone."""
        self._writing()
        contacts = self._own_contacts(customer_id, contact_ids)
        accounts = self._own_accounts(customer_id, service_account_ids)
        rows = [
            {"contact_id": c.id, "service_account_id": a}
            for c in contacts.values()
            for a in accounts
            if a not in c.service_account_ids
        ]
        if rows:
            _ASSIGN.execute_many(self.conn, rows)
        self.audit("contact.assign", customer_id, contacts=sorted(contacts), service_accounts=accounts, added=len(rows))
        self._contacts.pop(customer_id, None)
        return len(rows)

    def unassign(self, customer_id: int, contact_ids: Sequence[int], service_account_ids: Sequence[int]) -> int:
        """Remove the customer's contacts from its service accounts."""
        self._writing()
        contacts = sorted(self._own_contacts(customer_id, contact_ids))
        accounts = self._own_accounts(customer_id, service_account_ids)
        removed = 0
        if contacts and accounts:
            result = self.conn.execute(
                delete(_as).where(and_(_as.c.contact_id.in_(contacts), _as.c.service_account_id.in_(accounts)))
            )
            removed = result.rowcount
        self.audit("contact.unassign", customer_id, contacts=contacts, service_accounts=accounts, removed=removed)
        self._contacts.pop(customer_id, None)
        return removed

    def update_contact(
        self, customer_id: int, contact_id: int, field: str, old: str | None, new: str | None
    ) -> ChangeResult:
        """Change one field of a contact, only if it still holds ``old`` (what the customer was shown)."""
        self._writing()
        if field not in _EDITABLE:
            raise ValueError(f"not an editable field: {field!r}")
        column = _co.c[field]
        if field == "phone" and new:
            self._lock_customer(customer_id)
            if not self._notices_left(customer_id):
                return ChangeResult(Outcome.TOO_MANY_NOTICES, limit=self.limits.notices_per_hour)
        statement = (
            update(_co)
            .where(_co.c.id == contact_id, _co.c.customer_id == customer_id, column.is_not_distinct_from(old))
            # a new number is not the one its Telegram chat shared: alerts go by SMS until it is shared
            .values({field: new, "updated_at": self.now, **({"telegram_chat_id": None} if field == "phone" else {})})
            .returning(_co.c.language)
        )
        try:
            with self.conn.begin_nested():  # a duplicate number must not abort the whole turn
                stored = self.conn.execute(statement).first()
        except IntegrityError:
            return ChangeResult(Outcome.DUPLICATE, other_name=self._owner_of(customer_id, new))
        self._contacts.pop(customer_id, None)
        if stored is None:
            now = self.conn.execute(
                select(column).where(_co.c.id == contact_id, _co.c.customer_id == customer_id)
            ).first()
            if now is None:
                return ChangeResult(Outcome.GONE)
            return ChangeResult(Outcome.CHANGED, current=now[0])
        self.audit("contact.edit", customer_id, contact_id=contact_id, changes={field: {"old": old, "new": new}})
        if field == "phone" and new:
            contact = self._own_contacts(customer_id, [contact_id]).get(contact_id)
            self._notify(customer_id, new, stored[0], len(contact.service_account_ids) if contact else 0)
        return ChangeResult(Outcome.SAVED, contact_id=contact_id)

    # -- the turn's own address: status and group subscriptions ------------------------------------

    def can_subscribe(self) -> bool:
        """Whether alerts can reach this turn's address (SMS or Telegram; not the terminal)."""
        return self.channel in subscriptions.CHANNELS

    def group_exists(self, group: str) -> bool:
        """Whether some service account is in ``group``."""
        return subscriptions.group_exists(self.conn, group)

    def my_status(self) -> StatusView:
        """The address's groups and their active or upcoming alerts."""
        return subscriptions.status_for(self.conn, self.channel, self.address, self.now)

    def group_status(self, group: str) -> Sequence[AlertView]:
        """One group's active or upcoming alerts (group-level facts only)."""
        return subscriptions.group_status(self.conn, group, self.now)

    def subscribed_groups(self) -> Sequence[str]:
        """The groups the address subscribed to."""
        return subscriptions.subscribed_groups(self.conn, self.channel, self.address)

    def subscribe(self, group: str, locale: str) -> Subscribed:
        """Subscribe the address to ``group``; audited (``subscription.add``) when saved."""
        self._writing()
        result = subscriptions.subscribe(
            self.conn, self.channel, self.address, group, locale, self.now, self.limits.subscriptions_per_address
        )
        if result is Subscribed.SAVED:
            self.audit("subscription.add", None, group=group, locale=locale)
        return result

    def unsubscribe(self, group: str) -> Subscribed:
        """Unsubscribe the address from ``group``; audited (``subscription.remove``) when there was one."""
        self._writing()
        result = subscriptions.unsubscribe(self.conn, self.channel, self.address, group)
        if result is Subscribed.SAVED:
            self.audit("subscription.remove", None, group=group)
        return result
