"""Two turns for one address at the same moment never lose an update or interleave.

Turn A is a verification: its scrypt hash makes it hold the session for tens of milliseconds.
Turn B arrives while A runs. B must see A's committed result (it is answered from the contacts
menu), never the state before A (where "6" would be taken as an access code and fail).
Tested with threads in one process, and with two processes sharing one database.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import build
from bot.channels.base import Inbound, render_text
from bot.storage.models import AuditEntry, ChatSession
from tests.conftest import DEMO, make_settings

ADDRESS = "+17145550123"
SLOW = 2**14  # a real production-cost hash, so that turn A is slow


def _prepare(url: str) -> None:
    """Demo data, and a session that stands at the access-code question."""
    app = build(make_settings(url, scrypt_n=SLOW), migrate_db=False)
    from bot.importer import import_file

    import_file(app.db, app.hasher, DEMO)
    for text in ("", "2", "1", "700000001"):
        app.conversation.handle(Inbound("sms", ADDRESS, text))
    app.close()


def _turn(url: str, text: str, started: Any, wait_for: Any, out: Any) -> None:
    app = build(make_settings(url, scrypt_n=SLOW), migrate_db=False)
    app.conversation.handle(Inbound("sms", "warm-up", ""))
    if wait_for is not None:
        wait_for.wait(10)
        time.sleep(0.02)
    else:
        started.set()
    reply = app.conversation.handle(Inbound("sms", ADDRESS, text))
    out.put((text, "\n".join(render_text(reply, app.catalogs)), reply.state))
    app.close()


def _check(url: str, results: dict[str, tuple[str, str]]) -> None:
    """The two turns ran one after the other, in one order or the other, and both were counted.

    A then B: A verifies, and B ("6") is answered from the contacts menu of the verified session.
    B then A: B's "6" is checked as the access code and fails; A's "482913" is then taken as an
    account number. (On SQLite the slow hash runs before A takes the write lock, so B may go first.)
    Anything else (B answered from the state before A but A verified too, a version short) is an
    interleaving or a lost update.
    """
    app = build(make_settings(url), migrate_db=False)
    with app.db.engine.connect() as conn:
        actions = [
            r[0]
            for r in conn.execute(
                select(AuditEntry.action).where(AuditEntry.channel != "import").order_by(AuditEntry.id)
            )
        ]  # the turns', not the demo import's
        version = conn.execute(select(ChatSession.version).where(ChatSession.address == ADDRESS)).scalar_one()
    app.close()
    assert version == 6  # four turns to prepare, then A and B: none lost
    a_reply, a_state = results["482913"]
    b_reply, b_state = results["6"]
    if actions == ["verify.success"]:
        assert "Verified: Pho Bolsa LLC" in a_reply
        assert b_state == "list.contacts" and "Nguyễn Văn An, (714) 555-0101" in b_reply
    else:
        assert actions == ["verify.failure"]
        assert b_state == "verify.account" and "could not verify" in b_reply
        assert a_state == "verify.code"


def test_two_threads_one_address(database_url: str) -> None:
    _prepare(database_url)
    started = threading.Event()
    import queue

    out: queue.Queue[tuple[str, str, str]] = queue.Queue()
    a = threading.Thread(target=_turn, args=(database_url, "482913", started, None, out))
    b = threading.Thread(target=_turn, args=(database_url, "6", None, started, out))
    a.start(), b.start()
    a.join(30), b.join(30)
    results = {}
    while not out.empty():
        text, reply, state = out.get()
        results[text] = (reply, state)
    _check(database_url, results)


def test_two_processes_one_address(database_url: str) -> None:
    _prepare(database_url)
    ctx = mp.get_context("spawn")
    started, out = ctx.Event(), ctx.Queue()
    a = ctx.Process(target=_turn, args=(database_url, "482913", started, None, out))
    b = ctx.Process(target=_turn, args=(database_url, "6", None, started, out))
    a.start(), b.start()
    results = {}
    for _ in range(2):
        text, reply, state = out.get(timeout=60)
        results[text] = (reply, state)
    a.join(30), b.join(30)
    assert a.exitcode == 0 and b.exitcode == 0
    _check(database_url, results)


def test_many_turns_from_many_threads_are_all_counted(database_url: str) -> None:
    _prepare(database_url)
    app = build(make_settings(database_url), migrate_db=False)
    app.conversation.handle(Inbound("sms", ADDRESS, "482913"))
    replies: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            reply = app.conversation.handle(Inbound("sms", ADDRESS, "?"))  # stays at the contacts menu
            with lock:
                replies.append("\n".join(render_text(reply, app.catalogs)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with app.db.engine.connect() as conn:
        version = conn.execute(select(ChatSession.version).where(ChatSession.address == ADDRESS)).scalar_one()
    app.close()
    assert len(replies) == 100
    assert all(r.count("0: back") == 1 and r.endswith("6 See contacts") for r in replies)
    assert version == 5 + 100


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_on_sqlite_a_slow_code_check_does_not_hold_up_other_conversations(tmp_path: Path) -> None:
    """The scrypt check runs before the turn takes SQLite's single write lock."""
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    from bot.storage.db import make_engine, migrate

    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    _prepare(url)
    app = build(make_settings(url, scrypt_n=2**15), migrate_db=False)
    app.conversation.handle(Inbound("sms", "other", ""))
    timing: dict[str, float] = {}

    def verify() -> None:
        t0 = time.perf_counter()
        app.conversation.handle(Inbound("sms", ADDRESS, "482913"))
        timing["verify"] = time.perf_counter() - t0

    a = threading.Thread(target=verify)
    a.start()
    time.sleep(0.02)
    others = []
    for text in ("2", "0", "2"):
        t0 = time.perf_counter()
        app.conversation.handle(Inbound("sms", "other", text))
        others.append(time.perf_counter() - t0)
    a.join(30)
    app.close()
    assert timing["verify"] > 0.05
    assert max(others) < timing["verify"] / 3, (others, timing)
