"""``export-contacts``: the contacts as they are now, in the CIS export's own format and columns.

So the utility can bring what customers changed through the bot (names, phones, emails, languages,
who is on which service account, contacts they added) back into its CIS. One row per service account
and contact on it; a service account without contacts gets one row with empty contact columns.
Customer accounts, service accounts and then contacts (by name) come in order.

The access code cannot be exported (only a hash of it is stored), so the column is empty: the import
reads an empty code as "keep the stored code" for an existing customer account. Importing the export
changes nothing.

What the format cannot say is left out and reported: a contact on no service account (every row is
a service account), and a contact with neither phone nor email (the import would refuse it).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import Connection, exists, select

from bot.cis_csv import COLUMNS
from bot.storage.db import Database
from bot.storage.models import Contact, ContactAssignment, CustomerAccount, ServiceAccount, table

_ca = table(CustomerAccount)
_sa = table(ServiceAccount)
_co = table(Contact)
_as = table(ContactAssignment)


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A contact the export could not write, and why (``no_service_account`` or ``no_phone_or_email``)."""

    customer: str
    contact: str
    reason: str


@dataclass
class ExportReport:
    """What an export wrote."""

    rows: int = 0
    customers: int = 0
    service_accounts: int = 0
    contacts: int = 0
    left_out: list[LeftOut] = field(default_factory=list)


def _kw(value: Decimal | float | None) -> str:
    return "" if value is None else format(Decimal(str(value)), "f")


def _accounts(conn: Connection) -> Iterator[tuple[Any, list[Any]]]:
    """Each service account (with its customer) and the contacts on it; one statement, one snapshot."""
    statement = (
        select(
            _ca.c.number.label("customer"),
            _ca.c.name.label("customer_name"),
            _sa.c.id,
            _sa.c.number,
            _sa.c.service_address,
            _sa.c.outage_group,
            _sa.c.demand_kw,
            _co.c.id.label("contact_id"),
            _co.c.name,
            _co.c.phone,
            _co.c.email,
            _co.c.language,
        )
        .select_from(
            _ca.join(_sa, _sa.c.customer_id == _ca.c.id)
            .outerjoin(_as, _as.c.service_account_id == _sa.c.id)
            .outerjoin(_co, _co.c.id == _as.c.contact_id)
        )
        .order_by(_ca.c.number, _sa.c.number, _co.c.id)
    )
    current: Any = None
    contacts: list[Any] = []
    for row in conn.execute(statement.execution_options(yield_per=2000)):
        if current is not None and row.id != current.id:
            yield current, contacts
            contacts = []
        current = row
        if row.contact_id is not None:
            contacts.append(row)
    if current is not None:
        yield current, contacts


def export_contacts(db: Database, stream: IO[str]) -> ExportReport:
    """Write every service account and its contacts to ``stream`` as CSV; returns what was written."""
    report = ExportReport()
    writer = csv.writer(stream)
    writer.writerow(COLUMNS)
    customers: set[str] = set()
    contacts: set[int] = set()
    unreachable: dict[int, LeftOut] = {}
    with db.unlocked() as conn:
        for account, on_it in _accounts(conn):
            head = [
                account.customer,
                "",
                account.customer_name,
                account.number,
                account.service_address,
                account.outage_group,
                _kw(account.demand_kw),
            ]
            written = 0
            for c in sorted(on_it, key=lambda c: (c.name, c.contact_id)):
                if not c.phone and not c.email:
                    unreachable[c.contact_id] = LeftOut(account.customer, c.name, "no_phone_or_email")
                    continue
                writer.writerow([*head, c.name, c.phone or "", c.email or "", c.language])
                contacts.add(c.contact_id)
                written += 1
            if not written:
                writer.writerow([*head, "", "", "", ""])
            report.rows += max(written, 1)
            report.service_accounts += 1
            customers.add(account.customer)
        alone = conn.execute(
            select(_ca.c.number, _co.c.name)
            .join(_co, _co.c.customer_id == _ca.c.id)
            .where(~exists().where(_as.c.contact_id == _co.c.id))
            .order_by(_ca.c.number, _co.c.name, _co.c.id)
        ).all()
    report.customers, report.contacts = len(customers), len(contacts)
    report.left_out = [*(LeftOut(n, name, "no_service_account") for n, name in alone), *unreachable.values()]
    return report
