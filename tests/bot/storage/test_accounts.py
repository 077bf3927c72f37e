"""The accounts repository keeps every write inside the customer it is given, whatever ids it is handed.

The dialogs already offer only the verified customer's own contacts and service accounts; these
tests call the repository directly with another customer's ids, as a bug in a dialog would.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, select

from bot.app import App
from bot.security import CodeChecks
from bot.storage.accounts import AccountsRepo, NeedsTransaction
from bot.storage.models import Contact, ContactAssignment, CustomerAccount, ServiceAccount
from bot.storage.sessions import AddressThrottle
from dialogs.ports import NewContact, Outcome


def ids(conn: Connection, model: Any, column: Any, value: str) -> int:
    return int(conn.execute(select(model.id).where(column == value)).scalar_one())


def repo(app: App, conn: Connection, read_only: bool = False) -> AccountsRepo:
    return AccountsRepo(
        conn,
        channel="console",
        address="test",
        now=app.conversation.clock(),
        hasher=CodeChecks(app.hasher),
        policy=app.conversation.policy,
        throttle=AddressThrottle(),
        read_only=read_only,
    )


def state(conn: Connection) -> tuple[list[Any], list[Any]]:
    return (
        sorted(tuple(r) for r in conn.execute(select(Contact.__table__))),
        sorted(tuple(r) for r in conn.execute(select(ContactAssignment.__table__))),
    )


@pytest.mark.parametrize("write", ["assign", "unassign", "edit", "assign-their-account"])
def test_another_customers_ids_are_never_written(app: App, write: str) -> None:
    def attempt(conn: Connection) -> Any:
        sunrise = ids(conn, CustomerAccount, CustomerAccount.number, "700000002")
        their_contact = ids(conn, Contact, Contact.name, "Nguyễn Văn An")  # Phở Bolsa's
        their_account = ids(conn, ServiceAccount, ServiceAccount.number, "3-001-1002")
        our_contact = ids(conn, Contact, Contact.name, "Maria Lopez")
        our_account = ids(conn, ServiceAccount, ServiceAccount.number, "3-002-2002")
        before = state(conn)
        r = repo(app, conn)
        result: Any = {
            "assign": lambda: r.assign(sunrise, [their_contact], [our_account]),
            "unassign": lambda: r.unassign(sunrise, [their_contact], [their_account]),
            "edit": lambda: r.update_contact(sunrise, their_contact, "name", "Nguyễn Văn An", "Mallory"),
            "assign-their-account": lambda: r.assign(sunrise, [our_contact], [their_account]),
        }[write]()
        assert state(conn) == before
        return result

    result = app.db.run(attempt)
    if write == "edit":
        assert result.outcome is Outcome.GONE
    else:
        assert result == 0


@pytest.mark.parametrize(
    "write",
    ["verify", "assign", "unassign", "edit", "add", "audit"],
)
def test_a_read_only_repository_refuses_every_write_before_it_touches_anything(app: App, write: str) -> None:
    """A turn run without a transaction (PostgreSQL's optimistic turns) must never write: the first
    write it would make raises NeedsTransaction, and the turn runs again under the session's lock."""
    with app.db.engine.connect() as conn:
        before = state(conn)
        sunrise = ids(conn, CustomerAccount, CustomerAccount.number, "700000002")
        maria = ids(conn, Contact, Contact.name, "Maria Lopez")
        account = ids(conn, ServiceAccount, ServiceAccount.number, "3-002-2002")
        r = repo(app, conn, read_only=True)
        action = {
            "verify": lambda: r.verify("700000002", "731562"),
            "assign": lambda: r.assign(sunrise, [maria], [account]),
            "unassign": lambda: r.unassign(sunrise, [maria], [account]),
            "edit": lambda: r.update_contact(sunrise, maria, "name", "Maria Lopez", "Maria L."),
            "add": lambda: r.add_contact(sunrise, NewContact("Anh Tran", "+16265550177", None, "en"), [account]),
            "audit": lambda: r.audit("contact.edit", sunrise),
        }[write]
        with pytest.raises(NeedsTransaction):
            action()
        conn.rollback()
        assert state(conn) == before
