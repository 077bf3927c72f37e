"""Garbage, huge, hostile or wrong-script input gets a clear re-prompt and changes nothing."""

from __future__ import annotations

import pytest

from bot.app import App
from bot.channels.segments import count_segments
from tests.conftest import verified_chat
from tests.snapshots import every_row, without_session

HOSTILE = [
    pytest.param("", id="empty"),
    pytest.param("   \t  ", id="blank"),
    pytest.param("A" * 10_000, id="10k-chars"),
    pytest.param("\x00\x07\x1b[31m\x7f", id="control-chars"),
    pytest.param("😀🔥💡", id="emoji"),
    pytest.param("'; DROP TABLE contacts; --", id="sql"),
    pytest.param("1 OR 1=1", id="sql-or"),
    pytest.param("Сергей Иванов", id="cyrillic"),
    pytest.param("王小明", id="han"),
    pytest.param("‮1‬", id="bidi-override"),
    pytest.param("99", id="out-of-range"),
    pytest.param("1,2", id="two-where-one"),
    pytest.param("²", id="superscript-two"),
    pytest.param("①", id="circled-one"),
    pytest.param("1,²", id="list-with-superscript"),
    pytest.param("9" * 400, id="huge-number"),
    pytest.param("\x00" * 50, id="nul-bytes"),
    pytest.param("𝕏\U0010fffd\U000e0001", id="astral"),
]
STATES = {
    "contacts.menu": (),
    "add.name": ("1",),
    "add.phone": ("1", "Lê Thị Cúc"),
    "add.accounts": ("1", "Lê Thị Cúc", "(626) 555-0177", "n", "1"),
    "add.confirm": ("1", "Lê Thị Cúc", "(626) 555-0177", "n", "1", "1"),
}


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("garbage", HOSTILE)
def test_hostile_input_reprompts_and_changes_nothing(app: App, state: str, garbage: str) -> None:
    if state == "add.accounts" and garbage == "1,2":
        pytest.skip("several accounts at once is a valid answer here")
    chat = verified_chat(app, "vi")
    chat.run(*STATES[state])
    assert chat.state == state
    prompt = chat.say("")  # an empty message shows the question again, and nothing else
    before = every_row(app.db.engine)
    reply = chat.say(garbage)
    assert chat.state == state, reply
    after = every_row(app.db.engine)
    # every table, audit log and outbox included, is as it was; only this conversation's session row moved
    assert without_session(after, chat.channel, chat.address) == without_session(before, chat.channel, chat.address)
    assert len(after["sessions"]) == len(before["sessions"])
    # the question again after a short hint; where both would not fit two SMS segments, the hint and
    # the choices (the question's last line or lines), never more than two segments
    question_end = prompt.split("\n", 1)[1] if "\n" in prompt else prompt
    assert reply.endswith(prompt) or (reply.endswith(question_end) and count_segments(reply).count <= 2), reply
    if garbage.strip():
        assert len(reply) > len(question_end)  # a short hint comes first


@pytest.mark.parametrize("garbage", ["99", "1,2", "1 OR 1=1", "A" * 61, "X Æ A-12"])
def test_a_name_must_be_letters(app: App, garbage: str) -> None:
    chat = verified_chat(app, "en")
    chat.say("1")
    reply = chat.say(garbage)
    assert chat.state == "add.name"
    assert "letters only" in reply or "too long" in reply


@pytest.mark.parametrize(
    ("phone", "hint"),
    [
        ("12345", "That number is too short. Please type all 10 digits"),
        ("555-0100", "Please add the area code"),  # seven digits: what is missing is the area code
        ("+1 800 555 01", "not a valid mobile number"),
        ("(626) 555-0100 ext 5 and more text here", "not a valid mobile number"),
    ],
)
def test_a_phone_must_be_a_valid_mobile_number(app: App, phone: str, hint: str) -> None:
    chat = verified_chat(app, "en")
    chat.run("1", "Lê Thị Cúc")
    assert hint in chat.say(phone)
    assert chat.state == "add.phone"


@pytest.mark.parametrize("email", ["nope@", "a@b", "a b@c.com", "x@" + "y" * 300 + ".com"])
def test_an_email_must_look_like_one(app: App, email: str) -> None:
    chat = verified_chat(app, "en")
    chat.run("1", "Lê Thị Cúc", "(626) 555-0177")
    assert "does not look right" in chat.say(email)
    assert chat.state == "add.email"


def test_a_message_over_the_limit_is_refused_whole(app: App) -> None:
    chat = verified_chat(app, "en")
    chat.say("1")
    reply = chat.say("Nguyen " * 200)
    assert "That message is too long." in reply
    assert chat.state == "add.name"
