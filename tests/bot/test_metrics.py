"""/metrics and /readyz: what an operator's Prometheus and load balancer see.

Counters are process-wide in a single worker, so each test compares a scrape before and after what
it does. Several workers add up through a shared directory: tested over a real ``serve --workers 2``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from starlette.testclient import TestClient

from bot.app import App, build
from bot.importer import import_file
from bot.storage.models import OutboundMessage
from bot.web import create_web
from tests.bot.test_web import TWILIO, Phone, signed
from tests.conftest import DEMO, PG_CTL, Clock, make_settings, need_postgres
from tests.pg import ThrowawayPostgres
from tests.serving import Phone as RealPhone
from tests.serving import Server, environment, import_demo

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(get: object) -> Samples:
    response = get("/metrics")  # type: ignore[operator]
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def sms_app(database_url: str, clock: Clock) -> Iterator[App]:
    # no dispatcher beside the routes: the outbox's depth must hold still between reading it and the scrape
    app = build(make_settings(database_url, serve_dispatch=False, **TWILIO), clock=clock, migrate_db=False)
    import_file(app.db, app.hasher, DEMO)
    yield app
    app.close()


@pytest.fixture
def client(sms_app: App) -> Iterator[TestClient]:
    with TestClient(create_web(sms_app), base_url="http://127.0.0.1:8080") as test_client:
        yield test_client


def test_messages_are_counted_by_outcome_with_their_time_and_what_they_did(client: TestClient) -> None:
    before = scrape(client.get)
    phone = Phone(client, "+17145550411")
    for text in ("hi", "2", "1", "700000002", "000000", "1", "700000002", "731562"):
        phone.say(text)
    replay = phone.text("again", sid="SM" + "d" * 32)
    assert phone.text("again", sid="SM" + "d" * 32).text == replay.text
    after = scrape(client.get)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("outagebot_turns_total", channel="sms", outcome="answered") == 9
    assert delta("outagebot_turns_total", channel="sms", outcome="replayed") == 1
    assert delta("outagebot_turn_seconds_count", channel="sms") == 10
    assert delta("outagebot_verifications_total", result="failure") == 1
    assert delta("outagebot_verifications_total", result="success") == 1
    assert not [name for name, _labels in after if name.endswith("_created")]  # no start-time series


def test_a_lockout_and_refused_webhooks_are_counted(client: TestClient) -> None:
    before = scrape(client.get)
    phone = Phone(client, "+17145550412")
    phone.say("hi")
    phone.say("2")
    for _ in range(5):
        phone.say("1")
        phone.say("700000001")
        phone.say("111111")
    unsigned = {"MessageSid": "SM" + "e" * 32, "From": "+17145550412", "Body": "hi"}
    assert client.post("/sms/inbound", data=unsigned, headers={"X-Twilio-Signature": "forged"}).status_code == 403
    big = {**unsigned, "Body": "x" * 20_000}
    assert client.post("/sms/inbound", data=big, headers=signed(big)).status_code == 413
    after = scrape(client.get)
    assert value(after, "outagebot_lockouts_total") - value(before, "outagebot_lockouts_total") == 1
    assert (
        value(after, "outagebot_verifications_total", result="failure")
        - value(before, "outagebot_verifications_total", result="failure")
        == 5
    )
    for reason in ("signature", "too_large"):
        assert (
            value(after, "outagebot_webhooks_rejected_total", reason=reason)
            - value(before, "outagebot_webhooks_rejected_total", reason=reason)
            == 1
        )


def test_the_outbox_depth_is_what_the_database_holds(client: TestClient, sms_app: App) -> None:
    phone = Phone(client, "+17145550413")
    for text in ("hi", "2", "1", "700000002", "731562", "1", "Anh Tran", "(626) 555-0191", "n", "2", "1", "y"):
        phone.say(text)
    with sms_app.db.engine.connect() as conn:
        held = dict(conn.execute(select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)).all())
    samples = scrape(client.get)
    assert held and sum(held.values()) == 1
    for status, count in held.items():
        assert value(samples, "outagebot_outbox_messages", status=status) == count
    assert value(samples, "outagebot_outbox_messages", status="delivered") == 0  # every status is shown


def test_readyz_says_ready_with_the_schema(client: TestClient) -> None:
    assert client.get("/readyz").json() == {"status": "ok", "schema": "0007"}


def test_readyz_is_503_for_a_database_behind_the_code(sqlite_template: Path, tmp_path: Path) -> None:
    from alembic import command

    from bot.storage.db import alembic_config

    path = tmp_path / "behind.db"
    shutil.copy(sqlite_template, path)
    app = build(make_settings(f"sqlite:///{path}", **TWILIO), migrate_db=False)
    try:
        command.downgrade(alembic_config(app.db.engine), "0003")
        with TestClient(create_web(app)) as client:
            response = client.get("/readyz")
            assert response.status_code == 503
            assert response.json() == {"status": "schema", "database": "0003", "needs": "0007"}
            assert client.get("/healthz").status_code == 200  # alive; only not ready for this code
    finally:
        app.close()


@pytest.fixture(scope="module")
def pg() -> Iterator[ThrowawayPostgres]:
    need_postgres()
    assert PG_CTL is not None
    server = ThrowawayPostgres(PG_CTL).start()
    yield server
    server.close()


def test_several_workers_add_up_whichever_answers_the_scrape(pg: ThrowawayPostgres) -> None:
    env = environment(pg.create_database("metrics_workers"))
    import_demo(env)
    with Server(env, workers=2) as server:
        phones = [RealPhone(server.base, f"+1714559{i:04d}") for i in range(10)]
        for phone in phones:
            phone.run("", "2", "3")
        # each scrape on a new connection: they land on either worker
        scrapes = [scrape(lambda path: httpx.get(server.base + path, timeout=30)) for _ in range(6)]
        for phone in phones:
            phone.close()
    for samples in scrapes:
        assert value(samples, "outagebot_turns_total", channel="sms", outcome="answered") == 30
