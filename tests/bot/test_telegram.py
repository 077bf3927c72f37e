"""Telegram end to end: a person in the Telegram stand-in, python-telegram-bot polling it (through the
tests' repairing proxy), and our server with its real database, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import csv
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from bot.app import App, build
from bot.cis_csv import COLUMNS
from bot.importer import import_file
from bot.storage.models import AuditEntry, ChatSession, Contact, ContactAssignment, ServiceAccount
from bot.web import create_web
from tests.conftest import DEMO, TelegramPeers, make_settings
from tests.peers.telegram import STICKER, TOKEN, User
from tests.serving import PUBLIC, Phone, Server, environment, import_demo

WIDE = "700000030"  # a customer with 30 service accounts (imported by the fixture)


@dataclass
class Running:
    app: App
    peers: TelegramPeers

    def user(self, language_code: str = "vi") -> User:
        return User(self.peers.standin, self.peers.observed, language_code=language_code)

    def rows(self, statement: Any) -> list[Any]:
        return self.app.db.read(lambda conn: list(conn.execute(statement)))


def _wide_customer(path: Path) -> Path:
    """30 service accounts of one customer, one contact on the first."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for i in range(1, 31):
            contact = ["Phạm Văn Đức", "(714) 555-0130", "", "vi"] if i == 1 else ["", "", "", ""]
            writer.writerow(
                [
                    WIDE,
                    "246810",
                    "Chợ Lớn Market",
                    f"3-030-{i:04d}",
                    f"{100 + i} Bolsa Ave Westminster",
                    "A012",
                    "40",
                    *contact,
                ]
            )
    return path


@pytest.fixture
def running(database_url: str, telegram_api: TelegramPeers, tmp_path: Path) -> Iterator[Running]:
    settings = make_settings(
        database_url, telegram_token=TOKEN, telegram_api_url=telegram_api.api, telegram_polling=True
    )
    app = build(settings, migrate_db=False)
    import_file(app.db, app.hasher, DEMO)
    import_file(app.db, app.hasher, _wide_customer(tmp_path / "wide.csv"))
    with TestClient(create_web(app)):
        yield Running(app, telegram_api)
    app.close()


def _contact(running: Running, name: str) -> tuple[Any, list[str]]:
    contact = running.rows(select(Contact).where(Contact.name == name))
    assert len(contact) == 1, contact
    numbers = running.rows(
        select(ServiceAccount.number)
        .join(ContactAssignment, ContactAssignment.service_account_id == ServiceAccount.id)
        .where(ContactAssignment.contact_id == contact[0].id)
        .order_by(ServiceAccount.number)
    )
    return contact[0], [row[0] for row in numbers]


def test_a_vietnamese_customer_verifies_and_adds_a_contact_to_two_accounts_by_buttons(running: Running) -> None:
    u = running.user("vi")
    u.say("/start", answers=2)
    menu, offer = u.shown[-2], u.shown[-1]
    assert "Trạm Làm Mát" in " ".join(u.buttons(menu))  # Vietnamese from the app's language, no question
    assert offer.keyboard is not None and offer.keyboard["keyboard"][0][0]["request_contact"] is True
    assert "Số Tài Khoản Khách Hàng" in u.press("Người liên lạc", menu)
    assert "mã số truy cập" in u.say("700000001")
    code_message_id = max(m.message_id for m in u.shown) + 1  # the person's next message
    verified = u.say("482913")
    assert "Đã xác minh: Phở Bolsa LLC." in verified
    assert "đã được xóa" in verified  # the access code is not left in the chat
    deleted = [p for name, p in running.peers.observed.calls if name == "deleteMessage" and p["chat_id"] == u.chat_id]
    assert [int(p["message_id"]) for p in deleted] == [code_message_id]
    assert "họ tên" in u.press("Thêm người mới")
    assert "Email" in u.say("Lê Thị Cúc 714 555 0177")
    u.say("K")
    assert u.buttons() == ["1. Tiếng Việt", "2. Tiếng Anh"]
    u.press("Tiếng Việt")
    assert u.buttons()[:3] == [
        "⬜ 1. *1001 9200 Bolsa Ave",
        "⬜ 2. *1002 15400 Brookhurst St",
        "⬜ 3. *1003 10130 Westminster Ave",
    ]
    u.press("1. *1001")
    u.press("3. *1003")
    u.press("3. *1003")  # changed her mind
    u.press("2. *1002")
    assert u.buttons() == [
        "✅ 1. *1001 9200 Bolsa Ave",
        "✅ 2. *1002 15400 Brookhurst St",
        "⬜ 3. *1003 10130 Westminster Ave",
        "TẤT CẢ",
        "Xong (2)",
    ]
    readback = u.press("Xong")
    assert "*1001, *1002" in readback and u.buttons() == ["Có", "Không"]
    assert "Đã lưu" in u.press("Có")
    contact, accounts = _contact(running, "Lê Thị Cúc")
    assert (contact.phone, contact.language, accounts) == ("+17145550177", "vi", ["3-001-1001", "3-001-1002"])
    audit = running.rows(select(AuditEntry.channel, AuditEntry.address).where(AuditEntry.action == "contact.add"))
    assert audit == [("telegram", str(u.chat_id))]


