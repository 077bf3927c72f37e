"""An outsider's attacks on the Telegram channel: each test here failed when it was written.

Updates are posted to ``POST /telegram/webhook`` as Telegram would post them (the helpers of
``test_telegram_webhook``); the bot's answers go to the Telegram stand-in behind the tests' repairing
proxy. The database is real: SQLite (a second ``sqlite3`` connection holding the write lock plays "the
database is busy or away"), and a throwaway PostgreSQL server that a test stops.
"""

from __future__ import annotations

import csv
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from bot.app import App, build
from bot.config import Settings
from bot.importer import import_file
from bot.storage.models import Contact
from bot.web import create_web
from tests.bot.test_telegram_webhook import (
    CHATS,
    HEADER,
    SECRET,
    UPDATES,
    count,
    deliver,
    message,
    person,
)
from tests.conftest import DEMO, TelegramPeers, make_settings
from tests.peers.telegram import TOKEN

CODE_DELETED = "message with your access code was deleted"
PRESSES = iter(range(9_000_000, 10_000_000))


def _settings(database_url: str, peers: TelegramPeers) -> Settings:
    return make_settings(
        database_url,
        telegram_token=TOKEN,
        telegram_secret=SECRET,
        telegram_api_url=peers.api,
        public_url="https://bot.example.test",
        db_lock_timeout_seconds=0.5,  # a busy database is given up on quickly
    )


@pytest.fixture
def busy(database_url: str, telegram_api: TelegramPeers) -> Iterator[tuple[App, TestClient, Path]]:
    """The webhook on SQLite, and the database file, so that a test can hold its write lock."""
    if not database_url.startswith("sqlite"):
        pytest.skip("holds SQLite's write lock (a killed PostgreSQL connection has a test of its own)")
    app = build(_settings(database_url, telegram_api), migrate_db=False)
    import_file(app.db, app.hasher, DEMO)
    with TestClient(create_web(app), base_url="http://127.0.0.1:8080") as test_client:
        test_client.bot_api = telegram_api.api  # type: ignore[attr-defined]
        yield app, test_client, Path(database_url.removeprefix("sqlite:///"))
    app.close()


@pytest.fixture
def webhook_app(database_url: str, telegram_api: TelegramPeers) -> Iterator[App]:
    app = build(_settings(database_url, telegram_api), migrate_db=False)
    import_file(app.db, app.hasher, DEMO)
    yield app
    app.close()


@pytest.fixture
def webhook(webhook_app: App, telegram_api: TelegramPeers) -> Iterator[TestClient]:
    with TestClient(create_web(webhook_app), base_url="http://127.0.0.1:8080") as test_client:
        test_client.bot_api = telegram_api.api  # type: ignore[attr-defined]
        yield test_client


