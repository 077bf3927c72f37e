"""Remembered replies go once providers stop retrying; idle sessions go after the retention period.

Everything is written through the real turn path (``Conversation``) at times set on the injected
clock, on SQLite and on PostgreSQL; opt-outs and the audit log are never purged.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from bot.app import App
from bot.channels.base import Inbound
from bot.channels.sms import inbound_from_form
from bot.config import Settings
from bot.storage.models import AuditEntry, ChatSession, OptOut, ProcessedMessage
from bot.storage.retention import Purged, purge_expired
from tests.conftest import Chat, Clock

REPLAY, SESSIONS = timedelta(hours=48), timedelta(days=30)


def sms(app: App, number: str, sid: str, body: str = "hello") -> list[str]:
    """A Twilio message through the SMS channel and the turn path; returns the reply it remembered."""
    inbound = inbound_from_form({"MessageSid": sid, "From": number, "Body": body})
    assert inbound is not None
    return app.conversation.answer(inbound, lambda reply: [reply.state]).texts


def count(app: App, model: type, *where: Any) -> int:
    with app.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def addresses(app: App) -> set[str]:
    with app.db.engine.connect() as conn:
        return set(conn.execute(select(ChatSession.address)).scalars())


def replies(app: App) -> set[str]:
    with app.db.engine.connect() as conn:
        return set(conn.execute(select(ProcessedMessage.external_id)).scalars())


def test_the_defaults_are_two_days_of_replies_and_thirty_days_of_idle_sessions() -> None:
    settings = Settings.model_construct()  # the defaults, whatever this machine's environment says
    assert settings.replay_retention == REPLAY and settings.session_retention == SESSIONS


def test_what_is_old_goes_and_what_is_recent_stays(app: App, clock: Clock) -> None:
    start = clock.now
    Chat(app, address="old").say("")
    Chat(app, address="touched").say("")
    sms(app, "+16265550100", "SMold")
    sms(app, "+16265550101", "SMstop", "STOP")  # an opt-out, and its audit row
    Chat(app, address="failed", channel="console").run("", "2", "1", "700000001", "000000")  # audited failure
    clock.now = start + timedelta(days=20)
    Chat(app, address="touched").say("1")
    clock.now = start + timedelta(days=31)
    sms(app, "+16265550102", "SMatcutoff")  # exactly 48 hours before the purge: it goes
    clock.now += timedelta(hours=1)
    sms(app, "+16265550103", "SMrecent")
    Chat(app, address="recent").say("")
    now = start + timedelta(days=33)
    opt_outs, audit = count(app, OptOut), count(app, AuditEntry)
    assert opt_outs == 1 and audit >= 2

    assert purge_expired(app.db, now, REPLAY, SESSIONS) == Purged(replies=3, sessions=4)

    assert replies(app) == {"SMrecent"}
    assert addresses(app) == {"touched", "+16265550102", "+16265550103", "recent"}
    assert (count(app, OptOut), count(app, AuditEntry)) == (opt_outs, audit)
    assert purge_expired(app.db, now, REPLAY, SESSIONS) == Purged(0, 0)


def test_a_session_touched_after_the_cutoff_stays_and_one_idle_exactly_that_long_goes(app: App, clock: Clock) -> None:
    Chat(app, address="idle").say("")
    clock.advance(seconds=1)
    Chat(app, address="busy").say("")
    purged = purge_expired(app.db, clock.now - timedelta(seconds=1) + SESSIONS, REPLAY, SESSIONS)
    assert purged == Purged(replies=0, sessions=1)
    assert addresses(app) == {"busy"}


def test_a_replay_within_the_retention_still_gets_the_same_reply(app: App, clock: Clock) -> None:
    first = sms(app, "+16265550100", "SM1")
    clock.advance(hours=47)
    purge_expired(app.db, clock.now, REPLAY, SESSIONS)
    assert (
        app.conversation.answer(
            Inbound("sms", "+16265550100", "hello", external_id="SM1"), lambda reply: ["a new turn"]
        ).texts
        == first
    )


def test_an_address_whose_session_was_purged_starts_a_new_conversation(app: App, clock: Clock) -> None:
    chat = Chat(app, address="returning")
    chat.run("", "2")
    assert chat.state == "menu"
    clock.advance(days=30)
    purge_expired(app.db, clock.now, REPLAY, SESSIONS)
    chat.say("1")
    assert chat.state == "start.language"


def test_rows_go_in_bounded_batches_each_in_its_own_transaction(app: App, clock: Clock) -> None:
    for n in range(10):
        sms(app, f"+1626555{n:04d}", f"SM{n}")
    clock.advance(days=31)
    deleted: list[int] = []
    commits: list[None] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deleted.append(cursor.rowcount)

    event.listen(app.db.engine, "after_cursor_execute", on_execute)
    event.listen(app.db.engine, "commit", lambda conn: commits.append(None))
    try:
        assert purge_expired(app.db, clock.now, REPLAY, SESSIONS, batch_size=3) == Purged(10, 10)
    finally:
        event.remove(app.db.engine, "after_cursor_execute", on_execute)
    assert deleted == [3, 3, 3, 1, 3, 3, 3, 1]  # replies, then sessions; never more than 3 at once
    assert len(commits) == len(deleted)


def test_a_batch_size_below_one_is_refused(app: App, clock: Clock) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        purge_expired(app.db, clock.now, REPLAY, SESSIONS, batch_size=0)


@pytest.mark.postgres
def test_on_postgresql_a_session_in_a_turn_is_skipped_not_waited_for(app: App, clock: Clock) -> None:
    if app.db.dialect != "postgresql":
        pytest.skip("SQLite serializes every writer; there is nothing to skip")
    Chat(app, address="in-a-turn").say("")
    Chat(app, address="idle").say("")
    clock.advance(days=31)
    with app.db.engine.connect() as other:  # another worker's turn holds the row
        other.execute(text("SELECT id FROM sessions WHERE address = 'in-a-turn' FOR UPDATE"))
        result: list[Purged] = []

        def purge() -> None:
            result.append(purge_expired(app.db, clock.now, REPLAY, SESSIONS))

        worker = threading.Thread(target=purge)
        worker.start()
        worker.join(timeout=20)
        assert not worker.is_alive(), "the purge waited for a turn's row lock"
        assert result == [Purged(0, 1)]
        other.rollback()
    assert addresses(app) == {"in-a-turn"}
    assert purge_expired(app.db, clock.now, REPLAY, SESSIONS) == Purged(0, 1)  # the next purge gets it
