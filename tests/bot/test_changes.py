"""Confirmed changes: saved exactly as read back, or not at all, and never for another customer.

Two chats of one customer (two phones of one business) race between the read-back and the "Y";
a read-back declined saves nothing for every operation; ids in a session that are not the verified
customer's are ignored; limits against SMS pumping hold at the moment of saving.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select, text

from bot.app import App, build
from bot.importer import import_file
from bot.storage.models import AuditEntry, ChatSession, Contact, ContactAssignment, OutboundMessage, ServiceAccount
from tests.conftest import DEMO, Chat, Clock, make_settings, verified_chat

SUNRISE = {"account": "700000002", "code": "731562"}
FIELDS = {"name": "name", "phone": "mobile number", "email": "email"}


def snapshot(app: App) -> dict[str, Any]:
    with app.db.engine.connect() as conn:
        return {
            "contacts": sorted(tuple(r) for r in conn.execute(select(Contact.__table__))),
            "assignments": sorted(tuple(r) for r in conn.execute(select(ContactAssignment.__table__))),
            "outbox": conn.execute(select(func.count()).select_from(OutboundMessage)).scalar_one(),
        }


def contact(app: App, name: str) -> Any:
    with app.db.engine.connect() as conn:
        return conn.execute(select(Contact.__table__).where(Contact.name == name)).first()


def edits(app: App) -> list[dict[str, Any]]:
    with app.db.engine.connect() as conn:
        return [
            r.details["changes"]
            for r in conn.execute(
                select(AuditEntry.details).where(AuditEntry.action == "contact.edit").order_by(AuditEntry.id)
            )
        ]


def at_edit_confirm(app: App, address: str, field: str, value: str, locale: str = "en") -> Chat:
    chat = verified_chat(app, locale, address=address, **SUNRISE)
    chat.run("3", "1", field, value)
    assert chat.state == "edit.confirm", chat.last_text
    return chat


# -- compare-and-set at the read-back --------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "first", "second", "column", "shown_now"),
    [
        ("2", "(626) 555-0161", "(626) 555-0163", "phone", "(626) 555-0163"),
        ("1", "Maria L. Lopez", "Maria Lopez-Diaz", "name", "Maria Lopez-Diaz"),
        ("3", "m1@sunrise.example", "m2@sunrise.example", "email", "m2@sunrise.example"),
    ],
)
def test_a_value_saved_meanwhile_by_another_phone_is_not_overwritten(
    app: App, field: str, first: str, second: str, column: str, shown_now: str
) -> None:
    slow = at_edit_confirm(app, "+17145550201", field, first)
    original = getattr(contact(app, "Maria Lopez"), column)
    fast = at_edit_confirm(app, "+17145550202", field, second)
    assert "updated" in fast.say("y")
    reply = slow.say("y")
    assert f"That was changed meanwhile. Now: {shown_now}. Nothing was saved." in reply
    assert slow.state == "edit.confirm" and f"from {shown_now} to {first}? Y/N" in reply  # read back again
    heading = "Maria Lopez-Diaz" if column == "name" else "Maria Lopez"  # the contact as it is called now
    assert reply.endswith(f"\nChange the {FIELDS[column]} of {heading} from {shown_now} to {first}? Y/N")
    assert "updated" in slow.say("y")  # now it replaces what the customer was shown
    stored = {"phone": "+16265550161", "name": first, "email": first}[column]
    assert [e[column] for e in edits(app)] == [
        {"old": original, "new": {"phone": "+16265550163", "name": second, "email": second}[column]},
        {"old": {"phone": "+16265550163", "name": second, "email": second}[column], "new": stored},
    ]


def test_the_vietnamese_read_back_says_it_changed_meanwhile(app: App) -> None:
    slow = at_edit_confirm(app, "+17145550203", "1", "Maria L.", locale="vi")
    fast = at_edit_confirm(app, "+17145550204", "1", "Maria Lopez-Diaz")  # another phone, meanwhile
    fast.say("y")
    reply = slow.say("c")
    assert "Người khác vừa đổi thành: Maria Lopez-Diaz; chưa lưu gì." in reply
    assert reply.endswith("Đổi tên của Maria Lopez-Diaz từ Maria Lopez-Diaz sang Maria L.? C/K")  # asked again


def test_a_value_saved_meanwhile_that_is_the_one_wanted_needs_nothing_more(app: App) -> None:
    slow = at_edit_confirm(app, "+17145550209", "4", "1", locale="vi")
    fast = at_edit_confirm(app, "+17145550210", "4", "1")
    fast.say("y")
    reply = slow.say("c")
    assert "Maria Lopez đã có ngôn ngữ này rồi, không cần thay đổi." in reply
    assert slow.state == "contacts.menu" and "thay vì" not in reply


@pytest.mark.parametrize(
    ("steps", "gone_at"),
    [
        (["3", "1", "2", "(626) 555-0164"], "edit.confirm"),
        (["2", "1", "2"], "link.confirm"),  # *2002 keeps its number 2 where *2001 is not offered
        (["4", "1", "1"], "unlink.confirm"),
    ],
)
def test_a_contact_deleted_meanwhile_is_reported_and_nothing_is_written(
    app: App, steps: list[str], gone_at: str
) -> None:
    chat = verified_chat(app, "en", **SUNRISE)
    chat.run(*steps)
    assert chat.state == gone_at, chat.last_text
    with app.db.engine.begin() as conn:  # the back office removed Maria meanwhile
        conn.execute(text("DELETE FROM contacts WHERE name = 'Maria Lopez'"))
    before = snapshot(app)
    assert "That contact is no longer on file. Nothing was changed." in chat.say("y")
    assert chat.state == "contacts.menu" and snapshot(app) == before


# -- declining the read-back saves nothing, for every operation ------------------------------------


@pytest.mark.parametrize(
    ("locale", "steps", "no"),
    [
        ("en", ["1", "Anh Tran", "(626) 555-0190", "n", "2", "1"], "n"),
        ("vi", ["1", "Lê Văn Tư", "(626) 555-0191", "k", "1", "ALL"], "k"),
        ("en", ["2", "1", "ALL"], "no"),
        ("vi", ["3", "1", "2", "(626) 555-0192"], "không"),
        ("en", ["3", "1", "4", "1"], "N"),
        ("en", ["4", "1", "1"], "n"),
        ("vi", ["5", "1", "1"], "khong"),
        ("en", ["5", "2", "1"], "n"),
    ],
)
def test_answering_no_at_the_read_back_changes_nothing(app: App, locale: str, steps: list[str], no: str) -> None:
    chat = verified_chat(app, locale, **SUNRISE)
    chat.run(*steps)
    assert chat.state.endswith(".confirm"), chat.last_text
    before = snapshot(app)
    reply = chat.say(no)
    assert ("OK, nothing was changed." if locale == "en" else "Dạ, không có gì thay đổi.") in reply
    assert chat.state == "contacts.menu" and snapshot(app) == before


# -- the write path trusts no id it did not check --------------------------------------------------


def forge(app: App, chat: Chat, **slots: Any) -> None:
    """Put ids into a session's slots, as a bug or a tampered row would."""
    with app.db.engine.begin() as conn:
        row = json.loads(
            conn.execute(select(ChatSession.slots).where(ChatSession.address == chat.address)).scalar_one()
        )
        row.update(slots)
        conn.execute(
            ChatSession.__table__.update().where(ChatSession.address == chat.address).values(slots=json.dumps(row))
        )


