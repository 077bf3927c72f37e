"""Helpers for the import and export tests: CIS files as rows, a customer using the bot, what is stored."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.app import App
from bot.importer import COLUMNS
from bot.storage.models import AuditEntry, Contact, ContactAssignment, CustomerAccount, ServiceAccount
from tests.conftest import DEMO, verified_chat

Rows = list[dict[str, str]]


def read_csv(path: Path) -> Rows:
    with path.open(newline="", encoding="utf-8") as fh:
        return [dict(row) for row in csv.DictReader(fh)]


def demo_rows() -> Rows:
    """The demo export, one dict a row."""
    return read_csv(DEMO)


def write_csv(path: Path, rows: Rows) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in COLUMNS})
    return path


def edit(rows: Rows, where: dict[str, str], **values: str) -> Rows:
    """A copy of ``rows`` where the rows matching ``where`` take ``values`` (the CIS changed them)."""
    return [{**row, **values} if all(row[k] == v for k, v in where.items()) else dict(row) for row in rows]


def good(**overrides: str) -> dict[str, str]:
    row = {
        "customer_account": "800000001",
        "access_code": "S3cret",
        "customer_name": "Bánh Mì Co",
        "service_account": "4-001-0001",
        "service_address": "1 Main St",
        "outage_group": "G1",
        "demand_kw": "99.5",
        "contact_name": "Võ Văn Tư",
        "contact_phone": "626-555-0111",
        "contact_email": "tu@example.com",
        "contact_language": "vi",
    }
    row.update(overrides)
    return row


AT_THE_LIMIT_REGIONS = ("US", "CA", "VN")  # OUTAGEBOT_PHONE_REGIONS of a deployment that texts Vietnam
AT_THE_LIMIT = {  # the largest value each column holds: imported on SQLite and PostgreSQL alike
    "customer_account": "9" * 20,
    "access_code": "c" * 64,
    "customer_name": "Phở " + "ă" * 196,
    "service_account": "A-" + "9" * 18,
    "service_address": "Đ" * 200,
    "outage_group": "G" * 20,
    "demand_kw": "99999999.99",
    "contact_name": "Nguyễn " + "ư" * 93,
    "contact_phone": "+84 912 345 678",  # imported where Vietnam is allowed: AT_THE_LIMIT_REGIONS
    "contact_email": "a" * 64 + "@" + "b" * 63 + "." + "b" * 63 + "." + "b" * 57 + ".com",  # 254, labels of 63
    "contact_language": "Tiếng Việt",
}


def count(app: App, model: type) -> int:
    with app.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


ContactState = tuple[str, str | None, str | None, str, str]


def contacts_of(app: App, customer: str = "700000001") -> set[ContactState]:
    """The customer's contacts as (name, phone, email, language, "its service accounts")."""
    with app.db.engine.connect() as conn:
        contacts = conn.execute(
            select(Contact.id, Contact.name, Contact.phone, Contact.email, Contact.language)
            .join(CustomerAccount, CustomerAccount.id == Contact.customer_id)
            .where(CustomerAccount.number == customer)
        ).all()
        links = conn.execute(
            select(ContactAssignment.contact_id, ServiceAccount.number).join(
                ServiceAccount, ServiceAccount.id == ContactAssignment.service_account_id
            )
        ).all()
    accounts: dict[int, list[str]] = {}
    for contact_id, number in links:
        accounts.setdefault(contact_id, []).append(number)
    return {(c.name, c.phone, c.email, c.language, " ".join(sorted(accounts.get(c.id, [])))) for c in contacts}


def audit_rows(app: App, channel: str = "import") -> list[tuple[str, int | None, str, dict[str, Any]]]:
    """(action, customer_id, address, details) of the audit rows of ``channel``, in order."""
    with app.db.engine.connect() as conn:
        rows = conn.execute(
            select(AuditEntry.action, AuditEntry.customer_id, AuditEntry.address, AuditEntry.details)
            .where(AuditEntry.channel == channel)
            .order_by(AuditEntry.id)
        ).all()
    return [(r.action, r.customer_id, r.address, r.details) for r in rows]


def whole_database(app: App) -> dict[str, list[tuple[Any, ...]]]:
    """Every row customers and operators can see (not the import's own bookkeeping), for comparisons."""
    with app.db.engine.connect() as conn:
        found = {
            "customers": sorted(
                conn.execute(
                    select(
                        CustomerAccount.number,
                        CustomerAccount.name,
                        CustomerAccount.access_code_hash,
                        CustomerAccount.credential_version,
                    )
                ).all()
            ),
            "service_accounts": sorted(
                conn.execute(
                    select(
                        ServiceAccount.number,
                        ServiceAccount.customer_id,
                        ServiceAccount.service_address,
                        ServiceAccount.outage_group,
                        ServiceAccount.demand_kw,
                    )
                ).all()
            ),
            "contacts": sorted(
                conn.execute(
                    select(Contact.id, Contact.name, Contact.phone, Contact.email, Contact.language, Contact.updated_at)
                ).all()
            ),
            "assignments": sorted(
                conn.execute(select(ContactAssignment.contact_id, ContactAssignment.service_account_id)).all()
            ),
            "audit": sorted(conn.execute(select(AuditEntry.id, AuditEntry.action)).all()),
        }
    return {name: [tuple(row) for row in rows] for name, rows in found.items()}


class Customer:
    """A business customer changing its contacts through the bot, in English, as a channel would."""

    def __init__(self, app: App, account: str = "700000001", code: str = "482913") -> None:
        self.chat = verified_chat(app, "en", account, code)

    def _pick(self, label: str) -> str:
        """The number the last reply shows in front of ``label``."""
        for line in self.chat.last_text.splitlines():
            found = re.match(r"^(\d+) (.*)$", line)
            if found and label in found.group(2):
                return found.group(1)
        raise AssertionError(f"{label!r} is not offered in:\n{self.chat.last_text}")

    def _save(self) -> None:
        reply = self.chat.say("y")
        assert reply.startswith("Saved."), reply
        assert self.chat.state == "contacts.menu", self.chat.last_text

    def edit(self, contact: str, field: str, value: str) -> None:
        """Change one field of a contact (a language is given by its name in the list: English...)."""
        self.chat.say("3")
        self.chat.say(self._pick(contact))
        self.chat.say({"name": "1", "phone": "2", "email": "3", "language": "4"}[field])
        self.chat.say(self._pick(value) if field == "language" else value)
        self._save()

    def unassign(self, contact: str, *accounts: str) -> None:
        """Remove a contact from service accounts (given as shown: "*1001")."""
        self.chat.say("4")
        self.chat.say(self._pick(contact))
        self.chat.say(",".join(self._pick(a) for a in accounts))
        self._save()

    def assign(self, contact: str, *accounts: str) -> None:
        """Add a contact to more service accounts."""
        self.chat.say("2")
        self.chat.say(self._pick(contact))
        self.chat.say(",".join(self._pick(a) for a in accounts))
        self._save()

    def add(self, name: str, phone: str, *accounts: str) -> None:
        """Add a new contact (no email, English) on service accounts."""
        self.chat.run("1", name, phone, "n")
        self.chat.say(self._pick("English"))
        self.chat.say(",".join(self._pick(a) for a in accounts))
        self._save()


def details_text(rows: list[tuple[str, int | None, str, dict[str, Any]]]) -> str:
    return json.dumps([r[3] for r in rows], ensure_ascii=False)
