"""Accounts and contacts: the storage side of :class:`dialogs.ports.AccountsPort`.

One instance serves one turn: it holds the turn's connection, the actor (channel and address) for
the audit log, and the address throttle from the session row. Every query is scoped to the customer
id it is given, and ids chosen in a dialog are re-checked against that customer before any write.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Connection, and_, bindparam, delete, insert, select, update

from bot.security import CodeChecker, FailureAlarm, mask
from bot.storage.models import AuditEntry, Contact, ContactAssignment, CustomerAccount, ServiceAccount, table
from bot.storage.outbound import OPT_IN_NOTICE, enqueue
from bot.storage.prepared import Prepared
from bot.storage.sessions import AddressThrottle
from dialogs.ports import ContactView, NewContact, ServiceAccountView, VerifyResult

log = logging.getLogger(__name__)

_ca = table(CustomerAccount)
_sa = table(ServiceAccount)
_co = table(Contact)
_as = table(ContactAssignment)
_audit = table(AuditEntry)

_CUSTOMER_BY_NUMBER = Prepared(select(_ca.c.id, _ca.c.name, _ca.c.access_code_hash, _ca.c.failed_attempts,
                                      _ca.c.locked_until).where(_ca.c.number == bindparam("number")))
_CUSTOMER_RESULT = Prepared(update(_ca).where(_ca.c.id == bindparam("b_id"))
                            .values(failed_attempts=bindparam("b_failed"), locked_until=bindparam("b_locked")))
_CUSTOMER_NAME = Prepared(select(_ca.c.name).where(_ca.c.id == bindparam("cid")))
_SERVICE_ACCOUNTS = Prepared(select(_sa.c.id, _sa.c.number, _sa.c.service_address, _sa.c.outage_group)
                             .where(_sa.c.customer_id == bindparam("cid")).order_by(_sa.c.number))
_CONTACTS = Prepared(select(_co.c.id, _co.c.name, _co.c.phone, _co.c.email, _co.c.language,
                            _as.c.service_account_id)
                     .select_from(_co.outerjoin(_as, _as.c.contact_id == _co.c.id))
                     .where(_co.c.customer_id == bindparam("cid")).order_by(_co.c.name, _co.c.id))
_AUDIT = Prepared(insert(_audit).values(
    at=bindparam("at"), channel=bindparam("channel"), address=bindparam("address"),
    customer_id=bindparam("customer_id"), action=bindparam("action"), details=bindparam("details", type_=JSON)))
_NEW_CONTACT = Prepared(insert(_co).values(
    customer_id=bindparam("customer_id"), name=bindparam("name"), phone=bindparam("phone"),
    email=bindparam("email"), language=bindparam("language"), created_at=bindparam("at"),
    updated_at=bindparam("at")).returning(_co.c.id))
_ASSIGN = Prepared(insert(_as).values(contact_id=bindparam("contact_id"),
                                      service_account_id=bindparam("service_account_id")))
_EDITABLE = {"name", "phone", "email", "language"}


def stored_code_hash(conn: Connection, account_number: str) -> str | None:
    """The access-code hash of a customer account (None when there is no such account)."""
    row = _CUSTOMER_BY_NUMBER.first(conn, {"number": account_number})
    return None if row is None else str(row[2])


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """How many failures lock an account or throttle an address, and for how long."""

    account_failures: int = 5
    account_lock: timedelta = timedelta(minutes=15)
    address_failures: int = 10
    address_window: timedelta = timedelta(minutes=15)


class AccountsRepo:
    """Accounts and contacts for one turn (implements :class:`dialogs.ports.AccountsPort`)."""

    def __init__(self, conn: Connection, *, channel: str, address: str, now: datetime, hasher: CodeChecker,
                 policy: LockoutPolicy, throttle: AddressThrottle, alarm: FailureAlarm | None = None) -> None:
        self.conn = conn
        self.channel, self.address, self.now = channel, address, now
        self.hasher, self.policy, self.throttle, self.alarm = hasher, policy, throttle, alarm
        self.enqueued = 0  # outbox messages written in this turn
        self._accounts: dict[int, list[ServiceAccountView]] = {}
        self._contacts: dict[int, list[ContactView]] = {}

    # -- audit -----------------------------------------------------------------------------------

    def audit(self, action: str, customer_id: int | None, **details: Any) -> None:
        """Write one audit row in the turn's transaction."""
        _AUDIT.execute(self.conn, {"at": self.now, "channel": self.channel, "address": self.address,
                                   "customer_id": customer_id, "action": action, "details": details})

    # -- verification ----------------------------------------------------------------------------

    def verify(self, account_number: str, access_code: str) -> VerifyResult:
        """Check the pair; the same answer for unknown account, wrong code and locked account."""
        throttle, policy = self.throttle, self.policy
        if throttle.window_start is None or self.now - throttle.window_start > policy.address_window:
            throttle.failures, throttle.window_start = 0, self.now
        if throttle.failures >= policy.address_failures:
            log.info("verification throttled for %s:%s", self.channel, mask(self.address))
            minutes = (throttle.window_start + policy.address_window - self.now).total_seconds() / 60
            return VerifyResult(None, throttled=True, retry_minutes=max(1, math.ceil(minutes)))

        row = _CUSTOMER_BY_NUMBER.first(self.conn, {"number": account_number})
        customer_id, name, stored_hash, failed_attempts, locked_until = row or (None, None, None, 0, None)
        matches = self.hasher.verify(access_code, stored_hash)
        locked = locked_until is not None and locked_until > self.now
        if customer_id is not None and matches and not locked:
            if failed_attempts:
                _CUSTOMER_RESULT.execute(self.conn, {"b_id": customer_id, "b_failed": 0, "b_locked": None})
            self.audit("verify.success", customer_id)
            return VerifyResult(customer_id, name)

        throttle.failures += 1
        reason = "unknown" if customer_id is None else "locked" if locked else "wrong_code"
        if customer_id is not None and not locked:
            failed = failed_attempts + 1
            lock_until = None
            if failed >= policy.account_failures:
                failed, lock_until = 0, self.now + policy.account_lock
                log.warning("customer account %s locked until %s", mask(account_number), lock_until)
            _CUSTOMER_RESULT.execute(self.conn, {"b_id": customer_id, "b_failed": failed, "b_locked": lock_until})
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

    def _own_accounts(self, customer_id: int, ids: Sequence[int]) -> list[int]:
        mine = {a.id for a in self.service_accounts(customer_id)}
        return sorted({i for i in ids if i in mine})

    def _own_contacts(self, customer_id: int, ids: Sequence[int]) -> dict[int, ContactView]:
        wanted = set(ids)
        return {c.id: c for c in self.contacts(customer_id) if c.id in wanted}

    # -- writes ----------------------------------------------------------------------------------

    def add_contact(self, customer_id: int, contact: NewContact, service_account_ids: Sequence[int]) -> int:
        """Create a contact of ``customer_id`` and assign it to those of its service accounts."""
        accounts = self._own_accounts(customer_id, service_account_ids)
        row = _NEW_CONTACT.first(self.conn, {
            "customer_id": customer_id, "name": contact.name, "phone": contact.phone, "email": contact.email,
            "language": contact.language, "at": self.now})
        if row is None:  # pragma: no cover - RETURNING always returns the new row
            raise RuntimeError("contact was not inserted")
        contact_id = int(row[0])
        if accounts:
            _ASSIGN.execute_many(self.conn, [{"contact_id": contact_id, "service_account_id": a}
                                             for a in accounts])
        self.audit("contact.add", customer_id, contact_id=contact_id, name=contact.name, phone=contact.phone,
                   email=contact.email, language=contact.language, service_accounts=accounts)
        if contact.phone:  # CTIA: the new number is told who added it, what it will get, how to stop
            business = _CUSTOMER_NAME.first(self.conn, {"cid": customer_id})
            enqueue(self.conn, "sms", contact.phone, OPT_IN_NOTICE, contact.language,
                    {"business": business[0] if business else "", "accounts": len(accounts)}, self.now)
            self.enqueued += 1
        self._contacts.pop(customer_id, None)
        return contact_id

    def assign(self, customer_id: int, contact_ids: Sequence[int], service_account_ids: Sequence[int]) -> int:
        """Assign the customer's contacts to its service accounts; existing pairs are left alone."""
        contacts = self._own_contacts(customer_id, contact_ids)
        accounts = self._own_accounts(customer_id, service_account_ids)
        rows = [{"contact_id": c.id, "service_account_id": a}
                for c in contacts.values() for a in accounts if a not in c.service_account_ids]
        if rows:
            _ASSIGN.execute_many(self.conn, rows)
        self.audit("contact.assign", customer_id, contacts=sorted(contacts), service_accounts=accounts,
                   added=len(rows))
        self._contacts.pop(customer_id, None)
        return len(rows)

    def unassign(self, customer_id: int, contact_ids: Sequence[int], service_account_ids: Sequence[int]) -> int:
        """Remove the customer's contacts from its service accounts."""
        contacts = sorted(self._own_contacts(customer_id, contact_ids))
        accounts = self._own_accounts(customer_id, service_account_ids)
        removed = 0
        if contacts and accounts:
            result = self.conn.execute(delete(_as).where(and_(_as.c.contact_id.in_(contacts),
                                                              _as.c.service_account_id.in_(accounts))))
            removed = result.rowcount
        self.audit("contact.unassign", customer_id, contacts=contacts, service_accounts=accounts,
                   removed=removed)
        self._contacts.pop(customer_id, None)
        return removed

    def update_contact(self, customer_id: int, contact_id: int, changes: Mapping[str, str | None]) -> None:
        """Change editable fields of one of the customer's contacts."""
        current = self._own_contacts(customer_id, [contact_id]).get(contact_id)
        values = {k: v for k, v in changes.items() if k in _EDITABLE}
        if current is None or not values:
            return
        self.conn.execute(update(_co).where(_co.c.id == contact_id, _co.c.customer_id == customer_id)
                          .values(**values, updated_at=self.now))
        self.audit("contact.edit", customer_id, contact_id=contact_id,
                   changes={k: {"old": getattr(current, k), "new": v} for k, v in values.items()})
        self._contacts.pop(customer_id, None)
