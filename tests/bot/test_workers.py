"""The dispatcher's guarantees, each proven with real ``outagebot worker`` processes on PostgreSQL.

PostgreSQL is a throwaway server of this module's own (``tests/pg.py``): a database per test, migrated
here, holding synthetic customers whose contacts an alert reaches. The workers are ``python -m bot
worker`` processes sending through the tests' Twilio stand-in (Prism behind the fault layer), which
records every message it receives with its arrival time (``tests.peers.twilio.ARRIVALS``): what the
provider got, per number and per second, is counted there, not in our own database.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select

from bot.channels.segments import count_segments
from bot.storage import alerts, optouts
from bot.storage.db import make_engine, migrate
from bot.storage.models import (
    Contact,
    ContactAssignment,
    CustomerAccount,
    OptOut,
    OutboundMessage,
    ServiceAccount,
    table,
)
from tests.conftest import PG_CTL, need_postgres
from tests.peers import twilio
from tests.pg import ThrowawayPostgres
from tests.serving import ROOT, environment

pytestmark = pytest.mark.postgres

_m = table(OutboundMessage)
_o = table(OptOut)
NAMES = itertools.count(1)
OPTED_OUT_AT_TWILIO = "+12135550102"  # the fault layer answers 21610 for it
FINAL_WAIT = 90.0  # seconds a run of workers may take at most before the test gives up on it


@pytest.fixture(scope="module")
def pg() -> Iterator[ThrowawayPostgres]:
    need_postgres()
    assert PG_CTL is not None
    server = ThrowawayPostgres(PG_CTL).start()
    yield server
    server.close()


@dataclass
class Deployment:
    """A migrated database with ``phones`` as contacts in group G1, and the workers' environment."""

    url: str
    engine: Engine
    env: dict[str, str]
    phones: list[str]
    logs: Path

    def create_alert(self) -> int:
        """An advance alert for G1 (what an operator sends), planned: one delivery per phone."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            request = alerts.check(
                conn, alerts.AlertRequest("advance", ("G1",), now + timedelta(hours=1), now + timedelta(hours=3)), now
            )
            created = alerts.create(conn, request, now, "cli:test")
        assert created.recipients == len(self.phones)
        return created.id

    def rows(self) -> dict[str, tuple[str, int | None]]:
        """Each destination's (status, error code)."""
        with self.engine.connect() as conn:
            return {
                str(r.destination): (str(r.status), r.error_code)
                for r in conn.execute(select(_m.c.destination, _m.c.status, _m.c.error_code))
            }

    def count(self, *statuses: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).where(_m.c.status.in_(statuses))) or 0)

    def sending(self) -> set[str]:
        with self.engine.connect() as conn:
            return {str(d) for d in conn.scalars(select(_m.c.destination).where(_m.c.status == "sending"))}