def test_an_english_customer_does_it_all_by_typing(running: Running) -> None:
    u = running.user("en-US")
    assert "Main menu" in u.say("hi")
    assert "Customer Account Number" in u.say("1")
    u.say("700000002")
    assert "Verified" in u.say("731562")
    assert "name" in u.say("1")
    u.say("Diego Ramos")
    u.say("(213) 555-0190")
    u.say("diego@example.com")
    u.say("2")
    assert u.screen.buttons  # the accounts as buttons; typing still works
    readback = u.say("all")
    assert "Diego Ramos" in readback and u.buttons() == ["Yes", "No"]
    mark = running.peers.observed.mark()
    saved = u.say("yes")
    assert "Saved" in saved, running.peers.observed.since(mark)
    contact, accounts = _contact(running, "Diego Ramos")
    assert contact.email == "diego@example.com" and len(accounts) >= 1


def test_the_language_switches_in_the_middle_of_a_dialog(running: Running) -> None:
    u = running.user("vi")
    u.say("xin chào")
    u.say("1")
    u.say("700000001")
    u.say("482913")
    assert "họ tên" in u.press("Thêm người mới")
    chooser = u.say("/language")
    assert "ngôn ngữ" in chooser.lower() and u.buttons() == ["Tiếng Việt", "English"]
    switched = u.press("English")
    assert "Switched to English." in switched and "name" in switched  # the same question, now in English
    assert "email" in u.say("Lê Thị Cúc 714 555 0177").lower()
    session = running.rows(select(ChatSession.locale).where(ChatSession.address == str(u.chat_id)))
    assert session == [("en",)]


def test_thirty_service_accounts_are_picked_across_pages(running: Running) -> None:
    u = running.user("vi")
    u.say("/start", answers=2)
    u.press("Người liên lạc", u.shown[-2])
    u.say(WIDE)
    u.say("246810")
    u.press("Thêm người mới")
    u.say("Võ Thị Hoa 714 555 0131")
    u.say("K")
    u.press("Tiếng Việt")
    first = u.buttons()
    assert first[0] == "⬜ 1. *0001 101 Bolsa Ave" and "1/4" in first and "Trang sau ▶" in first
    assert len([b for b in first if b.startswith("⬜")]) == 8
    u.press("2. *0002")
    u.press("Trang sau ▶")
    u.press("12. *0012")
    u.press("Trang sau ▶")
    u.press("Trang sau ▶")
    last = u.buttons()
    assert "⬜ 30. *0030 130 Bolsa Ave" in last and "4/4" in last and "Trang sau ▶" not in last
    u.press("30. *0030")
    u.press("◀ Trang trước")
    assert "✅ 12. *0012 112 Bolsa Ave" not in u.buttons()  # page 3: rows 17 to 24
    assert "Xong (3)" in u.buttons()
    readback = u.press("Xong")
    assert "*0002, *0012, *0030" in readback
    u.press("Có")
    _, accounts = _contact(running, "Võ Thị Hoa")
    assert accounts == ["3-030-0002", "3-030-0012", "3-030-0030"]


def test_a_button_of_a_question_that_has_passed_does_nothing(running: Running) -> None:
    u = running.user("vi")
    u.say("/start", answers=2)
    menu = copy.deepcopy(u.shown[-2])  # as it was shown: pressing edits the message in place
    u.press("Người liên lạc", menu)
    u.say("700000001")
    u.say("482913")
    contacts_menu = copy.deepcopy(u.screen)
    u.press("Thêm người mới")
    before = running.rows(select(ChatSession.state, ChatSession.slots).where(ChatSession.address == str(u.chat_id)))
    # the first menu was edited in place into the account question, and then passed: its old button
    # pressed now, and the contacts menu's too, are answered as such and act on nothing
    u.press_data(menu.buttons[0][0]["callback_data"], menu)
    notices = [p.get("text") for name, p in running.peers.observed.calls if name == "answerCallbackQuery"]
    assert "câu hỏi trước" in (notices[-1] or "")
    u.press("Xóa khỏi tài khoản", contacts_menu)
    assert "câu hỏi trước" in (
        [p.get("text") for n, p in running.peers.observed.calls if n == "answerCallbackQuery"][-1] or ""
    )
    after = running.rows(select(ChatSession.state, ChatSession.slots).where(ChatSession.address == str(u.chat_id)))
    assert after == before


