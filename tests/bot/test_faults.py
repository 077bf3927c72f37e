"""Faults, as an on-call engineer meets them, against real ``outagebot serve`` processes.

PostgreSQL here is a throwaway server of this module's own (``tests/pg.py``), so the tests can kill
its backends, restart it and hold its locks. Customers are phones posting Twilio-signed webhooks.
Each test asserts what the customers were answered and what the database holds afterwards.
"""

from __future__ import annotations

import itertools
import multiprocessing
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_CTL, need_postgres
from tests.pg import ThrowawayPostgres
from tests.serving import Phone, Server, environment, import_demo

SORRY = "Sorry, something went wrong and nothing was changed."
NAMES = itertools.count(1)


@pytest.fixture(scope="module")
def pg() -> Iterator[ThrowawayPostgres]:
    need_postgres()
    assert PG_CTL is not None
    server = ThrowawayPostgres(PG_CTL).start()
    yield server
    server.close()


def deploy(url: str, **settings: str) -> dict[str, str]:
    env = environment(
        url, OUTAGEBOT_DB_LOCK_TIMEOUT_SECONDS="1", OUTAGEBOT_DB_STATEMENT_TIMEOUT_SECONDS="2", **settings
    )
    import_demo(env)
    return env


@pytest.fixture
def pg_deployment(pg: ThrowawayPostgres) -> tuple[str, dict[str, str]]:
    name = f"faults_{next(NAMES)}"
    return name, deploy(pg.create_database(name))