def ids(app: App, model: Any, column: Any, value: str) -> list[int]:
    with app.db.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(model.id).where(column == value))]


def test_service_accounts_of_another_customer_are_never_assigned(app: App) -> None:
    chat = verified_chat(app, "en", **SUNRISE)
    chat.run("2", "1", "1")  # Maria onto her own second account, read back
    [other] = ids(app, ServiceAccount, ServiceAccount.number, "3-001-1003")  # Phở Bolsa's account
    forge(app, chat, accounts=[str(other)])
    before = snapshot(app)
    chat.say("y")
    assert snapshot(app)["assignments"] == before["assignments"]


def test_contacts_of_another_customer_are_never_assigned(app: App) -> None:
    chat = verified_chat(app, "en", **SUNRISE)
    chat.run("2", "1", "1")  # Maria onto Sunrise's second account, read back
    [an] = ids(app, Contact, Contact.name, "Nguyễn Văn An")  # Phở Bolsa's contact
    forge(app, chat, contact=an)
    before = snapshot(app)
    chat.say("y")
    assert snapshot(app)["assignments"] == before["assignments"]


def test_contacts_of_another_customer_are_never_edited_or_unassigned(app: App) -> None:
    chat = verified_chat(app, "en", **SUNRISE)
    chat.run("3", "1", "1", "Someone Else")
    [an] = ids(app, Contact, Contact.name, "Nguyễn Văn An")  # Phở Bolsa's contact
    forge(app, chat, contact=an, old="Nguyễn Văn An")
    before = snapshot(app)
    assert "That contact is no longer on file" in chat.say("y")
    chat.run("4", "1", "1")
    forge(app, chat, contact=an)
    chat.say("y")
    assert snapshot(app) == before


