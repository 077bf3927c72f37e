"""What the dialogs need from the outside world, as Protocols that ``bot.storage`` implements.

Every :class:`AccountsPort` method takes the verified customer's id, and implementations must scope
every read and write to that customer: a session can only see and change its own customer's accounts
and contacts. :class:`SubscriptionsPort` needs no verification: it acts for the turn's own address
(the SMS number or Telegram chat that wrote), and the status of a group is public.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ServiceAccountView:
    """A service account as shown to its customer."""

    id: int
    number: str
    address: str
    outage_group: str


@dataclass(frozen=True, slots=True)
class ContactView:
    """An alert contact of a customer, with the service accounts it is assigned to."""

    id: int
    name: str
    phone: str | None
    email: str | None
    language: str
    service_account_ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class NewContact:
    """A contact as entered in the dialog, validated, before it is saved."""

    name: str
    phone: str
    email: str | None
    language: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of a verification attempt.

    ``customer_id`` is set only on success. ``throttled`` says the *address* (not the account) has made
    too many attempts; it reveals nothing about the account. Why a failure happened (unknown account,
    wrong code, locked account) is deliberately not part of the result.
    """

    customer_id: int | None
    customer_name: str | None = None
    throttled: bool = False
    retry_minutes: int = 15


class Outcome(enum.Enum):
    """What became of a confirmed change."""

    SAVED = "saved"
    GONE = "gone"  # the contact no longer exists
    CHANGED = "changed"  # the value read back is no longer what is stored: nothing was saved
    DUPLICATE = "duplicate"  # the number is already another contact's
    TOO_MANY_CONTACTS = "too_many_contacts"
    TOO_MANY_NOTICES = "too_many_notices"  # too many new numbers in the last hour


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """The outcome of adding or editing a contact.

    Attributes:
        outcome: what happened.
        contact_id: the new contact's id (``SAVED`` by an add).
        current: ``CHANGED``: the value stored now, to read back again.
        other_name: ``DUPLICATE``: the contact whose number it already is.
        limit: ``TOO_MANY_*``: the limit that was reached.
    """

    outcome: Outcome
    contact_id: int | None = None
    current: str | None = None
    other_name: str | None = None
    limit: int = 0


class AccountsPort(Protocol):
    """Customer accounts, service accounts and their alert contacts."""

    def verify(self, account_number: str, access_code: str, *alternatives: str) -> VerifyResult:
        """Check a Customer Account Number and access code, counting failures and locking out.

        ``alternatives`` are other readings of the same answer (without the particles around it):
        any of them matching verifies; none matching is one failure."""
        ...

    def service_accounts(self, customer_id: int) -> Sequence[ServiceAccountView]:
        """The customer's service accounts, in a stable order."""
        ...

    def contacts(self, customer_id: int) -> Sequence[ContactView]:
        """The customer's contacts, in a stable order."""
        ...

    def reachable_contacts(self, customer_id: int) -> frozenset[int]:
        """Ids of the customer's contacts an alert would reach (a number, not opted out, or on Telegram)."""
        ...

    def add_contact(self, customer_id: int, contact: NewContact, service_account_ids: Sequence[int]) -> ChangeResult:
        """Create a contact and assign it, unless its number is taken or a limit is reached. Audited."""
        ...

    def assign(self, customer_id: int, contact_ids: Sequence[int], service_account_ids: Sequence[int]) -> int:
        """Assign contacts to service accounts; returns how many new assignments were made. Audited."""
        ...

    def unassign(self, customer_id: int, contact_ids: Sequence[int], service_account_ids: Sequence[int]) -> int:
        """Remove contacts from service accounts; returns how many assignments were removed. Audited."""
        ...

    def update_contact(
        self, customer_id: int, contact_id: int, field: str, old: str | None, new: str | None
    ) -> ChangeResult:
        """Change one field (name, phone, email, language) of a contact from ``old`` to ``new``.

        Saved only if ``old`` (what the customer was shown) is still what is stored. Audited.
        """
        ...


@dataclass(frozen=True, slots=True)
class AlertView:
    """An active or upcoming rotating outage (an advance or started alert), as shown to whoever asks.

    Attributes:
        id: the alert.
        kind: "advance" (planned) or "started" (in progress).
        starts_at, ends_at: the window (aware UTC).
        groups: the alert's outage groups that concern the reader.
        accounts: the reader's own service account numbers in those groups (none for a group asked
            by anyone: other customers' accounts are never shown).
        note_en, note_vi: the operator's note, if any.
    """

    id: int
    kind: str
    starts_at: datetime
    ends_at: datetime
    groups: tuple[str, ...]
    accounts: tuple[str, ...] = ()
    note_en: str | None = None
    note_vi: str | None = None


@dataclass(frozen=True, slots=True)
class StatusView:
    """What concerns the turn's address: its groups (of the service accounts it is a contact for, and
    subscribed) and their active or upcoming outages. No groups: the address is nobody we know."""

    groups: tuple[str, ...]
    alerts: tuple[AlertView, ...]


class Subscribed(enum.Enum):
    """What became of a confirmed subscribe or unsubscribe."""

    SAVED = "saved"
    ALREADY = "already"  # subscribing: it already was
    NOT_SUBSCRIBED = "not_subscribed"  # unsubscribing: it was not
    TOO_MANY = "too_many"  # the address has the most subscriptions allowed
    UNKNOWN_GROUP = "unknown_group"  # no service account is in that group (any more)


class SubscriptionsPort(Protocol):
    """Rotating outage status and group subscriptions of the turn's own address (no account needed)."""

    def can_subscribe(self) -> bool:
        """Whether alerts can reach this address (an SMS number or a Telegram chat, not a terminal)."""
        ...

    def group_exists(self, group: str) -> bool:
        """Whether some service account is in ``group`` (as the bill prints it, canonical form)."""
        ...

    def my_status(self) -> StatusView:
        """The address's groups and their active or upcoming outages."""
        ...

    def group_status(self, group: str) -> Sequence[AlertView]:
        """The active or upcoming outages of one group, with group-level facts only."""
        ...

    def subscribed_groups(self) -> Sequence[str]:
        """The groups the address is subscribed to, in order."""
        ...

    def subscribe(self, group: str, locale: str) -> Subscribed:
        """Subscribe the address to ``group`` (alerts in ``locale``), within the limit. Audited."""
        ...

    def unsubscribe(self, group: str) -> Subscribed:
        """Unsubscribe the address from ``group``. Audited."""
        ...


class Ports(AccountsPort, SubscriptionsPort, Protocol):
    """Everything a dialog turn may ask of the outside world."""
