"""``POST /telegram/webhook`` over HTTP: the secret token, replays, garbage and every kind of update.

Updates are posted as Telegram would post them; the bot's answers go through python-telegram-bot to
the Telegram stand-in (behind the tests' repairing proxy), where the test reads what was sent.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from bot.app import App, build
from bot.importer import import_file
from bot.storage.models import AuditEntry, ChatSession, Contact, ProcessedMessage
from bot.web import create_web
from tests.conftest import DEMO, TelegramPeers, make_settings
from tests.peers.telegram import STICKER, TOKEN

SECRET = "webhook-Secret_token-1"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
UPDATES = itertools.count(10_000)
CHATS = itertools.count(8_100_000)


@pytest.fixture
def tg_app(database_url: str, telegram_api: TelegramPeers) -> Iterator[App]:
    settings = make_settings(
        database_url,
        telegram_token=TOKEN,
        telegram_secret=SECRET,
        telegram_api_url=telegram_api.api,
        public_url="https://bot.example.test",
    )
    app = build(settings, migrate_db=False)
    import_file(app.db, app.hasher, DEMO)
    yield app
    app.close()


@pytest.fixture
def client(tg_app: App) -> Iterator[TestClient]:
    with TestClient(create_web(tg_app), base_url="http://127.0.0.1:8080") as test_client:
        test_client.bot_api = tg_app.settings.telegram_api_url  # type: ignore[attr-defined]
        yield test_client


def person(chat: int, language: str = "en") -> dict[str, Any]:
    return {"id": chat, "is_bot": False, "first_name": "An", "language_code": language}


def message(chat: int, update_id: int | None = None, chat_type: str = "private", **fields: Any) -> dict[str, Any]:
    body = {
        "message_id": next(UPDATES),
        "date": int(time.time()),
        "chat": {"id": chat, "type": chat_type, **({"first_name": "An"} if chat_type == "private" else {"title": "G"})},
        "from": person(chat),
        **fields,
    }
    return {"update_id": update_id or next(UPDATES), "message": body}


def post(client: TestClient, update: Any, secret: str | None = SECRET, raw: bytes | None = None) -> int:
    """Post as Telegram does, and, as Telegram does, make the Bot API call the response names, if any."""
    return deliver(client, update, secret, raw).status_code


def deliver(client: TestClient, update: Any, secret: str | None = SECRET, raw: bytes | None = None) -> httpx.Response:
    headers = {HEADER: secret} if secret is not None else {}
    content = raw if raw is not None else json.dumps(update).encode()
    response = client.post(
        "/telegram/webhook", content=content, headers={**headers, "content-type": "application/json"}
    )
    if response.status_code == 200 and response.content:
        call = dict(response.json())
        method = call.pop("method")
        api = client.bot_api  # type: ignore[attr-defined]
        httpx.post(f"{api}/bot{TOKEN}/{method}", json=call, timeout=10).raise_for_status()
    return response


def sent_to(peers: TelegramPeers, chat: int, mark: int = 0) -> list[dict[str, Any]]:
    return [p for name, p in peers.observed.since(mark) if name == "sendMessage" and int(p["chat_id"]) == chat]


def count(app: App, statement: Any) -> int:
    return int(app.db.read(lambda conn: conn.execute(statement).scalar_one()))


def sessions(app: App) -> int:
    return count(app, select(func.count()).select_from(ChatSession))


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET[:-1], "webhook-secret_token-1", "é" * 8])
def test_a_missing_or_forged_secret_is_refused_and_changes_nothing(
    client: TestClient, tg_app: App, telegram_api: TelegramPeers, secret: str | None
) -> None:
    chat, mark = next(CHATS), telegram_api.observed.mark()
    headers = {} if secret is None else {HEADER: secret.encode("utf-8")}
    update = message(chat, text="700000001")
    response = client.post("/telegram/webhook", content=json.dumps(update), headers=headers)
    assert response.status_code == 403
    assert sessions(tg_app) == 0 and sent_to(telegram_api, chat, mark) == []


def test_a_replayed_update_changes_once_and_is_answered_once(
    client: TestClient, tg_app: App, telegram_api: TelegramPeers
) -> None:
    """Telegram delivers an update again only when our answer did not reach it (lost on the way, a
    timeout): the replay changes nothing and gets the same answer, which this time arrives once."""
    chat, mark = next(CHATS), telegram_api.observed.mark()
    first = message(chat, text="/menu", entities=[{"type": "bot_command", "offset": 0, "length": 5}])
    assert post(client, first) == 200
    update = message(chat, text="1")
    lost = [client.post("/telegram/webhook", json=update, headers={HEADER: SECRET}) for _ in range(2)]
    arrived = deliver(client, update)  # the third delivery's answer reaches Telegram
    assert lost[0].json() == lost[1].json() == arrived.json()
    assert [p["text"].splitlines()[0] for p in sent_to(telegram_api, chat, mark)] == [
        "Main menu:",
        "Please type your Customer Account Number (it is on your bill).",
    ]
    version = tg_app.db.read(
        lambda conn: conn.execute(select(ChatSession.version).where(ChatSession.address == str(chat))).scalar_one()
    )
    assert version == 2  # one change for the update, however often it came
    assert (
        count(tg_app, select(func.count()).select_from(ProcessedMessage).where(ProcessedMessage.channel == "telegram"))
        == 2
    )


def test_an_update_id_seen_in_another_chat_is_no_replay(
    client: TestClient, tg_app: App, telegram_api: TelegramPeers
) -> None:
    """Update ids are the bot's; a database that once served another bot (its ids start anew) must not
    take this bot's updates for replays, nor fail on them."""
    first, second = next(CHATS), next(CHATS)
    mark = telegram_api.observed.mark()
    assert post(client, message(first, update_id=777, text="/menu")) == 200
    assert post(client, message(second, update_id=777, text="/menu")) == 200
    assert len(sent_to(telegram_api, first, mark)) == 1 and len(sent_to(telegram_api, second, mark)) == 1