@pytest.mark.parametrize(
    "data",
    [
        "xxxx:c0",  # a made-up token
        "AAAAAAAA:t999",  # a row that is not there
        "customer:700000002",  # nothing we would send
        "' OR 1=1 --",
        "lang:xx",
    ],
)
def test_forged_button_data_acts_on_nothing(running: Running, data: str) -> None:
    u = running.user("vi")
    u.say("/start", answers=2)
    u.say("700000001")
    u.say("482913")
    before = running.rows(select(ChatSession.state, ChatSession.slots).where(ChatSession.address == str(u.chat_id)))
    u.press_data(data, u.screen)
    after = running.rows(select(ChatSession.state, ChatSession.slots).where(ChatSession.address == str(u.chat_id)))
    assert after == before
    assert running.rows(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "contact.add")) == [
        (0,)
    ]


def test_sharing_ones_own_phone_links_the_contacts_and_unlinking_undoes_it(running: Running) -> None:
    u = running.user("vi")
    u.say("/start", answers=2)
    assert "chính mình" in u.share_phone("+17145550101", own=False)  # someone else's card
    assert running.rows(select(Contact.telegram_chat_id).where(Contact.phone == "+17145550101")) == [(None,)]
    linked = u.share_phone("17145550101")  # as Telegram sends it: no "+"
    assert "(714) 555-0101" in linked and u.buttons() == ["Tắt cảnh báo qua Telegram"]
    assert running.rows(select(Contact.telegram_chat_id).where(Contact.phone == "+17145550101")) == [(u.chat_id,)]
    audit = running.rows(select(AuditEntry.action, AuditEntry.customer_id).where(AuditEntry.action.like("telegram.%")))
    assert [a for a, _ in audit] == ["telegram.link"]
    assert "đã được đăng ký" in u.say("/start", answers=2)  # /start tells where the alerts go
    assert "không còn" in u.press("Tắt cảnh báo")
    assert running.rows(select(Contact.telegram_chat_id).where(Contact.phone == "+17145550101")) == [(None,)]
    actions = running.rows(
        select(AuditEntry.action).where(AuditEntry.action.like("telegram.%")).order_by(AuditEntry.id)
    )
    assert [a for (a,) in actions] == ["telegram.link", "telegram.unlink"]


def test_a_number_that_is_no_contact_links_nothing(running: Running) -> None:
    u = running.user("en")
    u.say("/start", answers=2)
    answer = u.share_phone("+17145550999")
    assert "not the number of any alert contact" in answer and "1-800-990-7788" in answer
    assert running.rows(select(func.count()).select_from(Contact).where(Contact.telegram_chat_id.is_not(None))) == [
        (0,)
    ]


def test_a_sticker_gets_a_short_helpful_reply_and_the_question_again(running: Running) -> None:
    u = running.user("en")
    u.say("/menu")
    mark = running.peers.observed.mark()
    sticker = STICKER
    u.client.post(f"{running.peers.standin}/sendMessage", json=u._message(sticker=sticker)).raise_for_status()
    u._wait(mark, lambda calls: any(name == "sendMessage" for name, _ in calls))
    assert "only typed messages" in u.screen.text and "Main menu" in u.screen.text


# -- outagebot serve, as an operator starts it ---------------------------------------------------------


def _menu_update(language: str | None = None) -> dict[str, Any]:
    """/menu from chat 42, as Telegram posts it."""
    person = {"id": 42, "is_bot": False, "first_name": "An", **({"language_code": language} if language else {})}
    message = {"message_id": 1, "date": 0, "chat": {"id": 42, "type": "private"}, "from": person, "text": "/menu"}
    return {"update_id": 1, "message": message}


def test_serve_sets_the_webhook_with_its_secret_and_the_commands_in_both_languages(
    tmp_path: Path, telegram_api: TelegramPeers
) -> None:
    env = environment(
        f"sqlite:///{tmp_path}/serve.db",
        OUTAGEBOT_TELEGRAM_TOKEN=TOKEN,
        OUTAGEBOT_TELEGRAM_SECRET="serve-Secret_token_1",
        OUTAGEBOT_TELEGRAM_API_URL=telegram_api.api,
    )
    import_demo(env)
    mark = telegram_api.observed.mark()
    with Server(env) as server:
        calls = telegram_api.observed.since(mark)
        [webhook] = [params for name, params in calls if name == "setWebhook"]
        assert webhook["url"] == f"{PUBLIC}/telegram/webhook" and webhook["secret_token"] == "serve-Secret_token_1"
        assert webhook["allowed_updates"] == ["message", "edited_message", "callback_query", "my_chat_member"]
        menus = {params.get("language_code"): params["commands"] for name, params in calls if name == "setMyCommands"}
        assert set(menus) == {None, "vi"}
        assert [c["command"] for c in menus["vi"]] == ["start", "menu", "help", "language", "cancel", "status"]
        assert menus["vi"][1]["description"] == "Menu chính" and menus[None][1]["description"] == "Main menu"
        update = _menu_update("vi")
        headers = {"X-Telegram-Bot-Api-Secret-Token": "serve-Secret_token_1"}
        answer = server.client.post("/telegram/webhook", json=update, headers=headers)
        assert answer.json()["text"].startswith("Menu chính")
        assert server.client.post("/telegram/webhook", json=update).status_code == 403
    assert f"Telegram on: webhook {PUBLIC}/telegram/webhook" in server.stderr
    assert "SMS webhooks on" in server.stderr


