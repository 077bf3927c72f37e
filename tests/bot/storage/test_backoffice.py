"""What support staff see and do: personal data masked, every action audited with the operator's name."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.app import App
from bot.storage import optouts
from bot.storage.backoffice import audit_entries, customer_overview, opt_outs, outbox, unlock
from bot.storage.models import AuditEntry, CustomerAccount
from bot.storage.outbound import OPT_IN_NOTICE
from tests.conftest import Chat, verified_chat

WRONG = ("1", "700000002", "000000")


def lock_out(app: App, address: str = "+17145550501") -> Chat:
    chat = Chat(app, address=address)
    chat.run("", "2")
    for _ in range(app.conversation.policy.account_failures):
        chat.run(*WRONG)
    return chat


def test_the_overview_shows_accounts_contacts_and_lockout_with_numbers_masked(app: App) -> None:
    chat = verified_chat(app, "en", account="700000002", code="731562", address="+17145550500")
    chat.run("1", "Anh Tran", "(626) 555-0190", "anh@sunrise.example", "2", "1", "y")
    with app.db.engine.connect() as conn:
        seen = customer_overview(conn, "700000002", app.conversation.clock(), ZoneInfo("America/Los_Angeles"))
    assert seen is not None
    assert seen["customer_account"] == "700000002" and seen["name"] == "Sunrise Bakery Inc."
    assert seen["locked_until"] is None and seen["signed_in_sessions"] == 1
    assert [a["number"] for a in seen["service_accounts"]] == ["3-002-2001", "3-002-2002"]
    anh = next(c for c in seen["contacts"] if c["name"] == "Anh Tran")
    assert anh["phone"] == "********0190" and anh["email"] == "a***@sunrise.example"
    assert anh["service_accounts"] == ["3-002-2001"] and anh["language"] == "en"
    assert seen["last_seen"].endswith(("-08:00", "-07:00"))  # in the utility's zone
    text = json.dumps(seen)
    assert "5550190" not in text and "anh@" not in text


def test_unknown_accounts_are_none(app: App) -> None:
    with app.db.engine.begin() as conn:
        now = app.conversation.clock()
        assert customer_overview(conn, "799999999", now) is None
        assert unlock(conn, "799999999", "lan", now) is None
        assert audit_entries(conn, "799999999") is None


def test_unlock_clears_the_lockout_and_is_audited_with_the_operator(app: App) -> None:
    chat = lock_out(app)
    now = app.conversation.clock()
    with app.db.engine.connect() as conn:
        seen = customer_overview(conn, "700000002", now)
        assert seen is not None and seen["locked_until"] is not None
    with app.db.engine.begin() as conn:
        assert unlock(conn, "700000002", "lan", now) is True
    with app.db.engine.begin() as conn:
        assert unlock(conn, "700000002", "lan", now) is False  # no longer locked
        row = conn.execute(
            select(CustomerAccount.failed_attempts, CustomerAccount.locked_until).where(
                CustomerAccount.number == "700000002"
            )
        ).one()
        entries = conn.execute(
            select(AuditEntry.channel, AuditEntry.address, AuditEntry.action).where(
                AuditEntry.action == "customer.unlock"
            )
        ).all()
    assert tuple(row) == (0, None)
    assert [tuple(e) for e in entries] == [("operator", "lan", "customer.unlock")] * 2
    assert "Verified" in chat.run("1", "700000002", "731562")  # the right code works again at once


def test_the_audit_log_masks_numbers_and_narrows_by_customer_and_time(app: App) -> None:
    chat = verified_chat(app, "en", account="700000002", code="731562", address="+17145550502")
    chat.run("3", "1", "2", "(626) 555-0123", "y")  # Maria's number changes: old and new are in the details
    lock_out(app, "+17145550503")
    with app.db.engine.connect() as conn:
        everything = audit_entries(conn)
        sunrise = audit_entries(conn, "700000002")
        later = audit_entries(conn, since=app.conversation.clock() + timedelta(minutes=1))
    # the dialog's rows carry the test's clock; the import's (the demo data, loaded first) the real time
    assert everything is not None and sunrise is not None and later is not None
    assert [e for e in later if e["channel"] != "import"] == []
    assert {e["customer_account"] for e in sunrise} == {"700000002"}
    edit = next(e for e in sunrise if e["action"] == "contact.edit")
    text = json.dumps(everything)
    assert "5550123" not in text and "5550100" not in text and "5550502" not in text
    assert edit["by"] == "********0502" and "0123" in json.dumps(edit["details"])
    assert [e["at"] for e in everything] == sorted((e["at"] for e in everything), reverse=True)


def test_opt_outs_and_the_outbox_are_listed_masked(app: App) -> None:
    chat = verified_chat(app, "en", account="700000002", code="731562", address="+17145550504")
    chat.run("1", "Anh Tran", "(626) 555-0190", "n", "2", "1", "y")  # queues the opt-in notice
    with app.db.engine.begin() as conn:
        optouts.opt_out(conn, "sms", "+16265550190", "STOP", app.conversation.clock(), provider_blocks=True)
        stopped, queued = opt_outs(conn), outbox(conn)
        assert outbox(conn, "failed") == []
    assert stopped == [
        {
            "channel": "sms",
            "address": "********0190",
            "keyword": "STOP",
            "at": stopped[0]["at"],
            "provider_blocks": True,
            "reminded": None,
        }
    ]
    assert len(queued) == 1 and queued[0]["address"] == "********0190" and queued[0]["status"] == "pending"
    assert queued[0]["kind"] == OPT_IN_NOTICE and queued[0]["next_attempt"] is not None
