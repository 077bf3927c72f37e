"""The outbox: a notice exists if and only if its contact does, is sent once (by the dispatcher that
sends alerts), and is tracked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot import outbox
from bot.app import App, build
from bot.channels.segments import count_segments
from bot.dispatch import Dispatcher
from bot.i18n import Catalogs
from bot.importer import import_file
from bot.storage import optouts
from bot.storage.aio import runner_for
from bot.storage.models import OptOut, OutboundMessage
from bot.storage.outbound import OPT_IN_NOTICE
from tests.conftest import DEMO, Clock, make_settings, verified_chat
from tests.dispatching import dispatch_once

CATALOGS = Catalogs()


@pytest.fixture
def app(database_url: str, clock: Clock, twilio_api: str) -> Iterator[App]:
    application = build(
        make_settings(
            database_url,
            public_url="https://bot.example.test",
            twilio_account_sid="AC" + "0" * 32,
            twilio_auth_token="test-auth-token",
            twilio_from="+16265550000",
            twilio_api_url=twilio_api,
            pacing=False,
        ),
        clock=clock,
        migrate_db=False,
    )
    import_file(application.db, application.hasher, DEMO)
    yield application
    application.close()


def add_contact(app: App, phone: str, language: str = "1") -> None:
    chat = verified_chat(app, "en")
    chat.run("1", "Anh Tran", phone, "n", language, "1-2", "y")
    assert "Saved." in chat.last_text


def messages(app: App) -> list[OutboundMessage]:
    with app.db.engine.connect() as conn:
        return list(conn.execute(select(OutboundMessage.__table__).order_by(OutboundMessage.id)))  # type: ignore[arg-type]


def flush(app: App, clock: Clock) -> int:
    return dispatch_once(app)


def test_adding_a_contact_sends_one_opt_in_notice_in_its_language(app: App, clock: Clock) -> None:
    add_contact(app, "(626) 555-0190", language="1")
    [pending] = messages(app)
    assert (pending.status, pending.locale, pending.params) == (
        "pending",
        "vi",
        {"business": "Phở Bolsa LLC", "accounts": 2},
    )
    text = outbox.render(
        app.catalogs,
        pending.kind,
        "vi",
        pending.params,
        "1-800-990-7788",
        "SCE",
    )
    assert text.startswith("SCE: Phở Bolsa LLC đã thêm quý vị vào danh sách cảnh báo cắt điện luân phiên của 2 tài")
    assert flush(app, clock) == 1
    [sent] = messages(app)
    assert sent.status == "accepted" and sent.provider_id[:2] in ("SM", "MM") and sent.attempts == 1
    assert flush(app, clock) == 0  # nothing is sent twice


def test_declining_the_read_back_writes_no_notice(app: App) -> None:
    chat = verified_chat(app, "en")
    chat.run("1", "Anh Tran", "(626) 555-0190", "n", "2", "1", "n")
    assert messages(app) == []


def test_an_opted_out_number_is_not_sent_to(app: App, clock: Clock) -> None:
    add_contact(app, "(626) 555-0190")
    with app.db.transaction() as conn:
        optouts.opt_out(conn, "sms", "+16265550190", "STOP", clock(), provider_blocks=True)
    flush(app, clock)
    assert [m.status for m in messages(app)] == ["opted_out"]


def test_twilio_saying_21610_records_the_opt_out(app: App, clock: Clock) -> None:
    add_contact(app, "+1 213 555 0102")
    flush(app, clock)
    assert [(m.status, m.error_code) for m in messages(app)] == [("opted_out", 21610)]
    with app.db.engine.connect() as conn:
        assert [r.address for r in conn.execute(select(OptOut.__table__))] == ["+12135550102"]


def test_an_invalid_number_is_not_retried(app: App, clock: Clock) -> None:
    add_contact(app, "+1 213 555 0106")
    flush(app, clock)
    clock.advance(hours=1)
    assert flush(app, clock) == 0
    assert [(m.status, m.error_code) for m in messages(app)] == [("failed", 21614)]


@pytest.mark.parametrize("number", ["+1 213 555 0103", "+1 213 555 0104", "+1 213 555 0105"])
def test_rate_limits_server_errors_and_timeouts_are_retried_later(app: App, clock: Clock, number: str) -> None:
    add_contact(app, number)
    flush(app, clock)
    [waiting] = messages(app)
    assert waiting.status == "pending" and waiting.attempts == 1
    assert waiting.next_attempt_at > clock()
    assert flush(app, clock) == 0  # not before its time
    clock.advance(minutes=11)
    assert flush(app, clock) == 1
    assert messages(app)[0].attempts == 2


def test_a_worker_that_died_mid_send_leaves_the_message_to_the_next(app: App, clock: Clock) -> None:
    add_contact(app, "(626) 555-0190")
    dispatcher = Dispatcher(app, runner_for(app.db), sms=object(), telegram=None)
    claimed = app.db.run(dispatcher._claim)  # claimed, then the worker dies before sending
    assert len(claimed) == 1 and messages(app)[0].status == "sending"
    assert flush(app, clock) == 0  # the lease holds
    clock.advance(seconds=app.settings.dispatch_lease_seconds + 1)
    assert flush(app, clock) == 1
    assert messages(app)[0].status == "accepted"


def test_a_notice_a_day_old_is_not_sent(app: App, clock: Clock) -> None:
    add_contact(app, "(626) 555-0190")
    clock.advance(hours=25)
    flush(app, clock)
    assert [m.status for m in messages(app)] == ["expired"]


def test_while_twilio_is_away_a_notice_is_retried_for_a_day_then_expires(app: App, clock: Clock) -> None:
    add_contact(app, "+1 213 555 0104")  # the stand-in answers 500 for this number, always
    created = clock()
    pending_after: list[float] = []
    while True:
        flush(app, clock)
        [message] = messages(app)
        if message.status != "pending":
            break
        pending_after.append((message.next_attempt_at - created).total_seconds() / 3600)
        clock.now = message.next_attempt_at
    assert message.status == "expired"
    assert max(pending_after) <= 24 and max(pending_after) > 23
    assert message.attempts > 50  # tried all day long, not given up after a few minutes


def test_two_senders_at_once_send_each_notice_once(app: App, clock: Clock) -> None:
    import threading
    import time

    from tests.peers import twilio

    for i in range(20):
        chat = verified_chat(app, "en", address=f"+1714555{i:04d}", account="700000002", code="731562")
        chat.run("1", f"Anh {chr(65 + i)}", f"(626) 555-{i:04d}", "n", "2", "1", "y")
    assert len(messages(app)) == 20
    if app.db.dialect == "postgresql":  # widen the race: the first claim's UPDATE takes 300 ms to commit
        with app.db.engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE FUNCTION slow_claim() RETURNS trigger AS $$ BEGIN "
                "PERFORM pg_sleep(0.3); RETURN NULL; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER slow_claim AFTER UPDATE ON outbound_messages "
                "FOR EACH STATEMENT EXECUTE FUNCTION slow_claim()"
            )
    twilio.SENT.clear()
    handled: list[int] = []

    def worker(delay: float) -> None:
        time.sleep(delay)
        handled.append(dispatch_once(app))

    threads = [threading.Thread(target=worker, args=(delay,)) for delay in (0.0, 0.1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(handled) == 20
    assert sorted(twilio.SENT) == sorted(f"+1626555{i:04d}" for i in range(20))
    assert {m.status for m in messages(app)} == {"accepted"}


def notice(locale: str, business: str, accounts: int) -> str:
    params: dict[str, object] = {"business": business, "accounts": accounts}
    return outbox.render(CATALOGS, OPT_IN_NOTICE, locale, params, "1-800-990-7788", "SCE")


# Businesses as a CIS names them, up to the longest the notice is sized for (33 characters).
GSM_NAMES = ["Sunrise Bakery Inc.", "Bolsa Avenue Auto Repair Inc.", "Little Saigon Family Dental Group"]
VIETNAMESE_NAMES = ["Phở Bolsa LLC", "Nhà Hàng Phở Bolsa Westminster", "Tiệm Bánh Mì Lê Văn Duyệt, Inc."]


@pytest.mark.parametrize("accounts", [1, 12])
@pytest.mark.parametrize("business", GSM_NAMES + VIETNAMESE_NAMES)
def test_the_opt_in_notice_names_the_utility_first_and_fits_its_segments(business: str, accounts: int) -> None:
    """A stranger's text naming only a business reads as spam: the utility's name comes first. English
    stays GSM-7 within 2 segments (with a name in GSM-7 letters; a Vietnamese name makes any text
    UCS-2, then 3), Vietnamese within 3 UCS-2 segments; both say how to stop, the rates and the help number."""
    english, vietnamese = notice("en", business, accounts), notice("vi", business, accounts)
    assert english.startswith(f"SCE: {business} added you to rotating outage alerts for {accounts} service account")
    assert "Msg & data rates may apply. Reply STOP to stop. Help: 1-800-990-7788" in english
    assert vietnamese.startswith(f"SCE: {business} đã thêm quý vị vào danh sách cảnh báo cắt điện luân phiên")
    assert "quý khách" not in vietnamese  # an employee of the business, addressed as the utility's page does
    for words in ("Có thể tính phí tin nhắn và dữ liệu.", "Gõ NGỪNG để ngừng.", "Hỗ trợ: 1-800-990-7788"):
        assert words in vietnamese
    if business in GSM_NAMES:
        assert count_segments(english).encoding == "GSM-7" and count_segments(english).count <= 2
    else:
        assert count_segments(english).count <= 3
    assert count_segments(vietnamese).encoding == "UCS-2" and count_segments(vietnamese).count <= 3