def test_a_replayed_phone_share_links_and_audits_once(
    client: TestClient, tg_app: App, telegram_api: TelegramPeers
) -> None:
    chat, mark = next(CHATS), telegram_api.observed.mark()
    update = message(chat, contact={"phone_number": "+17145550102", "first_name": "Bích", "user_id": chat})
    assert post(client, update) == 200
    assert post(client, update) == 200
    assert len(sent_to(telegram_api, chat, mark)) == 1
    assert count(tg_app, select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "telegram.link")) == 1
    linked = tg_app.db.read(
        lambda conn: conn.execute(select(Contact.telegram_chat_id).where(Contact.phone == "+17145550102")).all()
    )
    assert linked == [(chat,)]


def test_the_reply_to_typed_text_rides_in_the_webhooks_response(
    client: TestClient, tg_app: App, telegram_api: TelegramPeers
) -> None:
    """Telegram makes the call the response names: the common reply costs no request of ours."""
    chat = next(CHATS)
    mark = telegram_api.observed.mark()
    response = client.post("/telegram/webhook", json=message(chat, text="hello"), headers={HEADER: SECRET})
    assert sent_to(telegram_api, chat, mark) == []  # nothing sent by us
    call = response.json()
    assert (call["method"], call["chat_id"]) == ("sendMessage", chat)
    assert call["text"].startswith("Main menu:") and call["reply_markup"]["inline_keyboard"][0][0]["text"].startswith(
        "1. "
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b"null",
        b'"text"',
        b"{",
        b'{"update_id": "x"}',
        b'{"message": {}}',
        b'{"update_id": 1.5}',
        b"\xff\xfe\x00",
    ],
)
def test_malformed_bodies_get_400_never_500(client: TestClient, tg_app: App, raw: bytes) -> None:
    assert post(client, None, raw=raw) == 400
    assert sessions(tg_app) == 0


@pytest.mark.parametrize(
    "update",
    [{"update_id": 1, "message": {"chat": 5}}, {"update_id": 2, "message": {"message_id": "x", "chat": {}, "date": 0}}],
)
def test_an_update_of_a_shape_the_library_cannot_read_is_taken_and_changes_nothing(
    client: TestClient, tg_app: App, update: dict[str, Any]
) -> None:
    """Telegram sent it (the secret is right): a 4xx would have it sent again and again."""
    assert post(client, update) == 200
    assert sessions(tg_app) == 0


def test_a_body_over_the_limit_gets_413(client: TestClient) -> None:
    huge = message(1, text="x" * 70_000)
    assert post(client, huge) == 413


def _sticker() -> dict[str, Any]:
    return dict(STICKER)


def _photo() -> list[dict[str, Any]]:
    return [{"file_id": "AgAC", "file_unique_id": "p1", "width": 90, "height": 90}]


PERSON_KINDS: dict[str, Any] = {
    "sticker": lambda chat: message(chat, sticker=_sticker()),
    "photo": lambda chat: message(chat, photo=_photo(), caption="hóa đơn"),
    "voice": lambda chat: message(chat, voice={"file_id": "AwAC", "file_unique_id": "v1", "duration": 3}),
    "location": lambda chat: message(chat, location={"latitude": 33.7, "longitude": -117.9}),
    "document": lambda chat: message(chat, document={"file_id": "BQAC", "file_unique_id": "d1"}),
    "edited": lambda chat: {
        "update_id": next(UPDATES),
        "edited_message": message(chat, text="700000001")["message"] | {"edit_date": int(time.time())},
    },
}


@pytest.mark.parametrize("kind", sorted(PERSON_KINDS))
def test_what_is_not_text_gets_a_short_helpful_reply(
    client: TestClient, tg_app: App, telegram_api: TelegramPeers, kind: str
) -> None:
    chat, mark = next(CHATS), telegram_api.observed.mark()
    assert post(client, PERSON_KINDS[kind](chat)) == 200
    [reply] = sent_to(telegram_api, chat, mark)
    expected = "Changes to a sent message are not read" if kind == "edited" else "Sorry, I can read only typed messages"
    assert reply["text"].startswith(expected)
    assert "Main menu" in reply["text"]  # and how to go on