def query(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def consistent(url: str) -> None:
    """Every committed turn wrote its session once and remembered its reply once: nothing half-applied."""
    rows = query(url, "SELECT s.address, s.version, (SELECT count(*) FROM processed_messages) AS total FROM sessions s")
    assert sum(r.version for r in rows) == (rows[0].total if rows else 0)


def together(jobs: list[Any]) -> list[Any]:
    """Run callables at the same instant (threads behind a barrier); their results in order."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = jobs[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_killed_database_connections_are_replaced_and_customers_barely_notice(
    pg: ThrowawayPostgres, pg_deployment: tuple[str, dict[str, str]]
) -> None:
    name, env = pg_deployment
    answers: list[tuple[float, str]] = []
    stop = threading.Event()
    kills: list[tuple[float, int]] = []
    with Server(env, workers=2) as server:
        phones = [Phone(server.base, f"+1714555{i:04d}") for i in range(8)]

        def talk(phone: Phone) -> None:
            for body in itertools.cycle(["", "2", "3", "0", "4", "5", "MENU"]):
                if stop.is_set():
                    return
                answers.append((time.monotonic(), phone.say(body)))

        threads = [threading.Thread(target=talk, args=(p,)) for p in phones]
        for t in threads:
            t.start()
        time.sleep(1.0)
        for _ in range(3):
            kills.append((time.monotonic(), pg.terminate_backends(name)))
            time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(60)
    assert all(killed > 0 for _at, killed in kills)  # there were live connections to kill
    sorry = [at for at, reply in answers if SORRY in reply]
    last_kill = kills[-1][0]
    # Only a turn whose commit was on the wire when its connection died may fail (it cannot know
    # whether the commit took effect); every other turn is run again on a new connection.
    detail = (
        f"apologies at {[round(at - kills[0][0], 2) for at in sorry]}, kills at "
        f"{[round(at - kills[0][0], 2) for at, _n in kills]}, {len(answers)} turns; {server.stderr[-2000:]}"
    )
    assert len(sorry) <= len(kills) * 2, detail
    assert [a for a, _reply in answers if a > last_kill + 0.5]  # turns went on after the last kill
    assert not [at for at in sorry if at > last_kill + 0.5], detail
    consistent(pg.url(name))


def test_after_every_connection_is_killed_no_customer_gets_the_apology(
    pg: ThrowawayPostgres, pg_deployment: tuple[str, dict[str, str]]
) -> None:
    """No turn is in flight when the connections die, so none may fail: a turn that finds its
    connection dead runs again, and never on another connection that died with it."""
    name, env = pg_deployment
    with Server(env, workers=2) as server:
        warm = [Phone(server.base, f"+1714556{i:04d}") for i in range(24)]
        for _ in range(3):  # many threads of both workers hold a connection each
            together([lambda p=p: p.say("") for p in warm])
        assert pg.terminate_backends(name) >= 8
        time.sleep(0.5)
        fresh = [Phone(server.base, f"+1714557{i:04d}") for i in range(24)]
        # One after another first: a retried turn goes to the thread that waited longest, which still
        # holds a dead connection unless it is replaced before use (without that, 3 attempts in a row
        # met dead connections and the customer got the apology). Then all at once.
        replies = [phone.say("") for phone in fresh]
        replies += together([lambda p=p: p.say("2") for p in fresh])
    assert not [r for r in replies if SORRY in r], server.stderr[-3000:]
    assert all("Choose a language" in r or "Main menu" in r for r in replies)
    consistent(pg.url(name))


def test_a_database_restart_is_survived_and_healthz_tells_the_truth(
    pg: ThrowawayPostgres, pg_deployment: tuple[str, dict[str, str]]
) -> None:
    name, env = pg_deployment
    with Server(env, workers=2) as server:
        phone = Phone(server.base, "+17145550140")
        assert "Main menu" in phone.run("", "2")
        others = [Phone(server.base, f"+1714558{i:04d}") for i in range(24)]
        for _ in range(3):  # many threads of both workers hold a connection each
            together([lambda p=p: p.say("") for p in others])
        pg.stop()
        try:
            assert server.healthz()[0] == 503
            assert server.healthz()[0] == 503  # both workers
            assert SORRY in phone.say("3")
            # a delivery status cannot be recorded now: 503 (Twilio may retry it), never a 500
            assert server.status_callback("SM" + "c" * 32, "delivered") == 503
        finally:
            pg.start()  # returns once the server accepts connections
        # Every connection the workers hold died with the server: the first turns find them dead, and
        # each runs again on a new connection, never on another dead one. No customer is turned away.
        later = together([lambda p=p: p.say("2") for p in others]) + [p.say("0") for p in others]
        assert not [r for r in later if SORRY in r], server.stderr[-3000:]
        assert "I-6, BIP, OBMC, CPP, DBP" in phone.say("4")
        assert all(server.healthz()[0] == 200 for _ in range(4))
        assert server.status_callback("SM" + "c" * 32, "delivered") == 204
    consistent(pg.url(name))


def test_a_lock_held_elsewhere_delays_only_its_own_customer(
    pg: ThrowawayPostgres, pg_deployment: tuple[str, dict[str, str]]
) -> None:
    """One worker: B's turns and /healthz run while A's turn waits for a row lock (then A is told sorry)."""
    name, env = pg_deployment
    with Server(env, workers=1) as server:
        a, b = Phone(server.base, "+17145550150"), Phone(server.base, "+17145550151")
        a.run("", "2")
        b.run("", "2")
        before = [_timed(lambda: b.say("2")) for _ in range(10)]
        with psycopg.connect(pg.url(name).replace("postgresql://", "postgresql://"), autocommit=False) as other:
            other.execute("SELECT 1 FROM sessions WHERE address = %s FOR UPDATE", (a.number,))
            waited: dict[str, Any] = {}

            def a_turn() -> None:
                started = time.perf_counter()
                waited["reply"] = a.say("3")
                waited["seconds"] = time.perf_counter() - started

            thread = threading.Thread(target=a_turn)
            thread.start()
            time.sleep(0.1)
            during, health = [], []
            while thread.is_alive():
                during.append(_timed(lambda: b.say("2")))
                health.append(server.healthz()[1])
            thread.join()
            other.rollback()
        assert SORRY in waited["reply"] and 0.9 < waited["seconds"] < 3.0
        assert len(during) >= 5
        # Blocked behind A, a turn of B would wait for the lock timeout (1 s). On this shared 2-core
        # machine a single turn can still be slowed by the scheduler (once 0.22 s in CI), so the typical
        # turn must be as fast as before and none may come near the lock's wait.
        assert statistics.median(during) < statistics.median(before) + 0.05, (before, during)
        assert max(during) < 0.5, during
        assert statistics.median(health) < 0.05 and max(health) < 0.5, health
        assert "Cooling Centers" in a.say("3")  # the lock is gone: A goes on
    rows = query(pg.url(name), "SELECT version FROM sessions WHERE address = :a", a=a.number)
    assert rows[0].version == 3  # "", "2", then the "3" after the lock: the refused turn changed nothing


def _timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def test_thirty_phones_guessing_at_once_get_exactly_five_checks(
    pg: ThrowawayPostgres, pg_deployment: tuple[str, dict[str, str]]
) -> None:
    name, env = pg_deployment
    with Server(env, workers=2) as server:
        phones = [Phone(server.base, f"+1626555{i:04d}") for i in range(30)]
        for phone in phones:
            phone.run("", "2", "1", "700000001")
        replies = together([lambda p=phone: p.say("000000") for phone in phones])
    assert all("We could not verify that account number and access code." in r for r in replies)
    audit = query(pg.url(name), "SELECT action, details FROM audit_log WHERE action LIKE 'verify.%' ORDER BY id")
    reasons = [r.details.get("reason") for r in audit if r.action == "verify.failure"]
    assert reasons.count("wrong_code") == 5 and reasons.count("locked") == 25
    assert reasons[:5] == ["wrong_code"] * 5
    assert [r.action for r in audit].count("verify.locked") == 1


@pytest.mark.parametrize("run", range(3))
def test_the_right_code_is_never_accepted_after_five_wrong_ones(
    pg: ThrowawayPostgres, pg_deployment: tuple[str, dict[str, str]], run: int
) -> None:
    name, env = pg_deployment
    with Server(env, workers=2) as server:
        phones = [Phone(server.base, f"+1626556{run}{i:03d}") for i in range(9)]
        for phone in phones:
            phone.run("", "2", "1", "700000001")
        codes = ["000000"] * 8 + ["482913"]
        together([lambda p=phone, c=code: p.say(c) for phone, code in zip(phones, codes, strict=True)])
    audit = query(pg.url(name), "SELECT action, details FROM audit_log WHERE action LIKE 'verify.%' ORDER BY id")
    wrong_before = 0
    for entry in audit:
        if entry.action == "verify.success":
            assert wrong_before < 5, audit
            wrong_before = 0  # a success starts the count again
        elif entry.action == "verify.failure" and entry.details["reason"] == "wrong_code":
            wrong_before += 1
    assert sum(e.action == "verify.failure" for e in audit) + sum(e.action == "verify.success" for e in audit) == 9


def test_a_message_delivered_twice_at_once_is_answered_alike_and_applied_once(
    pg: ThrowawayPostgres, pg_deployment: tuple[str, dict[str, str]]
) -> None:
    name, env = pg_deployment
    with Server(env, workers=2) as server:
        phones = [Phone(server.base, f"+1714558{i:04d}") for i in range(6)]
        for phone in phones:
            phone.run("", "2")
        for round_ in range(5):  # Twilio retrying a webhook while the first delivery is still in flight
            sids = [f"SMdup{round_}{i:02d}{'0' * 24}" for i in range(len(phones))]
            first = together([lambda p=p, s=s: p.post("3", s).text for p, s in zip(phones, sids, strict=True)] * 2)
            half = len(phones)
            assert first[:half] == first[half:] and all("Cooling Centers" in r for r in first)
    assert not [r for r in first if SORRY in r]
    rows = query(pg.url(name), "SELECT version FROM sessions ORDER BY address")
    assert [r.version for r in rows] == [2 + 5] * len(phones)  # "", "2", then five messages, each once
    consistent(pg.url(name))


def _at_edit_confirm(server: Server, number: str, new_phone: str) -> Phone:
    phone = Phone(server.base, number)
    reply = phone.run("", "2", "1", "700000002", "731562", "3", "1", "2", new_phone)
    assert "Change the mobile number of Maria Lopez from (626) 555-0100 to" in reply, reply
    return phone


def test_two_phones_saving_one_field_at_once_one_wins_the_other_is_told(
    pg: ThrowawayPostgres, pg_deployment: tuple[str, dict[str, str]]
) -> None:
    name, env = pg_deployment
    with Server(env, workers=2) as server:
        first = _at_edit_confirm(server, "+17145550160", "(626) 555-0161")
        second = _at_edit_confirm(server, "+17145550162", "(626) 555-0163")
        replies = together([lambda: first.say("y"), lambda: second.say("y")])
    saved = [r for r in replies if "Saved. Maria Lopez was updated." in r]
    told = [r for r in replies if "That was changed meanwhile. Now: (626) 555-016" in r]
    assert len(saved) == 1 and len(told) == 1, replies
    stored = query(pg.url(name), "SELECT phone FROM contacts WHERE name = 'Maria Lopez'")[0].phone
    assert stored[-4:] in saved[0] or stored in ("+16265550161", "+16265550163")
    assert stored[-4:] in told[0].replace("-", "")  # the loser is shown what is stored now
    edits = query(pg.url(name), "SELECT details FROM audit_log WHERE action = 'contact.edit'")
    assert [e.details["changes"]["phone"] for e in edits] == [{"old": "+16265550100", "new": stored}]


def test_racing_adds_of_one_number_save_it_once_and_tell_the_others_whose_it_is(
    pg: ThrowawayPostgres, pg_deployment: tuple[str, dict[str, str]]
) -> None:
    name, env = pg_deployment
    with Server(env, workers=2) as server:
        phones = []
        for i in range(10):
            phone = Phone(server.base, f"+1714557{i:04d}")
            reply = phone.run(
                "", "2", "1", "700000002", "731562", "1", f"Racer {chr(65 + i)}", "(626) 555-0177", "n", "2", "1"
            )
            assert "Y/N</Message>" in reply, reply
            phones.append(phone)
        replies = together([lambda p=phone: p.say("y") for phone in phones])
    assert sum("Saved. Racer" in r for r in replies) == 1
    assert sum("(626) 555-0177 is already the number of Racer" in r for r in replies) == 9
    assert not [r for r in replies if SORRY in r]
    assert query(pg.url(name), "SELECT count(*) AS n FROM contacts WHERE phone = '+16265550177'")[0].n == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_thirty_code_checks_at_production_cost_hold_up_no_one_else(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    """scrypt runs off the event loop: /healthz and other customers' turns are not delayed by 50 ms.

    Thirty wrong codes arrive at once (three seconds of hashing on one core); meanwhile another
    customer moves through the menu and a monitor asks /healthz, one request after the other. The
    95th percentile of their latencies, after the 30 requests have arrived, must stay within 50 ms
    of the same requests' median when nothing else happens (the percentile, not the maximum: this
    shared 2-core machine pauses any process now and then, whatever it runs).
    """
    if backend == "postgresql":
        pg: ThrowawayPostgres = request.getfixturevalue("pg")
        url = pg.create_database(f"faults_{next(NAMES)}")
    else:
        url = f"sqlite:///{tmp_path / 'outagebot.db'}"
    env = deploy(url, OUTAGEBOT_SCRYPT_N=str(2**14))
    with Server(env, workers=1) as server:
        phones = [Phone(server.base, f"+1626557{i:04d}") for i in range(30)]
        for phone in phones:
            phone.run("", "2", "1", "700000001")
        other = Phone(server.base, "+17145550170")
        other.run("", "2")
        before = [_timed(lambda: other.say("2")) for _ in range(30)]
        # The 30 senders live in a process of their own, so that their threads do not slow the measuring client.
        context = multiprocessing.get_context("spawn")
        started = context.Event()
        storm = context.Process(target=_guess_at_once, args=(server.base, [p.number for p in phones], started))
        storm.start()
        assert started.wait(60)
        time.sleep(0.3)  # the 30 requests have arrived; their hashes run from here on
        during, health = [], []
        while storm.is_alive():
            during.append(_timed(lambda: other.say("2")))
            health.append(server.healthz()[1])
        storm.join()
        assert storm.exitcode == 0
    assert len(during) >= 10, "the checks finished before anything was measured"
    limit = statistics.median(before) + 0.05
    assert statistics.quantiles(during, n=20)[-1] < limit, sorted(during)[-5:]
    assert statistics.quantiles(health, n=20)[-1] < limit, sorted(health)[-5:]


def _guess_at_once(base: str, numbers: list[str], started: Any) -> None:
    phones = [Phone(base, number) for number in numbers]
    started.set()
    replies = together([lambda p=phone: p.say("000000") for phone in phones])
    assert all("We could not verify" in r for r in replies)


def test_sqlite_write_lock_held_by_another_process_gets_the_apology_in_time_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "outagebot.db"
    env = deploy(f"sqlite:///{path}")
    with Server(env, workers=1) as server:
        phone = Phone(server.base, "+17145550180")
        phone.run("", "2")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # an import, a backup, a second program
        try:
            started = time.perf_counter()
            reply = phone.say("3")
            waited = time.perf_counter() - started
            status, health_seconds = server.healthz()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert SORRY in reply and 0.9 < waited < 3.0
        assert status == 503 and health_seconds < 2.5
        assert "Cooling Centers" in phone.say("3")
        assert server.healthz()[0] == 200
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM sessions WHERE address = ?", (phone.number,)).fetchone()[0] == 3
