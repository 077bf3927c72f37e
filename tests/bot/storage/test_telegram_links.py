"""Telegram links: which chat a contact's alerts go to, changed once per update, audited per customer."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select

from bot.app import App
from bot.storage import telegram_links
from bot.storage.models import AuditEntry, Contact, CustomerAccount
from tests.conftest import verified_chat

NOW = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)


def links(app: App) -> dict[str, int | None]:
    rows = app.db.read(lambda conn: conn.execute(select(Contact.name, Contact.telegram_chat_id)).all())
    return {name: chat for name, chat in rows}


def test_one_number_on_two_customers_links_both_and_audits_each_customer(app: App) -> None:
    def second_customer_has_an(conn: object) -> None:
        other = conn.execute(select(CustomerAccount.id).where(CustomerAccount.number == "700000002")).scalar_one()  # type: ignore[attr-defined]
        conn.execute(  # type: ignore[attr-defined]
            insert(Contact).values(
                customer_id=other,
                name="An (Sunrise)",
                phone="+17145550101",
                language="vi",
                created_at=NOW,
                updated_at=NOW,
            )
        )

    app.db.run(second_customer_has_an)
    assert app.db.run(lambda conn: telegram_links.link(conn, 555, "+17145550101", NOW)) == 2
    assert links(app)["Nguyễn Văn An"] == 555 and links(app)["An (Sunrise)"] == 555
    audit = app.db.read(
        lambda conn: conn.execute(
            select(AuditEntry.action, AuditEntry.customer_id, AuditEntry.details).where(
                AuditEntry.channel == "telegram"
            )
        ).all()
    )
    assert sorted((a, d["contacts"]) for a, _c, d in audit) == [("telegram.link", 1), ("telegram.link", 1)]
    assert len({c for _a, c, _d in audit}) == 2
    assert app.db.read(lambda conn: telegram_links.linked_phone(conn, 555)) == "+17145550101"
    assert app.db.run(lambda conn: telegram_links.unlink(conn, 555, NOW)) == 2
    assert app.db.run(lambda conn: telegram_links.unlink(conn, 555, NOW)) == 0  # twice: nothing, no audit row
    actions = app.db.read(
        lambda conn: conn.execute(select(AuditEntry.action).where(AuditEntry.channel == "telegram")).scalars().all()
    )
    assert sorted(actions) == ["telegram.link", "telegram.link", "telegram.unlink", "telegram.unlink"]


def test_an_update_is_acted_on_once(app: App) -> None:
    assert app.db.run(lambda conn: telegram_links.once(conn, "901", NOW)) is True
    assert app.db.run(lambda conn: telegram_links.once(conn, "901", NOW)) is False


def test_a_contact_whose_number_is_edited_loses_its_link(app: App) -> None:
    app.db.run(lambda conn: telegram_links.link(conn, 777, "+17145550102", NOW))
    assert links(app)["Trần Thị Bích"] == 777
    chat = verified_chat(app)
    chat.run("3", "2", "2", "(714) 555-0199", "Y")  # edit Bích's mobile number
    assert "Saved" in chat.last_text, chat.last_text
    assert links(app)["Trần Thị Bích"] is None  # the new number never shared this chat
    chat.run("3", "2", "1", "Trần Thị Bích Ngọc", "Y")  # a new name keeps whatever link there is
    app.db.run(lambda conn: telegram_links.link(conn, 778, "+17145550199", NOW))
    chat.run("3", "2", "1", "Bích", "Y")
    assert links(app)["Bích"] == 778


def test_a_chat_that_shares_a_new_number_is_unlinked_from_the_old_one(app: App) -> None:
    """One Telegram account has one phone number: the person changed numbers."""
    app.db.run(lambda conn: telegram_links.link(conn, 888, "+17145550101", NOW))
    app.db.run(lambda conn: telegram_links.link(conn, 888, "+17145550102", NOW))
    assert links(app)["Nguyễn Văn An"] is None and links(app)["Trần Thị Bích"] == 888
    actions = app.db.read(
        lambda conn: (
            conn.execute(select(AuditEntry.action).where(AuditEntry.channel == "telegram").order_by(AuditEntry.id))
            .scalars()
            .all()
        )
    )
    assert actions == ["telegram.link", "telegram.unlink", "telegram.link"]
