"""Alerts from plan to provider: who gets one, on which channel, once, and what becomes of each."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.app import App, build
from bot.importer import import_file
from bot.storage import alerts, optouts, pacing
from bot.storage.models import AuditEntry, Contact, OutboundMessage, SendPacing, table
from bot.worker import Senders
from tests.conftest import DEMO, Clock, TelegramPeers, make_settings
from tests.dispatching import dispatch_once, drain, runner
from tests.peers import telegram, twilio

_m = table(OutboundMessage)
_c = table(Contact)
AN, BICH, MARIA = "+17145550101", "+17145550102", "+16265550100"


@pytest.fixture
def app(database_url: str, clock: Clock, twilio_api: str, telegram_api: TelegramPeers) -> Iterator[App]:
    application = build(
        make_settings(
            database_url,
            public_url="https://bot.example.test",
            twilio_account_sid="AC" + "0" * 32,
            twilio_auth_token="test-auth-token",
            twilio_from="+16265550000",
            twilio_api_url=twilio_api,
            telegram_token=telegram.TOKEN,
            telegram_api_url=telegram_api.api,
            pacing=False,
            alert_max_attempts=3,
        ),
        clock=clock,
        migrate_db=False,
    )
    import_file(application.db, application.hasher, DEMO)
    twilio.SENT.clear()
    yield application
    application.close()


def send(app: App, kind: str, groups: tuple[str, ...], *, hours: float = 1, note: str | None = None) -> int:
    now = app.conversation.clock()
    request = alerts.AlertRequest(
        kind, groups, now + timedelta(hours=hours), now + timedelta(hours=hours + 2), note, note
    )
    created = app.db.run(lambda conn: alerts.create(conn, alerts.check(conn, request, now), now, "test"))
    return created.id


def deliveries(app: App, alert_id: int) -> dict[str, tuple[str, str, str]]:
    """destination -> (channel, locale, status)"""
    with app.db.engine.connect() as conn:
        rows = conn.execute(
            select(_m.c.destination, _m.c.channel, _m.c.locale, _m.c.status).where(_m.c.alert_id == alert_id)
        )
        return {r.destination: (r.channel, r.locale, r.status) for r in rows}


def link(app: App, phone: str, chat: int) -> None:
    with app.db.transaction() as conn:
        conn.execute(update(_c).where(_c.c.phone == phone).values(telegram_chat_id=chat))


def test_every_contact_of_an_affected_account_gets_one_sms_in_their_language(app: App) -> None:
    alert = send(app, "advance", ("A012", "A013"))  # An is on both accounts; Bích on one
    assert deliveries(app, alert) == {AN: ("sms", "vi", "pending"), BICH: ("sms", "vi", "pending")}
    drain(app)
    assert sorted(twilio.SENT) == [AN, BICH]  # one message each, not one per account
    assert {status for _, _, status in deliveries(app, alert).values()} == {"accepted"}
    with app.db.engine.connect() as conn:
        sent = conn.execute(select(_m.c.provider_id, _m.c.segments, _m.c.sent_at).where(_m.c.alert_id == alert)).all()
    assert all(r.provider_id and r.segments and r.sent_at for r in sent)


def test_a_linked_contact_gets_telegram_and_falls_back_to_sms_when_the_bot_is_blocked(
    app: App, telegram_api: TelegramPeers
) -> None:
    link(app, AN, 7_100_101)
    link(app, BICH, 4030001)  # the stand-in answers 403: this person blocked the bot
    mark = telegram_api.observed.mark()
    alert = send(app, "started", ("A012", "A013"), hours=-0.5)
    assert deliveries(app, alert)[AN][0] == "telegram"
    drain(app)
    sent = [p for name, p in telegram_api.observed.since(mark) if name == "sendMessage"]
    assert [int(p["chat_id"]) for p in sent].count(7_100_101) == 1
    assert "*1001" in next(p["text"] for p in sent if int(p["chat_id"]) == 7_100_101)
    assert twilio.SENT == [BICH]  # by SMS instead
    result = deliveries(app, alert)
    assert result[AN] == ("telegram", "vi", "delivered") and result[BICH] == ("sms", "vi", "accepted")
    with app.db.engine.connect() as conn:
        chats = dict(conn.execute(select(_c.c.phone, _c.c.telegram_chat_id).where(_c.c.phone.in_([AN, BICH]))).all())
        actions = conn.scalars(select(table(AuditEntry).c.action)).all()
    assert chats == {AN: 7_100_101, BICH: None} and "telegram.blocked" in actions


def test_an_opted_out_number_is_left_out_and_one_that_opts_out_later_is_not_sent_to(app: App, clock: Clock) -> None:
    with app.db.transaction() as conn:
        optouts.opt_out(conn, "sms", BICH, "STOP", clock(), provider_blocks=True)
    alert = send(app, "advance", ("A012", "A013", "C104"))
    assert set(deliveries(app, alert)) == {AN, MARIA}
    with app.db.transaction() as conn:
        optouts.opt_out(conn, "sms", MARIA, "NGUNG", clock(), provider_blocks=False)
    drain(app)
    assert twilio.SENT == [AN]
    assert deliveries(app, alert)[MARIA][2] == "opted_out"


def test_restored_goes_to_exactly_those_the_outage_alert_reached(app: App, clock: Clock) -> None:
    started = send(app, "started", ("A012", "A013"), hours=-0.5)
    drain(app)
    with app.db.transaction() as conn:  # Bích's message had failed; a contact added since was never told
        conn.execute(update(_m).where(_m.c.alert_id == started, _m.c.destination == BICH).values(status="failed"))
    twilio.SENT.clear()
    restored = send(app, "restored", ("A012",), hours=-2)
    assert set(deliveries(app, restored)) == {AN}
    with app.db.engine.connect() as conn:
        assert alerts.get(conn, restored).follows_id == started  # type: ignore[union-attr]
    drain(app)
    assert twilio.SENT == [AN]


def test_restored_without_an_earlier_alert_is_refused(app: App) -> None:
    with pytest.raises(alerts.AlertError) as refused:
        send(app, "restored", ("C104",), hours=-2)
    assert refused.value.code == "nothing_to_follow"


def test_cancelling_stops_what_was_not_sent(app: App, clock: Clock) -> None:
    alert = send(app, "advance", ("A012", "A013", "C104"))
    with app.db.transaction() as conn:
        assert alerts.cancel(conn, alert, clock()) == 3
    assert dispatch_once(app) == 0
    assert twilio.SENT == []
    assert {s for _, _, s in deliveries(app, alert).values()} == {"cancelled"}


def test_a_transient_failure_is_retried_with_backoff_then_fails_with_its_reason(app: App, clock: Clock) -> None:
    with app.db.transaction() as conn:
        conn.execute(update(_c).where(_c.c.phone == MARIA).values(phone="+12135550104"))  # Twilio answers 500
    alert = send(app, "advance", ("C104",), hours=3)
    waits = []
    for _ in range(3):
        assert dispatch_once(app) == 1
        with app.db.engine.connect() as conn:
            row = conn.execute(select(_m).where(_m.c.alert_id == alert)).one()
        waits.append((row.next_attempt_at - clock()).total_seconds())
        clock.now = row.next_attempt_at
    assert (row.status, row.attempts, row.error_code) == ("failed", 3, 20500)
    assert "gave up after 3 tries" in row.reason
    assert all(0 <= w <= 2.0**i for i, w in enumerate(waits[:2], 1))  # full jitter, 2 s then 4 s at most


def test_an_alert_unsent_after_its_window_is_expired(app: App, clock: Clock) -> None:
    alert = send(app, "advance", ("C104",))  # from one hour to three hours from now
    clock.advance(hours=4, minutes=1)  # an hour after its window
    drain(app)
    assert twilio.SENT == []
    assert deliveries(app, alert)[MARIA][2] == "expired"


def test_a_telegram_429_holds_the_shared_budget_for_every_worker(app: App, clock: Clock) -> None:
    link(app, MARIA, 4290001)  # the stand-in answers 429 retry_after 2
    send(app, "advance", ("C104",))
    before = datetime.now(UTC).timestamp()
    assert dispatch_once(app) == 1
    with app.db.engine.connect() as conn:
        held = conn.scalar(select(table(SendPacing).c.next_at).where(table(SendPacing).c.key == "telegram:123456789"))
        row = conn.execute(select(_m).where(_m.c.destination == MARIA)).one()
    assert held is not None and held >= before + 2
    assert row.status == "pending" and (row.next_attempt_at - clock()).total_seconds() >= 2


def test_reservations_from_many_workers_at_once_never_overlap(app: App) -> None:
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()
    now = datetime.now(UTC).timestamp()

    def reserve() -> None:
        for _ in range(10):
            start = app.db.run(lambda conn: pacing.reserve(conn, "sms:test", 0.1, now))
            with lock:
                spans.append((start, start + 0.1))

    threads = [threading.Thread(target=reserve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans.sort()
    assert len(spans) == 40 and spans[0][0] == pytest.approx(now)
    assert all(a[1] <= b[0] + 1e-9 for a, b in itertools.pairwise(spans))
    assert spans[-1][1] == pytest.approx(now + 4.0)


def test_a_delivery_cancelled_after_its_claim_is_not_sent(app: App, clock: Clock) -> None:
    alert = send(app, "advance", ("A012", "A013", "C104"))
    senders = Senders(app)
    dispatcher = senders.dispatcher(app, runner(app))
    claimed = app.db.run(dispatcher._claim)  # a worker holds the batch ...
    assert len(claimed) == 3
    with app.db.transaction() as conn:  # ... when the operator cancels
        assert alerts.cancel(conn, alert, clock()) == 3
    texts = app.db.read(lambda conn: dispatcher._render(conn, claimed))

    async def go() -> None:
        try:
            await dispatcher._channel("sms", [(job, texts[job.id]) for job in claimed])
        finally:
            await senders.close()

    asyncio.run(go())
    assert twilio.SENT == []
    assert {s for _, _, s in deliveries(app, alert).values()} == {"cancelled"}