def test_a_state_that_needs_verification_is_never_run_without_it(app: App) -> None:
    chat = verified_chat(app, "en", **SUNRISE)
    chat.run("3", "1", "2", "(626) 555-0165")
    with app.db.engine.begin() as conn:  # a session row in a verified state, but no customer
        conn.execute(
            ChatSession.__table__.update()
            .where(ChatSession.address == chat.address)
            .values(customer_id=None, verified_at=None)
        )
    before = snapshot(app)
    reply = chat.say("y")
    assert "Please verify your account first." in reply and chat.state == "verify.account"
    assert snapshot(app) == before


# -- numbers: duplicates, regions, limits ------------------------------------------------------------


def test_a_number_saved_by_another_phone_meanwhile_gets_the_duplicate_answer(app: App) -> None:
    slow = verified_chat(app, "en", address="+17145550205", **SUNRISE)
    slow.run("1", "Anh Tran", "(626) 555-0177", "n", "2", "1")
    fast = verified_chat(app, "en", address="+17145550206", **SUNRISE)
    fast.run("1", "Binh Tran", "(626) 555-0177", "n", "2", "2", "y")
    reply = slow.say("y")
    assert "(626) 555-0177 is already the number of Binh Tran." in reply
    assert slow.state == "add.phone" and "Mobile number of Anh Tran?" in reply  # what was typed is kept
    assert contact(app, "Anh Tran") is None
    slow.run("(626) 555-0179", "n", "2", "1")
    assert "Saved. Anh Tran" in slow.say("y")  # another number, and everything else as typed


def test_an_edit_to_a_number_saved_meanwhile_gets_the_duplicate_answer(app: App) -> None:
    slow = at_edit_confirm(app, "+17145550207", "2", "(626) 555-0178")
    fast = verified_chat(app, "en", address="+17145550208", **SUNRISE)
    fast.run("1", "Binh Tran", "(626) 555-0178", "n", "2", "2", "y")
    reply = slow.say("y")
    assert "(626) 555-0178 is already the number of Binh Tran." in reply and slow.state == "edit.phone"
    assert contact(app, "Maria Lopez").phone == "+16265550100"


