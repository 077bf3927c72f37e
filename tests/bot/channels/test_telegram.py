"""Telegram updates as we understand them, and replies as Telegram shows them (no network here)."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Update

from bot.channels import telegram
from bot.channels.buttons import Action, Keyboard, Press
from bot.channels.telegram import Kind, classify, e164, locale_of, screen
from bot.i18n import Catalogs
from dialogs.engine import Choice, Reply
from dialogs.text import Literal, Msg

CATALOGS = Catalogs()


def update(**fields: Any) -> Update:
    parsed = Update.de_json({"update_id": 42, **fields}, None)
    assert parsed is not None
    return parsed


def text(body: str, chat_type: str = "private", language: str | None = "vi", **more: Any) -> Update:
    sender = {"id": 5, "is_bot": False, "first_name": "An", **({"language_code": language} if language else {})}
    chat = {"id": 5 if chat_type == "private" else -5, "type": chat_type}
    return update(message={"message_id": 9, "date": 0, "chat": chat, "from": sender, "text": body, **more})


def callback(data: str, chat_type: str = "private") -> Update:
    return update(
        callback_query={
            "id": "c1",
            "chat_instance": "i",
            "from": {"id": 5, "is_bot": False, "first_name": "An", "language_code": "en"},
            "data": data,
            "message": {"message_id": 77, "date": 0, "chat": {"id": 5, "type": chat_type}},
        }
    )


@pytest.mark.parametrize(
    ("code", "locale"),
    [("vi", "vi"), ("vi-VN", "vi"), ("VI", "vi"), ("en", "en"), ("fr", "en"), (None, "en"), ("", "en")],
)
def test_the_language_comes_from_the_app(code: str | None, locale: str) -> None:
    assert locale_of(code) == locale


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("17145550101", "+17145550101"),
        ("+1 714 555 0101", "+17145550101"),
        ("84912345678", "+84912345678"),
        ("123", None),
        ("not a number", None),
        ("١٧١٤٥٥٥٠١٠١", None),
    ],
)
def test_a_shared_number_is_read_as_e164(raw: str, number: str | None) -> None:
    assert e164(raw) == number


@pytest.mark.parametrize(
    ("body", "said", "start"),
    [
        ("/start", "MENU", True),
        ("/menu", "MENU", False),
        ("/menu@OutageBot", "MENU", False),
        ("/help", "?", False),
        ("/cancel", "X", False),
        ("/status", "STATUS", False),
        ("/unknown", "/unknown", False),
        ("xin chào", "xin chào", False),
    ],
)
def test_commands_stand_for_what_could_be_typed(body: str, said: str, start: bool) -> None:
    incoming = classify(text(body))
    assert incoming.kind is Kind.TURN and incoming.inbound is not None
    assert (incoming.inbound.text, incoming.start) == (said, start)
    inbound = incoming.inbound
    assert (inbound.channel, inbound.address, inbound.external_id) == ("telegram", "5", "5:42")  # within its chat
    assert inbound.rich and inbound.locale_chosen and inbound.locale_hint == "vi"


def test_language_is_a_choice_of_two_buttons() -> None:
    assert classify(text("/language")).kind is Kind.LANGUAGE
    markup = telegram.language_keyboard(CATALOGS)
    assert [[b["text"] for b in row] for row in markup["inline_keyboard"]] == [["Tiếng Việt"], ["English"]]


@pytest.mark.parametrize("chat_type", ["group", "supergroup", "channel"])
def test_nothing_outside_a_private_chat_is_answered(chat_type: str) -> None:
    assert classify(text("1", chat_type)).kind is Kind.IGNORE
    assert classify(callback("AAAAAAAA:c0", chat_type)).kind is Kind.IGNORE


def test_a_contact_card_counts_only_when_it_is_the_senders_own() -> None:
    own = classify(text("", contact={"phone_number": "17145550101", "first_name": "An", "user_id": 5}))
    other = classify(text("", contact={"phone_number": "17145550101", "first_name": "Bé", "user_id": 6}))
    nobody = classify(text("", contact={"phone_number": "17145550101", "first_name": "Bé"}))
    assert (own.kind, own.phone, own.own) == (Kind.CONTACT, "+17145550101", True)
    assert not other.own and not nobody.own


def test_presses_are_read_through_the_session_or_not_at_all() -> None:
    pressed = classify(callback("AbCd_-12:t7"))
    assert pressed.kind is Kind.TURN and pressed.inbound is not None
    assert pressed.inbound.press == Press("AbCd_-12", Action.TOGGLE, 7)
    assert (pressed.message_id, pressed.callback_id) == (77, "c1")
    assert classify(callback("lang:en")).inbound.text == "ENGLISH"  # type: ignore[union-attr]
    assert classify(callback("unlink")).kind is Kind.UNLINK
    for forged in ("", "account=700000002", "AbCd:q1", "x" * 64):
        assert classify(callback(forged)).kind is Kind.UNKNOWN_PRESS


def accounts(n: int) -> tuple[Choice, ...]:
    return tuple(
        Choice(str(1000 + i), Literal(f"*{1000 + i} {i} Bolsa Ave"), number=i, digits=str(1000 + i))
        for i in range(1, n + 1)
    )


def buttons(shown: telegram.Screen) -> list[list[tuple[str, str]]]:
    assert shown.markup is not None
    return [[(b["text"], b["callback_data"]) for b in row] for row in shown.markup["inline_keyboard"]]


def test_a_hundred_accounts_are_toggled_eight_a_page() -> None:
    reply = Reply((Msg.of("Which service accounts?"),), accounts(100), True, "vi", "contacts.add.accounts")
    shown = screen(reply, CATALOGS, Keyboard("tok12345", ("1050", "1051"), 6))
    rows = buttons(shown)
    assert [text for text, _ in (row[0] for row in rows[:8])] == [
        f"{'✅' if i in (50, 51) else '⬜'} {i}. *{1000 + i} {i} Bolsa Ave" for i in range(49, 57)
    ]
    assert [text for text, _ in rows[8]] == ["◀ Trang trước", "7/13", "Trang sau ▶"]
    assert [text for text, _ in rows[9]] == ["TẤT CẢ", "Xong (2)"]
    assert rows[0][0][1] == "tok12345:t48"  # the row's place in the session's list, nothing else
    assert all(len(data.encode()) <= 64 for row in rows for _, data in row)
    last = buttons(screen(reply, CATALOGS, Keyboard("tok12345", (), 99)))  # a page past the end: the last
    assert [text for text, _ in last[4]] == ["◀ Trang trước", "13/13"]


def test_a_yes_no_question_gets_two_buttons_and_a_menu_one_a_row() -> None:
    question = Reply((Msg.of("Save?"),), (), False, "en", "contacts.add.confirm")
    assert buttons(screen(question, CATALOGS, Keyboard("tok12345"), yes_no=True)) == [
        [("Yes", "tok12345:y0"), ("No", "tok12345:n0")]
    ]
    menu = Reply((Msg.of("Main menu:"),), accounts(3), False, "en", "menu")
    assert buttons(screen(menu, CATALOGS, Keyboard("tok12345")))[0] == [("1. *1001 1 Bolsa Ave", "tok12345:c0")]


def test_a_reply_without_a_keyboard_is_plain_text_within_telegrams_limit() -> None:
    reply = Reply((Msg.of("Main menu:"), Literal("x" * 5000)), (), False, "en", "menu")
    shown = screen(reply, CATALOGS, None)
    assert shown.markup is None and len(shown.text) == telegram.MAX_TEXT
