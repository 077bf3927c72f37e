"""Turns that meet a lost connection or a deadlock are run again, whole, and the customer never knows.

PostgreSQL only (SQLite has neither): a database of this test run's own server, whose backends the
tests kill and whose locks they take, with a second client (plain psycopg) playing the other party.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import select

from bot.app import App, build
from bot.importer import import_file
from bot.storage.models import AuditEntry
from tests.conftest import DEMO, Chat, Clock, make_settings, verified_chat
from tests.pg import ThrowawayPostgres

SORRY = "Sorry, something went wrong"


@pytest.fixture
def pg_app(pg_server: ThrowawayPostgres, clock: Clock) -> Iterator[tuple[App, ThrowawayPostgres, str]]:
    url = pg_server.create_database("retries")
    application = build(make_settings(url), clock=clock)
    import_file(application.db, application.hasher, DEMO)
    yield application, pg_server, url
    application.close()


def test_a_connection_killed_between_turns_is_replaced_without_an_apology(
    pg_app: tuple[App, ThrowawayPostgres, str],
) -> None:
    app, server, _url = pg_app
    chat = verified_chat(app, "en")
    assert server.terminate_backends("retries") >= 1  # an idle-connection killer, a failover
    reply = chat.say("6")
    assert SORRY not in reply and "Nguyễn Văn An, (714) 555-0101" in reply


def test_a_deadlock_victim_is_run_again_and_succeeds(pg_app: tuple[App, ThrowawayPostgres, str]) -> None:
    """Another transaction locks the customer row, then the session row our turn holds: a cycle."""
    app, _server, url = pg_app
    chat = Chat(app, address="+17145550401")
    chat.run("", "2", "1", "700000001")
    other = psycopg.connect(url)
    other.execute("SET deadlock_timeout = '10s'")  # so that PostgreSQL picks our turn as the victim
    other.execute("SELECT 1 FROM customer_accounts WHERE number = '700000001' FOR UPDATE")
    answer: dict[str, str] = {}
    turn = threading.Thread(target=lambda: answer.setdefault("reply", chat.say("482913")))
    turn.start()
    time.sleep(0.3)  # the turn holds its session row and waits for the customer row
    other.execute("SELECT 1 FROM sessions WHERE address = %s FOR UPDATE", (chat.address,))  # the cycle
    other.rollback()
    other.close()
    turn.join(30)
    assert "Verified: Pho Bolsa LLC" in answer["reply"]
    with app.db.engine.connect() as conn:
        actions = [
            r[0]
            for r in conn.execute(
                select(AuditEntry.action).where(AuditEntry.channel != "import").order_by(AuditEntry.id)
            )
        ]  # the turn's, not the demo import's
    assert actions == ["verify.success"]  # run again whole: nothing of the first attempt remains


def test_connections_lost_again_and_again_never_exhaust_the_pool(pg_app: tuple[App, ThrowawayPostgres, str]) -> None:
    """Each lost connection gives its place in the pool back, and is forgotten by the database object."""
    app, server, _url = pg_app
    chat = verified_chat(app, "en")
    for _ in range(app.settings.db_pool_size + 10):
        server.terminate_backends("retries")
        assert SORRY not in chat.say("6")
    assert app.db.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    assert len(app.db._connections) == 1


def test_turns_work_again_as_soon_as_a_database_that_was_down_is_back(clock: Clock) -> None:
    from tests.conftest import PG_CTL, need_postgres

    need_postgres()
    assert PG_CTL is not None
    server = ThrowawayPostgres(PG_CTL).start()  # its own server: this test stops it
    try:
        application = build(make_settings(server.create_database("downtime")), clock=clock)
        import_file(application.db, application.hasher, DEMO)
        chat = verified_chat(application, "en")
        server.stop()
        assert SORRY in chat.say("6")  # nothing can be done meanwhile, and the customer is told
        assert SORRY in chat.say("6")  # (and again: the thread holds no broken connection)
        server.start()
        assert "Nguyễn Văn An, (714) 555-0101" in chat.say("6")
        application.close()
    finally:
        server.close()