class WriteLock:
    """Another program (an import, a backup) holding SQLite's write lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> WriteLock:
        self.holder = sqlite3.connect(self.path, isolation_level=None)
        self.holder.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc: object) -> None:
        self.holder.execute("ROLLBACK")
        self.holder.close()


def say(test_client: TestClient, chat: int, text: str, language: str = "en") -> httpx.Response:
    update = message(chat, text=text)
    update["message"]["from"]["language_code"] = language
    if text.startswith("/"):
        update["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return deliver(test_client, update)


def press(chat: int, data: str, message_id: int, language: str = "en") -> dict[str, Any]:
    return {
        "update_id": next(UPDATES),
        "callback_query": {
            "id": str(next(PRESSES)),
            "from": person(chat, language),
            "chat_instance": "1",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat, "type": "private", "first_name": "An"},
                "text": "…",
            },
        },
    }


def share(chat: int, phone: str = "17145550101") -> dict[str, Any]:
    return message(chat, contact={"phone_number": phone, "first_name": "An", "user_id": chat})


def blocked(chat: int) -> dict[str, Any]:
    bot = {"id": 1, "is_bot": True, "first_name": "Bot"}
    return {
        "update_id": next(UPDATES),
        "my_chat_member": {
            "chat": {"id": chat, "type": "private", "first_name": "An"},
            "from": person(chat),
            "date": int(time.time()),
            "old_chat_member": {"status": "member", "user": bot},
            "new_chat_member": {"status": "kicked", "user": bot, "until_date": 0},
        },
    }


def linked(app: App, chat: int) -> int:
    return count(app, select(func.count()).select_from(Contact).where(Contact.telegram_chat_id == chat))


def calls(peers: TelegramPeers, mark: int, chat: int) -> list[tuple[str, dict[str, Any]]]:
    return [(name, p) for name, p in peers.observed.since(mark) if str(p.get("chat_id")) == str(chat)]


def at_the_code_question(test_client: TestClient, chat: int) -> None:
    say(test_client, chat, "/menu")
    say(test_client, chat, "1")
    assert "access code" in say(test_client, chat, "700000001").json()["text"]


# -- the database away during a Telegram update that is not a dialog turn -------------------------


@pytest.mark.parametrize("kind", ["share my phone", "turn off alerts here", "blocked the bot"])
def test_a_link_change_the_database_could_not_take_is_asked_for_again_not_dropped(
    busy: tuple[App, TestClient, Path], telegram_api: TelegramPeers, kind: str
) -> None:
    """README/architecture: "Telegram gets its 200 only once the turn is committed, so a crash means
    Telegram sends the update again." A phone share, an unlink or a block that meets a busy database
    raises out of the handler into PTB's error handler, the webhook answers 200 with nothing, Telegram
    never sends it again: the link (or the unlink, so alerts keep going to a chat that blocked the bot)
    is lost, and the person gets no answer."""
    app, test_client, path = busy
    chat, mark = next(CHATS), telegram_api.observed.mark()
    if kind == "share my phone":
        update, after = share(chat), 1
    else:
        assert deliver(test_client, share(chat)).status_code == 200 and linked(app, chat) == 1
        mark = telegram_api.observed.mark()
        update = press(chat, "unlink", 1) if kind == "turn off alerts here" else blocked(chat)
        after = 0
    with WriteLock(path):
        response = test_client.post("/telegram/webhook", json=update, headers={HEADER: SECRET})
    nothing_said = not response.content and not calls(telegram_api, mark, chat)
    assert not (response.status_code == 200 and nothing_said), "taken (200), told nothing, never sent again"
    assert response.status_code >= 500  # so that Telegram delivers it again
    assert deliver(test_client, update).status_code == 200  # Telegram's next attempt
    assert linked(app, chat) == after


@pytest.mark.postgres
def test_a_phone_shared_after_a_connection_was_killed_is_linked(telegram_api: TelegramPeers) -> None:
    """An idle-connection killer or a failover cuts the pooled connections between two updates. A
    dialog turn runs again on a new connection and the customer never knows (test_retries); a phone
    share raises OperationalError (AdminShutdown) into PTB's error handler: 200, no link, no answer,
    and Telegram never sends it again."""
    from tests.conftest import PG_CTL, need_postgres
    from tests.pg import ThrowawayPostgres

    need_postgres()
    assert PG_CTL is not None
    server = ThrowawayPostgres(PG_CTL).start()  # its own server: this test kills its connections
    try:
        app = build(_settings(server.create_database("tg_killed"), telegram_api))
        import_file(app.db, app.hasher, DEMO)
        with TestClient(create_web(app), base_url="http://127.0.0.1:8080") as test_client:
            test_client.bot_api = telegram_api.api  # type: ignore[attr-defined]
            chat = next(CHATS)
            assert deliver(test_client, message(chat, text="hello")).status_code == 200
            assert server.terminate_backends("tg_killed") >= 1
            mark = telegram_api.observed.mark()
            response = deliver(test_client, share(chat))
            assert response.status_code == 200
            assert linked(app, chat) == 1, "the phone share was lost to a killed connection"
            assert calls(telegram_api, mark, chat), "and nobody was told"
        app.close()
    finally:
        server.close()


# -- the access code's message ------------------------------------------------------------------


def test_the_access_code_is_deleted_even_when_the_turn_fails(
    busy: tuple[App, TestClient, Path], telegram_api: TelegramPeers
) -> None:
    """The code was typed into the chat whether or not the database took the turn: a failed turn (the
    apology) leaves it there, unmentioned, for anyone who later sees the phone."""
    _app, test_client, path = busy
    chat = next(CHATS)
    at_the_code_question(test_client, chat)
    update = message(chat, text="482913")
    mark = telegram_api.observed.mark()
    with WriteLock(path):
        response = deliver(test_client, update)
    assert "Sorry, something went wrong" in response.json()["text"]
    deleted = [p for name, p in calls(telegram_api, mark, chat) if name == "deleteMessage"]
    asked = "delete the message with your access code" in response.json()["text"]
    assert asked or [int(p["message_id"]) for p in deleted] == [update["message"]["message_id"]]


def test_a_language_button_at_the_code_question_deletes_nothing(
    webhook: TestClient, telegram_api: TelegramPeers
) -> None:
    """/language while the access code is asked, then Tiếng Việt: the press is a turn without ``press``
    (LANGUAGE_PRESSES), so it counts as the answer to a secret question. The bot deletes its own
    language message (the pressed one), says the access code was deleted, and then edits the message it
    has just deleted."""
    chat = next(CHATS)
    at_the_code_question(webhook, chat)
    chooser = say(webhook, chat, "/language")
    assert chooser.json()["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "lang:vi"
    shown = telegram_api.observed.chats[chat][-1]
    mark = telegram_api.observed.mark()
    deliver(webhook, press(chat, "lang:vi", shown.message_id))
    made = calls(telegram_api, mark, chat)
    assert [p for name, p in made if name == "deleteMessage"] == []
    texts = [str(p.get("text", "")) for name, p in made if name in ("editMessageText", "sendMessage")]
    assert texts and not any("mã số truy cập của quý khách đã được xóa" in t for t in texts), texts


@pytest.mark.parametrize("command", ["/cancel", "/help"])
def test_a_command_at_the_code_question_is_not_called_the_access_code(
    webhook: TestClient, telegram_api: TelegramPeers, command: str
) -> None:
    """Anything but a button at the secret question is treated as the code: /cancel is deleted and the
    reply says "the message with your access code was deleted", which teaches people to trust a claim
    that is not true."""
    chat = next(CHATS)
    at_the_code_question(webhook, chat)
    reply = say(webhook, chat, command).json()["text"]
    assert CODE_DELETED not in reply, reply


# -- the CIS renumbering a linked contact ----------------------------------------------------------


def test_a_contact_the_cis_renumbers_loses_its_telegram_link(
    webhook: TestClient, webhook_app: App, tmp_path: Path
) -> None:
    """README: "A contact whose number is edited loses its link." Edited through the bot it does
    (accounts.py); renumbered by a re-import (same name, new phone: import_contacts writes the phone)
    it keeps ``telegram_chat_id``, so the alerts of the contact's new number would go to the chat of
    whoever shared the old one (and, Telegram accepting them, never by SMS to the new number)."""
    chat = next(CHATS)
    assert deliver(webhook, share(chat, "17145550102")).status_code == 200
    assert linked(webhook_app, chat) == 1
    rows = list(csv.reader(DEMO.open(encoding="utf-8")))
    for row in rows:
        if row[7] == "Trần Thị Bích":
            row[8] = "(714) 555-0199"  # the CIS has her new number
    path = tmp_path / "renumbered.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    import_file(webhook_app.db, webhook_app.hasher, path)
    contact = webhook_app.db.read(
        lambda conn: conn.execute(
            select(Contact.phone, Contact.telegram_chat_id).where(Contact.name == "Trần Thị Bích")
        ).one()
    )
    assert contact.phone == "+17145550199"
    assert contact.telegram_chat_id is None


# -- input the classifier and the route do not survive ---------------------------------------------


@pytest.mark.parametrize("text", ["/ ", "/\u00a0", "/\u3000"])
def test_a_slash_then_a_space_is_answered(webhook: TestClient, telegram_api: TelegramPeers, text: str) -> None:
    """``_command`` takes ``split()[0]`` of what follows the slash: nothing but (Unicode) spaces there
    raises IndexError in ``classify`` ("Never raises"), PTB logs it, the person gets no answer."""
    chat, mark = next(CHATS), telegram_api.observed.mark()
    response = say(webhook, chat, text)
    assert response.status_code == 200
    assert response.content or calls(telegram_api, mark, chat), "no answer at all"


def test_deeply_nested_json_gets_400_not_500(webhook_app: App) -> None:
    """json.loads raises RecursionError (not a ValueError) on deep nesting well within the 64 KiB limit."""
    depth = 20_000
    raw = b'{"update_id": 5, "x": ' + b"[" * depth + b"]" * depth + b"}"
    assert len(raw) < webhook_app.settings.telegram_max_body_bytes
    with TestClient(create_web(webhook_app), raise_server_exceptions=False) as plain:
        response = plain.post("/telegram/webhook", content=raw, headers={HEADER: SECRET})
    assert response.status_code == 400


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["a", "0", "abc123"])
def test_a_guessable_webhook_secret_is_refused(secret: str) -> None:
    """The secret is the webhook's only authentication: whoever has it can post any update, a contact
    card with any number and ``user_id`` equal to the sender's above all, and so link anyone's
    alerts to their chat. Telegram allows 1 to 256 characters; we should not accept a guessable one."""
    with pytest.raises(ValueError):
        Settings(database_url="sqlite://", pepper="p", telegram_secret=secret)  # type: ignore[arg-type]