def test_serve_polling_answers_without_a_public_address(tmp_path: Path, telegram_api: TelegramPeers) -> None:
    env = environment(
        f"sqlite:///{tmp_path}/poll.db", OUTAGEBOT_TELEGRAM_TOKEN=TOKEN, OUTAGEBOT_TELEGRAM_API_URL=telegram_api.api
    )
    import_demo(env)
    mark = telegram_api.observed.mark()
    with Server(env, args=("--polling",)):
        assert "deleteWebhook" in [name for name, _ in telegram_api.observed.since(mark)]
        person = User(telegram_api.standin, telegram_api.observed, language_code="en")
        assert person.say("/menu").startswith("Main menu")
    person.close()


def test_serve_keeps_sms_up_while_telegram_cannot_be_reached(tmp_path: Path) -> None:
    """The Bot API down (or the token refused) at start: SMS is served, Telegram updates get 503 (so
    that Telegram delivers them again) until the start, tried again every few seconds, succeeds."""
    env = environment(
        f"sqlite:///{tmp_path}/down.db",
        OUTAGEBOT_TELEGRAM_TOKEN=TOKEN,
        OUTAGEBOT_TELEGRAM_SECRET="down-Secret_token_1",
        OUTAGEBOT_TELEGRAM_API_URL="http://127.0.0.1:9",
    )
    import_demo(env)
    with Server(env) as server:
        update = _menu_update()
        headers = {"X-Telegram-Bot-Api-Secret-Token": "down-Secret_token_1"}
        assert server.client.post("/telegram/webhook", json=update, headers=headers).status_code == 503
        assert "Main menu" in Phone(server.base, "+17145550188").run("", "2")  # SMS still answers
        assert server.healthz()[0] == 200
    assert "Telegram: getMe" in server.stderr and "Telegram could not start" in server.stderr


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--port", "1", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_a_telegram_it_could_not_run(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/no.db", OUTAGEBOT_TELEGRAM_TOKEN=TOKEN)
    env.pop("OUTAGEBOT_PUBLIC_URL")
    refused = _serve(env)
    assert refused.returncode == 4
    assert "Telegram's webhook needs OUTAGEBOT_PUBLIC_URL and OUTAGEBOT_TELEGRAM_SECRET" in refused.stderr
    bad_secret = _serve({**env, "OUTAGEBOT_TELEGRAM_SECRET": "no spaces allowed"})
    assert bad_secret.returncode == 4 and "OUTAGEBOT_TELEGRAM_SECRET" in bad_secret.stderr + bad_secret.stdout
    postgres = {**env, "OUTAGEBOT_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    two = _serve(postgres, "--polling", "--workers", "2")
    assert two.returncode == 2 and "--polling needs one worker" in two.stderr
    off = {k: v for k, v in env.items() if k != "OUTAGEBOT_TELEGRAM_TOKEN"}
    assert "Telegram is off" in _serve(off).stderr


def test_status_in_a_linked_chat_lists_the_contacts_outages_and_join_subscribes_the_chat(running: Running) -> None:
    from datetime import UTC, datetime, timedelta

    from bot.storage.models import Subscription
    from tests.bot.test_status import add_alert

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    add_alert(running.app, "advance", ["A012"], start, 3)
    u = running.user("en")
    u.say("/start", answers=2)
    u.share_phone("+17145550101")
    shown = u.say("/status")
    assert shown == "Rotating outages in your groups:"  # the outages are its buttons
    assert [b for b in u.buttons() if "A012 planned" in b and "*1001" in b] != [], u.buttons()
    assert "in this chat? Y/N" in u.say("join b021")
    assert "Saved. Alerts for group B021 will come in this chat." in u.press("Yes")
    rows = running.rows(select(Subscription.channel, Subscription.address, Subscription.outage_group))
    assert rows == [("telegram", str(u.chat_id), "B021")]