NOBODY_KINDS: dict[str, Any] = {
    "group message": lambda chat: message(-chat, chat_type="group", text="1"),
    "supergroup message": lambda chat: message(-chat, chat_type="supergroup", text="/start"),
    "channel post": lambda chat: {
        "update_id": next(UPDATES),
        "channel_post": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": -chat, "type": "channel", "title": "C"},
            "text": "1",
        },
    },
    "inline query": lambda chat: {
        "update_id": next(UPDATES),
        "inline_query": {"id": "1", "from": person(chat), "query": "700000001", "offset": ""},
    },
    "poll": lambda chat: {
        "update_id": next(UPDATES),
        "poll": {
            "id": "1",
            "question": "?",
            "options": [{"text": "a", "voter_count": 0}],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
        },
    },
    "a bot's message": lambda chat: (
        message(chat, text="1")
        | {"message": message(chat, text="1")["message"] | {"from": {"id": chat, "is_bot": True, "first_name": "B"}}}
    ),
    "bot added to a group": lambda chat: {
        "update_id": next(UPDATES),
        "my_chat_member": {
            "chat": {"id": -chat, "type": "group", "title": "G"},
            "from": person(chat),
            "date": int(time.time()),
            "old_chat_member": {"status": "left", "user": {"id": 1, "is_bot": True, "first_name": "Bot"}},
            "new_chat_member": {"status": "member", "user": {"id": 1, "is_bot": True, "first_name": "Bot"}},
        },
    },
    "button in a group": lambda chat: {
        "update_id": next(UPDATES),
        "callback_query": {
            "id": "9",
            "from": person(chat),
            "chat_instance": "1",
            "data": "AAAAAAAA:c0",
            "message": {
                "message_id": 1,
                "date": int(time.time()),
                "chat": {"id": -chat, "type": "group", "title": "G"},
            },
        },
    },
}


@pytest.mark.parametrize("kind", sorted(NOBODY_KINDS))
def test_groups_channels_and_service_updates_are_taken_and_left_unanswered(
    client: TestClient, tg_app: App, telegram_api: TelegramPeers, kind: str
) -> None:
    chat, mark = next(CHATS), telegram_api.observed.mark()
    assert post(client, NOBODY_KINDS[kind](chat)) == 200
    assert [name for name, _ in telegram_api.observed.since(mark) if name != "getUpdates"] == []
    assert sessions(tg_app) == 0


def test_a_user_who_blocks_the_bot_gets_alerts_by_sms_again(
    client: TestClient, tg_app: App, telegram_api: TelegramPeers
) -> None:
    chat = next(CHATS)
    post(client, message(chat, contact={"phone_number": "17145550101", "first_name": "An", "user_id": chat}))
    linked = select(func.count()).select_from(Contact).where(Contact.telegram_chat_id == chat)
    assert count(tg_app, linked) == 1
    blocked = {
        "update_id": next(UPDATES),
        "my_chat_member": {
            "chat": {"id": chat, "type": "private", "first_name": "An"},
            "from": person(chat),
            "date": int(time.time()),
            "old_chat_member": {"status": "member", "user": {"id": 1, "is_bot": True, "first_name": "Bot"}},
            "new_chat_member": {
                "status": "kicked",
                "user": {"id": 1, "is_bot": True, "first_name": "Bot"},
                "until_date": 0,
            },
        },
    }
    assert post(client, blocked) == 200
    assert count(tg_app, linked) == 0
    assert (
        count(tg_app, select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "telegram.blocked")) == 1
    )


def test_one_chats_updates_run_in_order_and_other_chats_alongside(
    client: TestClient, tg_app: App, telegram_api: TelegramPeers
) -> None:
    """Twelve updates of one chat posted at once (as Telegram's parallel connections may) are each one
    turn, one after the other; eight other chats are served at the same time."""
    chat, mark = next(CHATS), telegram_api.observed.mark()
    others = [next(CHATS) for _ in range(8)]
    updates = [message(chat, text="/menu", entities=[{"type": "bot_command", "offset": 0, "length": 5}])]
    updates += [message(chat, text=text) for text in ["4", "MENU"] * 5 + ["3"]]
    updates += [message(other, text="hello") for other in others]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda u: post(client, u), updates))
    assert statuses == [200] * len(updates)
    version = tg_app.db.read(
        lambda conn: conn.execute(select(ChatSession.version).where(ChatSession.address == str(chat))).scalar_one()
    )
    assert version == 12  # every update one turn: none lost to a race
    assert len(sent_to(telegram_api, chat, mark)) == 12
    assert all(len(sent_to(telegram_api, other, mark)) == 1 for other in others)