@pytest.mark.parametrize(
    ("locale", "number", "words"),
    [
        ("en", "+1 876 210 1234", "Alerts can go only to mobile numbers in United States and Canada."),
        ("vi", "+1 268 464 1234", "Cảnh báo chỉ gửi được đến số di động tại Hoa Kỳ và Canada."),
        ("en", "+44 7911 123456", "Alerts can go only to mobile numbers in United States and Canada."),
        ("vi", "+84 912 345 678", "Cảnh báo chỉ gửi được đến số di động tại Hoa Kỳ và Canada."),
    ],
)
def test_numbers_abroad_are_refused_in_the_customers_language(app: App, locale: str, number: str, words: str) -> None:
    chat = verified_chat(app, locale)
    reply = chat.run("1", "Anh Tran", number)
    assert words in reply and chat.state == "add.phone"


@pytest.fixture
def tight(request: pytest.FixtureRequest, database_url: str, clock: Clock) -> Any:
    """The demo data under small limits: 3 contacts (``contacts`` mark) or 2 new numbers an hour."""
    limits = (
        {"max_contacts_per_customer": 3}
        if request.node.get_closest_marker("contacts")
        else {"notices_per_customer_per_hour": 2}
    )
    application = build(make_settings(database_url, **limits), clock=clock, migrate_db=False)
    import_file(application.db, application.hasher, DEMO)
    yield application
    application.close()


def add(app: App, name: str, phone: str, address: str = "+17145550123") -> Chat:
    chat = verified_chat(app, "en", address=address, **SUNRISE)
    chat.run("1", name, phone, "n", "2", "1", "y")
    return chat


@pytest.mark.contacts
def test_a_customer_cannot_have_more_contacts_than_the_limit(tight: App) -> None:
    add(tight, "Anh Tran", "(626) 555-0181", address="+17145550215")
    assert "Saved." in add(tight, "Binh Tran", "(626) 555-0182", address="+17145550216").last_text  # Maria + 2
    chat = verified_chat(tight, "en", address="+17145550209", **SUNRISE)
    reply = chat.say("1")
    assert "There are already 3 contacts, the most allowed. Edit a contact instead, or call 1-800-990-7788." in reply
    assert chat.state == "contacts.menu"


@pytest.mark.contacts
def test_the_contact_limit_holds_for_a_read_back_confirmed_after_the_limit_was_reached(tight: App) -> None:
    slow = verified_chat(tight, "en", address="+17145550210", **SUNRISE)
    slow.run("1", "Anh Tran", "(626) 555-0181", "n", "2", "1")
    add(tight, "Binh Tran", "(626) 555-0182", address="+17145550211")
    add(tight, "Chi Tran", "(626) 555-0183", address="+17145550212")
    assert "the most allowed" in slow.say("y") and contact(tight, "Anh Tran") is None


def test_new_numbers_texted_per_hour_are_limited_edits_included(tight: App, clock: Clock) -> None:
    add(tight, "Anh Tran", "(626) 555-0181")  # notice 1
    chat = verified_chat(tight, "en", address="+17145550213", **SUNRISE)
    chat.run("3", "1", "2", "(626) 555-0184", "y")  # Anh's new number: notice 2
    assert "updated" in chat.last_text
    chat.run("3", "2", "2", "(626) 555-0185")
    reply = chat.say("y")
    assert "Too many new numbers in the last hour. Nothing was saved." in reply
    assert contact(tight, "Maria Lopez").phone == "+16265550100"
    clock.advance(minutes=61)
    chat = verified_chat(tight, "en", address="+17145550214", **SUNRISE)
    assert "updated" in chat.run("3", "2", "2", "(626) 555-0185", "y")


def test_a_changed_number_gets_the_opt_in_notice_in_the_contacts_language(app: App) -> None:
    chat = verified_chat(app, "en", **SUNRISE)
    chat.run("3", "1", "2", "(626) 555-0186", "y")
    with app.db.engine.connect() as conn:
        notices = list(conn.execute(select(OutboundMessage.__table__)))
    assert [(n.address, n.kind, n.locale, n.customer_id is not None) for n in notices] == [
        ("+16265550186", "optin_notice", "en", True)
    ]