@pytest.fixture
def deploy(pg: ThrowawayPostgres, twilio_api: str, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    engines: list[Engine] = []

    def make(n: int, *, extra: Sequence[str] = (), **settings: object) -> Deployment:
        url = pg.create_database(f"workers_{next(NAMES)}")
        engine = make_engine(url)
        engines.append(engine)
        migrate(engine)
        base = 10_000 * next(NAMES)  # numbers of their own, so that no other test's arrivals count here
        phones = [f"+1626{base + i:07d}" for i in range(n)] + list(extra)
        seed(engine, phones)
        env = environment(
            url,
            twilio_api,
            OUTAGEBOT_SCRYPT_N="16",
            OUTAGEBOT_PEPPER="workers",
            OUTAGEBOT_DISPATCH_POLL_SECONDS="0.2",
            OUTAGEBOT_LOG_LEVEL="INFO",
            **{f"OUTAGEBOT_{k.upper()}": str(v) for k, v in settings.items()},
        )
        return Deployment(url, engine, env, phones, tmp_path)

    yield make
    for engine in engines:
        engine.dispose()


def seed(engine: Engine, phones: Sequence[str]) -> None:
    """A customer per phone, with one service account in G1 and that phone as its one contact; every
    third contact reads Vietnamese (three UCS-2 segments), the others English."""
    now = datetime.now(UTC)
    customers = [
        {"id": i + 1, "number": f"9{i:08d}", "name": f"Customer {i}", "access_code_hash": "x", "updated_at": now}
        for i in range(len(phones))
    ]
    services = [
        {
            "id": i + 1,
            "customer_id": i + 1,
            "number": f"8{i:08d}",
            "service_address": f"{100 + i} Bolsa Ave",
            "outage_group": "G1",
            "medical": False,
        }
        for i in range(len(phones))
    ]
    contacts = [
        {
            "id": i + 1,
            "customer_id": i + 1,
            "name": f"Contact {i}",
            "phone": phone,
            "language": "vi" if i % 3 == 0 else "en",
            "created_at": now,
            "updated_at": now,
        }
        for i, phone in enumerate(phones)
    ]
    with engine.begin() as conn:
        conn.execute(insert(table(CustomerAccount)), customers)
        conn.execute(insert(table(ServiceAccount)), services)
        conn.execute(insert(table(Contact)), contacts)
        conn.execute(
            insert(table(ContactAssignment)),
            [{"contact_id": i + 1, "service_account_id": i + 1} for i in range(len(phones))],
        )


class Workers:
    """``outagebot worker`` processes; each one's standard error in a file of its own."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}  # pid -> its standard error
        self.names = itertools.count(1)

    def start(self, n: int = 1, *, until_idle: bool = True) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(n):
            log = self.deployment.logs / f"worker-{next(self.names)}.log"
            with log.open("wb") as err:
                process = subprocess.Popen(
                    [sys.executable, "-m", "bot", "worker", *(["--until-idle"] if until_idle else [])],
                    env=self.deployment.env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            self.logs[process.pid] = log
            started.append(process)
        self.processes += started
        return started

    def wait(self, seconds: float = FINAL_WAIT) -> None:
        """Until every live worker exited on its own (``--until-idle``); each must exit 0 (or was killed)."""
        deadline = time.monotonic() + seconds
        for process in self.processes:
            try:
                code = process.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                statuses = Counter(status for status, _ in self.deployment.rows().values())
                raise AssertionError(
                    f"workers still running; deliveries {dict(statuses)}: {self.tail(process)}"
                ) from None
            assert code in (0, -signal.SIGKILL), self.tail(process)

    def tail(self, process: subprocess.Popen[bytes]) -> str:
        return self.logs[process.pid].read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.fixture
def workers() -> Iterator[Callable[[Deployment], Workers]]:
    made: list[Workers] = []

    def make(deployment: Deployment) -> Workers:
        made.append(Workers(deployment))
        return made[-1]

    yield make
    for w in made:
        w.stop()


def received(phones: Sequence[str], since: int) -> Counter[str]:
    """How many messages the provider took (answered 2xx) for each of ``phones`` since ``since``."""
    ours = set(phones)
    return Counter(a.to for a in twilio.ARRIVALS[since:] if a.to in ours and a.accepted)


def wait_until(condition: Callable[[], bool], seconds: float = 60.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(step)


# ---- the guarantees -------------------------------------------------------------------------------


def test_four_workers_at_once_send_every_delivery_exactly_once(
    deploy: Callable[..., Deployment], workers: Callable[[Deployment], Workers]
) -> None:
    d = deploy(200, pacing="false", dispatch_batch=20, dispatch_concurrency=4)
    d.create_alert()
    mark = len(twilio.ARRIVALS)
    w = workers(d)
    w.start(4)
    w.wait()
    got = received(d.phones, mark)
    assert set(got) == set(d.phones)
    assert [phone for phone, n in got.items() if n > 1] == []
    assert set(d.rows().values()) == {("accepted", None)}


def test_a_worker_killed_mid_run_leaves_nothing_unsent_and_repeats_at_most_its_chunk_in_flight(
    deploy: Callable[..., Deployment], workers: Callable[[Deployment], Workers]
) -> None:
    """A worker records a chunk's outcomes only after all of the chunk's sends returned
    (``Dispatcher._chunk``), and sends one chunk at a time per channel: killed, it can have sent at
    most one chunk it did not record. With pacing off a chunk is at most ``concurrency * 4`` messages
    (``Dispatcher._channel``), and never more than the batch it claimed: here min(8, 4 * 4) = 8.
    Those rows stay ``sending`` until their lease (5 s) ends, then another worker sends them again.
    (The lease must outlast a live worker's batch, or the live worker's rows would be taken too: the
    batch is kept small because the stand-in answers only ~15 messages a second on this machine.)"""
    batch, concurrency = 8, 4
    chunk = min(batch, concurrency * 4)
    d = deploy(200, pacing="false", dispatch_batch=batch, dispatch_concurrency=concurrency, dispatch_lease_seconds=5)
    d.create_alert()
    mark = len(twilio.ARRIVALS)
    w = workers(d)
    victim, *_others = w.start(3)
    wait_until(lambda: d.count("accepted") >= 50)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    stranded = d.sending()  # every row the victim held is among these (and others' live ones)
    w.start(1)  # its replacement, as a supervisor would restart it
    w.wait()
    got = received(d.phones, mark)
    assert set(got) == set(d.phones), "a delivery was never sent"
    assert set(d.rows().values()) == {("accepted", None)}
    twice = {phone: n for phone, n in got.items() if n > 1}
    assert max(twice.values(), default=2) == 2
    assert set(twice) <= stranded
    assert len(twice) <= chunk, twice


def test_cancelling_an_alert_stops_its_pending_deliveries(
    deploy: Callable[..., Deployment], workers: Callable[[Deployment], Workers]
) -> None:
    """What is still queued when the cancel commits is never sent. What may still leave is what the
    workers had already checked and were sending: one chunk per worker, here at most 4 * 10."""
    n, count, batch, concurrency = 200, 4, 10, 4
    chunk = min(batch, concurrency * 4)
    d = deploy(n, pacing="false", dispatch_batch=batch, dispatch_concurrency=concurrency)
    alert_id = d.create_alert()
    mark = len(twilio.ARRIVALS)
    w = workers(d)
    w.start(count)
    wait_until(lambda: d.count("accepted") >= 50)
    with d.engine.begin() as conn:
        cancelled = alerts.cancel(conn, alert_id, datetime.now(UTC))
    cancelled_at = time.monotonic()
    w.wait()
    assert cancelled is not None and cancelled > 0
    rows = d.rows()
    got = received(d.phones, mark)
    after = [a for a in twilio.ARRIVALS[mark:] if a.at > cancelled_at and a.to in rows and a.accepted]
    assert len(after) <= count * chunk, len(after)
    assert len(got) < n
    assert {status for status, _ in rows.values()} == {"accepted", "cancelled"}
    assert [phone for phone, (status, _) in rows.items() if status == "cancelled" and phone in got] == []
    assert {phone for phone, (status, _) in rows.items() if status == "accepted"} == set(got)
    assert [phone for phone, k in got.items() if k > 1] == []


def test_an_opted_out_number_is_never_sent_to(
    deploy: Callable[..., Deployment], workers: Callable[[Deployment], Workers]
) -> None:
    """Numbers that opt out after the alert was planned (before the workers start, and while they
    send: any number whose delivery was still waiting in the queue) are never sent to; a number
    Twilio refuses with 21610 is sent to once, ends opted out, and its opt-out is recorded."""
    d = deploy(150, extra=[OPTED_OUT_AT_TWILIO], pacing="false", dispatch_batch=10, dispatch_concurrency=4)
    d.create_alert()
    before = set(d.phones[1:150:25])
    with d.engine.begin() as conn:
        for phone in before:
            optouts.opt_out(conn, "sms", phone, "STOP", datetime.now(UTC), provider_blocks=True)
    mark = len(twilio.ARRIVALS)
    w = workers(d)
    w.start(4)
    wait_until(lambda: d.count("accepted") >= 40)
    with d.engine.begin() as conn:
        # Deliveries still waiting, locked until the opt-outs commit: no worker can claim one meanwhile.
        waiting = list(
            conn.scalars(
                select(_m.c.destination)
                .where(_m.c.status == "pending")
                .order_by(_m.c.id.desc())
                .limit(40)
                .with_for_update()
            )
        )
        during = {str(p) for p in waiting[::2]}
        for phone in during:
            optouts.opt_out(conn, "sms", phone, "NGUNG", datetime.now(UTC), provider_blocks=False)
    w.wait()
    assert len(during) == 20
    got = received(d.phones, mark)
    rows = d.rows()
    assert sorted((before | during) & set(got)) == []
    assert {rows[phone][0] for phone in before | during} == {"opted_out"}
    assert [a.status for a in twilio.ARRIVALS[mark:] if a.to == OPTED_OUT_AT_TWILIO] == [400]  # asked once
    assert rows[OPTED_OUT_AT_TWILIO] == ("opted_out", 21610)
    with d.engine.connect() as conn:
        blocks = conn.scalar(select(_o.c.provider_blocks).where(_o.c.address == OPTED_OUT_AT_TWILIO))
    assert blocks is True
    others = set(d.phones) - before - during - {OPTED_OUT_AT_TWILIO}
    assert {rows[phone] for phone in others} == {("accepted", None)}
    assert set(got) == others


def test_four_workers_never_exceed_the_configured_rate_in_any_second(
    deploy: Callable[..., Deployment], workers: Callable[[Deployment], Workers]
) -> None:
    """The rate is SMS segments a second for the sender, all workers together. Every window of one
    second that starts at an arrival at the stand-in holds at most that many segments; and the rate
    is used (on average at least half of it), so that sending nothing would not pass."""
    rate = 20
    d = deploy(60, pacing="true", sms_per_second=rate, dispatch_batch=5, dispatch_concurrency=16)
    d.create_alert()
    mark = len(twilio.ARRIVALS)
    w = workers(d)
    w.start(4)
    w.wait()
    ours = set(d.phones)
    arrivals = sorted((a.at, count_segments(a.body).count) for a in twilio.ARRIVALS[mark:] if a.to in ours)
    assert len(arrivals) == len(d.phones)
    assert set(d.rows().values()) == {("accepted", None)}
    windows = [[(at, n) for at, n in arrivals[i:] if at < start + 1.0] for i, (start, _) in enumerate(arrivals)]
    busiest = max(windows, key=lambda w: sum(n for _, n in w))
    total = sum(segments for _, segments in arrivals)
    span = arrivals[-1][0] - arrivals[0][0]
    shown = [(round(at - busiest[0][0], 3), n) for at, n in busiest]
    assert sum(n for _, n in busiest) <= rate, shown
    assert total / span >= rate / 2, (total, span)
