"""Numbers as people type them, at every kind of prompt, in both languages, through a real turn.

A decimal digit of any script counts (``１``, ``٣``, ``۴``, ``४``); signs that only look like digits
(``²``, ``①``, ``⑵``, ``Ⅱ``, ``½``) get the prompt's usual hint. No row is ever an apology.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import App
from dialogs.text import Msg
from tests.conftest import Clock
from tests.paths import chat_at, demo_app_on_sqlite

APOLOGY = "Sorry, something went wrong and nothing was changed. Please try again, or call {support}."
LANGUAGE = "{first}\n{second}"  # "Please type 1 or 2." in both languages: nobody's language is known yet
CHOICE = "Sorry, please type one of these numbers:"
ACCOUNT = "The Customer Account Number has only digits. Please check your bill."
LENGTH = "A Customer Account Number has 6 to 20 digits. Please check your bill."
SHORT = "That number is too short. Please type all 10 digits, for example (626) 555-0100."
NOT_VERIFIED = (
    "We could not verify that account number and access code. Please check both; if they are right, call {support}."
)
PICK = "Please type the numbers you want, for example 1 3, 1-3 or ALL."
PHONE = "That is not a valid mobile number. Example: (626) 555-0100"
YES_NO = "Please answer Y (yes) or N (no)."

# (where the customer is, what they type, where they are then, the hint shown first, if any)
TABLE = [
    # the very first question: which language
    ("start.language", "１", "menu", None),
    ("start.language", "٢", "menu", None),
    ("start.language", "𝟐", "menu", None),
    ("start.language", "²", "start.language", LANGUAGE),
    ("start.language", "①", "start.language", LANGUAGE),
    ("start.language", "⑵", "start.language", LANGUAGE),
    ("start.language", "Ⅱ", "start.language", LANGUAGE),
    # a menu number
    ("menu", "１", "verify.account", None),
    ("menu", "١", "verify.account", None),
    ("menu", "¹", "menu", CHOICE),
    ("menu", "①", "menu", CHOICE),
    ("menu", "1²", "menu", CHOICE),
    ("menu", "½", "menu", CHOICE),
    ("menu", "9" * 30, "menu", CHOICE),
    ("contacts.menu", "５", "all.action", None),
    ("contacts.menu", "⑤", "contacts.menu", CHOICE),
    ("edit.field", "٤", "edit.language", None),
    ("edit.field", "④", "edit.field", CHOICE),
    # the Customer Account Number
    ("verify.account", "７００ ０００ ００１", "verify.code", None),
    ("verify.account", "٧٠٠٠٠٠٠٠١", "verify.code", None),
    ("verify.account", "7000000０1", "verify.code", None),
    ("verify.account", "700–000–001", "verify.code", None),
    ("verify.account", "700－000－001", "verify.code", None),
    ("verify.account", "700 000 00¹", "verify.account", ACCOUNT),
    ("verify.account", "⑦⓪⓪⓪⓪⓪⓪⓪①", "verify.account", ACCOUNT),
    ("verify.account", "700000001²", "verify.account", ACCOUNT),
    ("verify.account", "+700000001", "verify.account", ACCOUNT),
    ("verify.account", "9" * 21, "verify.account", LENGTH),
    # the access code: digits of any script are the same code; anything else is a wrong code
    ("verify.code", "４８２９１３", "contacts.menu", None),
    ("verify.code", "۴۸۲۹۱۳", "contacts.menu", None),
    ("verify.code", "४८२९१३", "contacts.menu", None),
    ("verify.code", "48291³", "verify.account", NOT_VERIFIED),
    ("verify.code", "④⑧②⑨①③", "verify.account", NOT_VERIFIED),
    # several at once
    ("add.accounts", "１，３", "add.confirm", None),
    ("add.accounts", "1、3", "add.confirm", None),
    ("add.accounts", "1–3", "add.confirm", None),
    ("add.accounts", "1 — 3", "add.confirm", None),
    ("add.accounts", "1 -3", "add.confirm", None),
    ("add.accounts", "٣-١", "add.confirm", None),
    ("add.accounts", "¹,³", "add.accounts", PICK),
    ("add.accounts", "1,²", "add.accounts", PICK),
    ("add.accounts", "1-③", "add.accounts", PICK),
    ("add.accounts", "1-" + "9" * 30, "add.accounts", PICK),
    ("all.contacts", "１　２", "all.confirm", None),
    ("all.contacts", "①②", "all.contacts", PICK),
    # a phone number
    ("add.phone", "(６２６) ５５５-０１７７", "add.email", None),
    ("add.phone", "٦٢٦٥٥٥٠١٧٧", "add.email", None),
    ("add.phone", "(626) 555-017⁷", "add.phone", PHONE),
    ("add.phone", "⑹⑵⑹ 555 0177", "add.phone", PHONE),
    ("edit.phone", "(７１４) ５５５-０１５５", "edit.confirm", None),
    ("edit.phone", "(714) 555-015⁵", "edit.phone", PHONE),
    # 0 goes back, in any script; a circled zero is not a zero
    ("add.phone", "٠", "add.name", None),
    ("add.name", "０", "contacts.menu", None),
    ("add.phone", "⓪", "add.phone", PHONE),
    # a confirmation is a word, never a number
    ("add.confirm", "²", "add.confirm", YES_NO),
    ("add.confirm", "１", "add.confirm", YES_NO),
]


@pytest.fixture
def app(sqlite_template: Path, tmp_path: Path, clock: Clock) -> Iterator[App]:
    """Reading a number is the same on every database: this table runs on a SQLite file."""
    with demo_app_on_sqlite(sqlite_template, tmp_path, clock) as application:
        yield application


@pytest.mark.parametrize("locale", ["vi", "en"])
@pytest.mark.parametrize(("state", "typed", "then", "hint"), TABLE)
def test_numbers_from_any_keyboard(app: App, locale: str, state: str, typed: str, then: str, hint: str | None) -> None:
    chat = chat_at(app, state, locale)
    text = chat.say(typed)
    assert chat.last is not None
    ids = [m.id for m in chat.last.messages]
    assert APOLOGY not in ids, text
    assert chat.state == then, text
    if hint == LANGUAGE:
        assert ids[0] == hint and text.startswith(
            "Please type 1 or 2.\nXin gõ 1 hoặc 2." if locale == "en" else "Xin gõ 1 hoặc 2.\nPlease type 1 or 2."
        ), text
    elif hint is not None:
        assert ids[0] == hint, text
        support = app.settings.support_phone
        assert text.startswith(app.catalogs.render(Msg.of(hint, support=support), locale))
