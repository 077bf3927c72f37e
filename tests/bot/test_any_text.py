"""Whatever a person types, in whatever state, in either language, a turn holds (property tests).

For every state of the dialog graph and both languages, Hypothesis sends one to three messages of
arbitrary Unicode (control characters, astral characters, very long strings, digits of every script,
mixed with valid answers) through the real :class:`bot.conversation.Conversation` on a SQLite file
holding the demo data. After every turn:

- the turn did not fail (no apology, nothing logged as an error) and its reply renders;
- the reply has at least one message, every message (and message inside one) is in both catalogs,
  and the last one is the question of the state the conversation is now in;
- the session row is in a defined state: a state of the graph, a language we speak, the numbering of
  the choices it offered, verified wherever the state requires it;
- contacts, assignments and the outbox changed only if the message was a valid confirmation ("yes"
  at a read-back); the audit log grew only by that, or by a verification at the access-code question;
  no other table changed, and no other conversation's session.

Each example starts from the same database: a snapshot taken once every state was reached is copied
back (SQLite's backup API) before it. ``OUTAGEBOT_PROPERTY_EXAMPLES`` sets the examples per state and
language (default 40: 25-50 s for the 54 runs on a 2-core machine, one to two seconds per state).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import App
from bot.channels.base import render_text
from bot.channels.segments import count_segments
from bot.storage.models import Base
from bot.storage.sessions import peek
from dialogs.engine import LOCALES, YES_WORDS, Reply
from dialogs.graph import build_engine
from dialogs.text import Msg, clean, fold, tidy
from tests.conftest import Chat, Clock
from tests.paths import STATES, chat_at, demo_app_on_sqlite
from tests.snapshots import Rows, every_row, without_session

ENGINE = build_engine()
EXAMPLES = int(os.environ.get("OUTAGEBOT_PROPERTY_EXAMPLES", "40"))
MAX_CHARS = ENGINE.settings.max_input_chars
APOLOGY = "Sorry, something went wrong and nothing was changed. Please try again, or call {support}."
SETTLED = {
    "Reply MENU to see the choices again.",
    "More changes: type a number of the contacts menu (? shows it). MENU: main menu.",
    "Please type the Customer Account Number again.",
    "Verified: {name}. Please choose:",
    "Hello! {utility} rotating outage alerts (Tieng Viet: VI):",
}
SETTLED_AT = {"menu", "contacts.menu", "verify.account"}
CONFIRMATIONS = {name for name, state in ENGINE.states.items() if name.endswith(".confirm")}

# -- what people type ----------------------------------------------------------------------------------

ANSWERS = (  # valid somewhere in the graph, and the global words
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "0",
    "00",
    "1,3",
    "1-3",
    "3-1",
    "1 2",
    "1,2,3",
    "ALL",
    "tất cả",
    "Y",
    "y",
    "yes",
    "có",
    "N",
    "không",
    "k",
    "MENU",
    "X",
    "?",
    "help",
    "giúp",
    "VI",
    "EN",
    "Tiếng Việt",
    "English",
    "back",
    "quay lại",
    "700000001",
    "700 000 001",
    "482913",
    "(626) 555-0177",
    "+1 626 555 0190",
    "(714) 555-0101",
    "Lê Thị Cúc",
    "Anh Tran",
    "an@phobolsa.example",
    "-",
    "STOP",
    "START",
    # as people type them
    "có ạ",
    "dạ không",
    "thôi",
    "hủy",
    "xin chào",
    "hello",
    "*1001",
    "1002",
    "1 đến 3",
    "hết",
    "MORE",
    "tiếp",
    "quên",
    "ko có",
    "lan@gmail.com.",
    "Lê Thị Cúc 714 555 0177",
    "555-0177",
    "người liên lạc",
    "482 913",
)
DIGITS = st.characters(categories=("Nd", "No", "Nl"))  # digits of every script, and look-alikes
SIGNS = st.sampled_from(list(",;-–—－，、،；.:/+()#* \t\n\r\x00\x1b\x7f\u00a0\u200b\u200d\u202e\u2066\u3000\ufeff"))
ODD = st.characters(categories=("Cc", "Cf", "Co", "Zs", "Zl", "Zp", "Mn", "Me", "So"))
ASTRAL = st.characters(min_codepoint=0x10000)
PIECE = st.one_of(st.sampled_from(ANSWERS), DIGITS, SIGNS, ODD, ASTRAL, st.text(max_size=4))
TEXT = st.one_of(
    st.sampled_from(ANSWERS),
    st.text(max_size=40),  # anything at all (no surrogates: those cannot reach us in UTF-8)
    st.lists(PIECE, min_size=1, max_size=8).map("".join),  # answers mixed with noise
    st.text(DIGITS, min_size=1, max_size=3),  # a menu number in any script, or a look-alike
    st.text(st.one_of(DIGITS, SIGNS), min_size=1, max_size=24),  # numbers and lists in any script
    st.builds(lambda piece, n: piece * n, PIECE, st.integers(MAX_CHARS // 4, MAX_CHARS * 6)),  # very long
    st.builds(
        lambda answer, fill: answer + " " * fill,
        st.sampled_from(ANSWERS),  # about the length limit
        st.integers(MAX_CHARS - 4, MAX_CHARS + 4),
    ),
)


# -- the world: the demo data, a conversation standing at every state, a snapshot --------------------


@dataclass
class World:
    app: App
    chats: dict[tuple[str, str], Chat]
    live: sqlite3.Connection  # a second connection to the service's database file
    saved: sqlite3.Connection  # the snapshot, in memory
    rows: Rows  # every row of the snapshot

    def restore(self) -> None:
        """Copy the snapshot back over the database (the service's connection sees it at its next turn)."""
        self.saved.backup(self.live)

    def every_row(self) -> Rows:
        """:func:`tests.snapshots.every_row`, read through the plain driver: a few times faster."""
        rows: Rows = {}
        for table in Base.metadata.sorted_tables:
            cursor = self.live.execute(f"SELECT * FROM {table.name}")  # our own table names
            names = [column[0] for column in cursor.description]
            rows[table.name] = sorted((dict(zip(names, row, strict=True)) for row in cursor), key=repr)
        return rows


@pytest.fixture(scope="module")
def world(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("any-text")
    with demo_app_on_sqlite(sqlite_template, folder, Clock()) as app:
        chats = {
            (state, locale): chat_at(app, state, locale, address=f"+1714555{i:04d}")
            for i, (state, locale) in enumerate((s, loc) for s in STATES for loc in LOCALES)
        }
        with closing(sqlite3.connect(":memory:")) as saved, closing(sqlite3.connect(folder / "outagebot.db")) as live:
            live.execute("PRAGMA synchronous=OFF")  # restoring a throwaway file need not wait for the disk
            live.backup(saved)
            world = World(app, chats, live, saved, {})
            world.rows = world.every_row()
            counts = {t: len(r) for t, r in every_row(app.db.engine).items()}
            assert {t: len(r) for t, r in world.rows.items()} == counts
            yield world


def test_the_paths_reach_every_state_of_the_graph() -> None:
    assert sorted(STATES) == sorted(ENGINE.states)


# -- what must hold after every turn ---------------------------------------------------------------


def valid_confirmation(state: str, text: str) -> bool:
    """A "yes" at a read-back: the only message that may write contacts, assignments or the outbox."""
    cleaned = clean(text, MAX_CHARS) if len(text) <= MAX_CHARS else None
    # the words people add around it count ("có ạ"), and "dừng" with its marks is a no
    words = tidy(fold(cleaned)) if cleaned is not None else ""
    return state in CONFIRMATIONS and words in YES_WORDS and not (words.startswith("DUNG") and "ừ" in text.lower())


def message_ids(messages: Any) -> Iterator[str]:
    for value in messages:
        if isinstance(value, Msg):
            yield value.id
            yield from message_ids(value.params.values())
        elif isinstance(value, list | tuple):
            yield from message_ids(value)


def check_reply(world: World, chat: Chat, reply: Reply) -> None:
    ids = list(message_ids(reply.messages))
    assert reply.messages and APOLOGY not in ids, ids
    missing = [i for i in ids if not world.app.catalogs.has(i)]
    assert missing == []
    assert reply.state in ENGINE.states
    prompt = ENGINE.states[reply.state].prompt
    texts = render_text(reply, world.app.catalogs)
    # the question; or the one line that stands for it (a heading above the choices, how to go on);
    # or a hint that says what to type, when the question as well would not fit two SMS segments
    last = reply.messages[-1].id
    assert (
        last == prompt
        or (last in SETTLED and reply.state in SETTLED_AT)
        or last == "Need help? Call Customer Support at {support}, or type ? to see how to answer."
        or (prompt not in ids and count_segments("\n".join(texts)).count <= 2)
    ), ids
    assert texts and all(t.strip() for t in texts)


def check_session(world: World, chat: Chat, reply: Reply) -> None:
    with world.app.db.unlocked() as conn:
        session = peek(conn, chat.channel, chat.address)
    assert session is not None
    state = ENGINE.states.get(session.state)
    assert state is not None and session.state == reply.state
    assert session.locale in LOCALES and reply.locale == session.locale
    assert 0 <= session.invalid_count < ENGINE.settings.invalid_before_help
    assert not state.verified or session.customer_id is not None
    shown = [[choice.number, choice.key, choice.digits] for choice in reply.choices]
    remembered = session.slots.get("_keys", [])
    assert all(row in remembered for row in shown)  # what was shown (a page of it) means what it said
    json.dumps(session.slots)


def check_writes(before: Rows, after: Rows, chat: Chat, state: str, text: str) -> None:
    changed = {t for t in after if t != "sessions" and after[t] != before[t]}
    assert (
        without_session(after, chat.channel, chat.address)["sessions"]
        == without_session(before, chat.channel, chat.address)["sessions"]
    )
    allowed = set()
    if valid_confirmation(state, text):
        allowed |= {"contacts", "contact_assignments", "outbound_messages", "audit_log", "subscriptions"}
    if state == "verify.code":
        allowed |= {"customer_accounts", "audit_log"}  # failure counters, lockout, verify.* audit rows
    assert changed <= allowed, (state, text, changed)
    if "audit_log" in changed:
        old = {row["id"] for row in before["audit_log"]}
        actions = {row["action"].split(".")[0] for row in after["audit_log"] if row["id"] not in old}
        confirmed = {"subscription"} if state == "subs.confirm" else {"contact"}
        assert actions <= (confirmed if state in CONFIRMATIONS else {"verify"}), actions
        assert len(after["audit_log"]) > len(before["audit_log"])  # rows are added, never changed


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("start", STATES)
def test_any_text_in_any_state(world: World, start: str, locale: str) -> None:
    chat = world.chats[(start, locale)]
    errors = ErrorLog()
    logging.getLogger("bot").addHandler(errors)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(texts=st.lists(TEXT, min_size=1, max_size=3))
    def turns(texts: list[str]) -> None:
        world.restore()
        errors.records.clear()
        before = world.rows
        state = start
        for text in texts:
            chat.say(text)
            assert chat.last is not None
            assert errors.records == [], logging.Formatter().format(errors.records[0])
            check_reply(world, chat, chat.last)
            check_session(world, chat, chat.last)
            after = world.every_row()
            check_writes(before, after, chat, state, text)
            before, state = after, chat.state

    try:
        turns()
    finally:
        logging.getLogger("bot").removeHandler(errors)
        world.restore()
