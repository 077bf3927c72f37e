"""The SMS webhook over HTTP (Starlette's test client), signed with Twilio's own RequestValidator."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from bot.app import App, build
from bot.channels.segments import count_segments
from bot.importer import import_file
from bot.storage import optouts
from bot.storage.models import AuditEntry, ChatSession, OptOut, OutboundMessage, ProcessedMessage
from bot.storage.outbound import OPT_IN_NOTICE, enqueue
from bot.web import create_web
from tests.bot.test_conversation import contact_accounts
from tests.conftest import DEMO, Clock, make_settings
from tests.snapshots import Rows, every_row

PUBLIC = "https://bot.example.test"
TOKEN = "test-auth-token"
TWILIO = {
    "public_url": PUBLIC,
    "twilio_account_sid": "AC" + "0" * 32,
    "twilio_auth_token": TOKEN,
    "twilio_from": "+16265550000",
    "twilio_api_url": "http://127.0.0.1:9",
}
SIDS = itertools.count(1)


@pytest.fixture
def sms_app(database_url: str, clock: Clock) -> Iterator[App]:
    app = build(make_settings(database_url, **TWILIO), clock=clock, migrate_db=False)
    import_file(app.db, app.hasher, DEMO)
    yield app
    app.close()


@pytest.fixture
def client(sms_app: App) -> Iterator[TestClient]:
    with TestClient(create_web(sms_app), base_url="http://127.0.0.1:8080") as test_client:
        yield test_client


def signed(params: dict[str, str], path: str = "/sms/inbound", token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(PUBLIC + path, params)}


class Phone:
    """A customer's phone texting the bot through Twilio."""

    def __init__(self, client: TestClient, number: str = "+17145550123") -> None:
        self.client, self.number = client, number

    def text(self, body: str, sid: str | None = None, **extra: str) -> Any:
        params = {
            "MessageSid": sid or f"SM{next(SIDS):032x}",
            "AccountSid": TWILIO["twilio_account_sid"],
            "From": self.number,
            "To": TWILIO["twilio_from"],
            "Body": body,
            "NumMedia": "0",
            **extra,
        }
        return self.client.post("/sms/inbound", data=params, headers=signed(params))

    def say(self, body: str) -> str:
        response = self.text(body)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/xml")
        return str(response.text)

    def sms(self, body: str) -> str | None:
        """Send ``body``; returns the one SMS the bot answers with, or None when it answers nothing."""
        return sms_body(self.say(body))


def sms_body(twiml: str) -> str | None:
    """The text of the one ``<Message>`` in a TwiML reply (None: no message); a turn never sends two."""
    messages = ElementTree.fromstring(twiml).findall("Message")
    assert len(messages) <= 1, twiml
    return messages[0].text if messages else None


def rows(app: App, model: type, *where: Any) -> list[Any]:
    with app.db.engine.connect() as conn:
        return list(conn.execute(select(model.__table__).where(*where)))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("locale_choice", "words"),
    [
        (
            "1",
            ["Đã xác minh: Phở Bolsa LLC.", "Đã lưu. Lê Thị Cúc sẽ nhận cảnh báo cho 2 tài khoản dịch vụ."],
        ),
        ("2", ["Verified: Pho Bolsa LLC", "Saved. Lê Thị Cúc will get alerts for 2 service accounts."]),
    ],
)
def test_verify_and_add_a_contact_by_sms(
    client: TestClient, sms_app: App, locale_choice: str, words: list[str]
) -> None:
    phone = Phone(client)
    assert "<Message>" in phone.say("alerts")  # tells no language: the language question
    replies = [
        phone.say(t)
        for t in (locale_choice, "1", "700000001", "482913", "1", "Lê Thị Cúc", "(626) 555-0177", "k", "1", "1,3", "c")
    ]
    assert words[0] in replies[3] and words[1] in replies[-1]
    notice = rows(sms_app, OutboundMessage, OutboundMessage.address == "+16265550177")
    assert len(notice) == 1 and notice[0].kind == "optin_notice" and notice[0].locale == "vi"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": "forged"},
        {
            "X-Twilio-Signature": RequestValidator("other-token").compute_signature(
                PUBLIC + "/sms/inbound", {"MessageSid": "SM1", "From": "+17145550123", "Body": "1"}
            )
        },
    ],
)
def test_unsigned_or_forged_requests_get_403_and_change_nothing(
    client: TestClient, sms_app: App, headers: dict[str, str]
) -> None:
    response = client.post(
        "/sms/inbound", data={"MessageSid": "SM1", "From": "+17145550123", "Body": "1"}, headers=headers
    )
    assert response.status_code == 403
    assert rows(sms_app, ChatSession) == []


def test_a_signature_for_other_parameters_is_refused(client: TestClient, sms_app: App) -> None:
    params = {"MessageSid": "SM1", "From": "+17145550123", "Body": "1"}
    response = client.post("/sms/inbound", data={**params, "Body": "2"}, headers=signed(params))
    assert response.status_code == 403


def test_a_replayed_message_gets_the_same_answer_and_changes_nothing(client: TestClient, sms_app: App) -> None:
    phone = Phone(client)
    phone.say("alerts")
    first = phone.text("2", sid="SM" + "f" * 32)
    version = rows(sms_app, ChatSession)[0].version
    again = phone.text("2", sid="SM" + "f" * 32)
    assert again.status_code == 200 and again.text == first.text and "Main menu" in again.text
    assert rows(sms_app, ChatSession)[0].version == version


def test_english_stop_is_recorded_and_left_to_twilio_to_confirm(client: TestClient, sms_app: App) -> None:
    phone = Phone(client)
    reply = phone.say("STOP")
    assert reply.endswith("<Response />")  # Twilio sends its own confirmation
    assert [r.keyword for r in rows(sms_app, OptOut)] == ["STOP"]
    assert phone.say("start").endswith("<Response />")
    assert rows(sms_app, OptOut) == []
    actions = [r.action for r in rows(sms_app, AuditEntry, AuditEntry.channel != "import")]  # not the demo's import
    assert actions == ["subscription.opt_out", "subscription.opt_in"]


def test_vietnamese_stop_is_recorded_and_confirmed_once_in_vietnamese(client: TestClient, sms_app: App) -> None:
    phone = Phone(client)
    reply = phone.say("Ngừng")
    assert reply.count("<Message>") == 1
    assert "SCE: quý vị sẽ không nhận tin cảnh báo cắt điện luân phiên nữa. Gõ BẮT ĐẦU để nhận lại." in reply
    assert len(rows(sms_app, OptOut)) == 1
    assert "SCE: quý vị sẽ nhận lại tin cảnh báo" in phone.say("bắt đầu")
    assert rows(sms_app, OptOut) == []


# --- the conversation as people type it on SMS ------------------------------------------------------

HELP_EN = "SCE: rotating outage alerts. Help: 1-800-990-7788. Reply STOP to stop. Msg & data rates may apply."
HELP_VI = (
    "SCE: cảnh báo cắt điện luân phiên. Hỗ trợ: 1-800-990-7788. Gõ NGỪNG để ngừng. Có thể tính phí tin nhắn và dữ liệu."
)
MENU_EN = (
    "Main menu:\n1 Alert contacts\n2 Medical conditions\n3 Cooling Centers\n4 Other programs\n5 Outage status\n"
    "6 Group alerts"
)
REMINDER_VI = "SCE: quý vị đã ngừng nhận tin. Gõ BẮT ĐẦU để nhận lại. Hỗ trợ: 1-800-990-7788"
REMINDER_EN = "SCE: you opted out, so you get no messages. Reply BAT DAU to get them again. Help: 1-800-990-7788"


def without(rows: Rows, *tables: str) -> Rows:
    return {name: table for name, table in rows.items() if name not in tables}


def test_a_turn_that_says_several_things_sends_them_as_one_sms_in_order(client: TestClient) -> None:
    phone = Phone(client)
    phone.say("alerts")
    phone.say("2")
    assert phone.sms("3") == (
        "During rotating outages in extreme heat, Cooling Centers are open. Call 1-800-990-7788 for the "
        "nearest one.\nReply MENU to see the choices again."
    )


@pytest.mark.parametrize(
    ("before", "word", "expected", "then", "goes_on"),
    [
        # English (GSM-7, 306 characters in two segments): the current question fits beside the notice
        (("alerts", "2"), "HELP", f"{HELP_EN}\n{MENU_EN}", "3", "Cooling Centers are open."),
        (
            ("alerts", "2", "1", "700000001"),
            "info",
            f"{HELP_EN}\nPlease type the access code SCE assigned to you.",
            "482913",
            "Verified: Pho Bolsa LLC. Please choose:",
        ),
        # the first message: the language question is in both languages (UCS-2), far over two segments
        ((), "HELP", f"{HELP_EN}\nReply MENU for the main menu.", "MENU", "Main menu:"),
        # Vietnamese (UCS-2, 134 characters in two segments): no question fits beside the notice
        (("alerts", "1"), "giúp", f"{HELP_VI}\nMENU: menu chính.", "3", "Trạm Làm Mát sẽ mở cửa"),
        # in the middle of a step MENU would leave it: "?" shows the question again, and the step goes on
        (("alerts", "1", "1"), "HELP", f"{HELP_VI}\n?: xem hướng dẫn.", "?", "Số Tài Khoản Khách Hàng"),
        (
            ("alerts", "1", "1", "700000001", "482913", "1", "Lê Thị Cúc 714 555 0177"),
            "giúp",
            f"{HELP_VI}\n?: xem hướng dẫn.",
            "?",
            "Email của Lê Thị Cúc là gì?",
        ),
        (("alerts", "1", "1", "700000001", "482913"), "giúp", f"{HELP_VI}\nMENU: menu chính.", "1", "họ tên"),
    ],
)
def test_help_names_the_utility_and_says_how_to_go_on_within_two_segments(
    client: TestClient, before: tuple[str, ...], word: str, expected: str, then: str, goes_on: str
) -> None:
    """HELP: the utility, the support number, how to stop, the rates, and the current question again
    (or the way to the main menu when the question does not fit); the conversation then goes on."""
    phone = Phone(client)
    for text in before:
        phone.say(text)
    sent = phone.sms(word)
    assert sent == expected
    segments = count_segments(sent)
    assert segments.count <= 2
    assert segments.encoding == ("UCS-2" if sent.startswith(HELP_VI) else "GSM-7")
    assert goes_on in (phone.sms(then) or "")


@pytest.mark.parametrize("utility", ["PG&E", "SMUD", "LADWP", "SDG&E"])
def test_help_in_vietnamese_fits_two_segments_with_a_utility_name_of_up_to_six_characters(
    database_url: str, utility: str
) -> None:
    app = build(make_settings(database_url, utility_name=utility, **TWILIO), migrate_db=False)
    with TestClient(create_web(app), base_url="http://127.0.0.1:8080") as other:
        phone = Phone(other)
        phone.say("alerts")
        phone.say("1")
        sent = phone.sms("giúp") or ""
    app.close()
    assert sent.startswith(f"{utility}: cảnh báo cắt điện luân phiên.") and sent.endswith("\nMENU: menu chính.")
    assert count_segments(sent).count == 2
    assert count_segments(sent + "x" * (7 - len(utility))).count == 3  # a name of 7 characters would not fit


@pytest.mark.parametrize("word", ["NGỪNG", "dừng", "Hủy đăng ký", "ngung nhan tin"])
def test_after_our_own_opt_out_word_only_one_reminder_answers_until_bat_dau(
    client: TestClient, sms_app: App, clock: Clock, word: str
) -> None:
    """Twilio does not know our words, so we keep them: no dialog, no change, one reminder in Vietnamese."""
    phone = Phone(client)
    for text in ("alerts", "2", "1"):  # English, at the Customer Account Number question
        phone.say(text)
    assert (phone.sms(word) or "").startswith("SCE: quý vị sẽ không nhận tin cảnh báo cắt điện luân phiên nữa.")
    before = every_row(sms_app.db.engine)
    clock.advance(minutes=1)
    assert phone.sms("xin chào") == REMINDER_VI
    assert count_segments(REMINDER_VI).count <= 2
    for text in ("700000001", "MENU", "2", "Xin chào, tôi cần giúp đỡ", "0", "xin chào"):
        assert phone.sms(text) is None, text
    assert without(every_row(sms_app.db.engine), "processed_messages", "opt_outs") == without(
        before, "processed_messages", "opt_outs"
    )
    [opt_out] = rows(sms_app, OptOut)
    assert opt_out.provider_blocks is False and opt_out.reminded_at == clock()
    assert (phone.sms("BẮT ĐẦU") or "").startswith("SCE: quý vị sẽ nhận lại tin cảnh báo cắt điện luân phiên.")
    assert phone.sms("700000001") == "Please type the access code SCE assigned to you."


def test_the_one_reminder_holds_across_a_restart_and_a_new_opt_out_brings_a_new_one(
    client: TestClient, sms_app: App, database_url: str, clock: Clock
) -> None:
    phone = Phone(client)
    phone.say("NGỪNG")
    assert phone.sms("hi") == REMINDER_VI
    restarted = build(make_settings(database_url, **TWILIO), clock=clock, migrate_db=False)
    with TestClient(create_web(restarted), base_url="http://127.0.0.1:8080") as other:
        assert Phone(other).sms("hi") is None
    restarted.close()
    phone.say("BẮT ĐẦU")
    phone.say("NGỪNG")
    assert phone.sms("hi") == REMINDER_VI
    assert phone.sms("hi") is None


def test_help_while_opted_out_by_our_word_says_how_to_opt_in_again(client: TestClient, sms_app: App) -> None:
    phone = Phone(client)
    phone.say("alerts")
    phone.say("2")  # English
    phone.say("NGỪNG")
    sessions = rows(sms_app, ChatSession)
    assert phone.sms("GIÚP") == REMINDER_VI
    assert phone.sms("HELP") == REMINDER_EN  # in the conversation's language
    assert count_segments(REMINDER_EN).encoding == "GSM-7"
    assert phone.sms("xin chào") is None  # HELP has already said how to come back
    assert rows(sms_app, ChatSession) == sessions


@pytest.mark.parametrize("word", ["STOP", "unsubscribe", "Quit"])
def test_after_twilios_own_opt_out_word_nothing_is_answered_not_even_help(
    client: TestClient, sms_app: App, word: str
) -> None:
    """Twilio blocks everything we send after its words, so we answer nothing and change nothing."""
    phone = Phone(client)
    phone.say("alerts")
    phone.say("2")
    assert phone.sms(word) is None
    before = every_row(sms_app.db.engine)
    for text in ("hi", "1", "HELP", "GIÚP", "MENU"):
        assert phone.sms(text) is None, text
    assert without(every_row(sms_app.db.engine), "processed_messages") == without(before, "processed_messages")
    assert phone.sms("START") is None  # Twilio confirms its own word
    assert phone.sms("MENU") == MENU_EN


def test_twilios_stop_after_our_word_leaves_the_number_to_twilio(client: TestClient, sms_app: App) -> None:
    phone = Phone(client)
    phone.say("NGỪNG")
    assert phone.sms("STOP") is None
    [opt_out] = rows(sms_app, OptOut)
    assert (opt_out.keyword, opt_out.provider_blocks) == ("NGUNG", True)  # the first word stands
    assert phone.sms("hi") is None  # no reminder: Twilio would not deliver it


def test_a_replay_while_opted_out_gets_the_same_answer(client: TestClient, sms_app: App) -> None:
    phone = Phone(client)
    phone.say("NGỪNG")
    reminded = phone.text("hi", sid="SM" + "c" * 32)
    silent = phone.text("hi", sid="SM" + "d" * 32)
    assert sms_body(reminded.text) == REMINDER_VI and sms_body(silent.text) is None
    assert phone.text("hi", sid="SM" + "c" * 32).text == reminded.text
    assert phone.text("hi", sid="SM" + "d" * 32).text == silent.text


@pytest.mark.parametrize(
    ("keyword", "provider_blocks", "first"),
    [
        ("provider:21610", True, None),  # Twilio refused a notice to this number: it blocks it
        ("NGUNG", False, REMINDER_VI),  # our word, and the conversation purged since
    ],
)
def test_an_opted_out_number_without_a_conversation_gets_no_session_and_the_same_answer_on_replays(
    client: TestClient, sms_app: App, clock: Clock, keyword: str, provider_blocks: bool, first: str | None
) -> None:
    with sms_app.db.transaction() as conn:
        optouts.opt_out(conn, "sms", "+17145550123", keyword, clock(), provider_blocks=provider_blocks)
    phone = Phone(client)
    messages = [("hi", "SM" + "1" * 32), ("hello", "SM" + "2" * 32)] * 2  # each one twice: Twilio retried
    answers = [sms_body(phone.text(body, sid=sid).text) for body, sid in messages]
    assert answers == [first, None, first, None]
    assert rows(sms_app, ChatSession) == []
    assert len(rows(sms_app, ProcessedMessage)) == 2


def test_yes_is_an_answer_when_nothing_was_opted_out(client: TestClient, sms_app: App) -> None:
    phone = Phone(client)
    for text in ("hi", "2", "1", "700000002", "731562", "5", "1", "ALL"):
        phone.say(text)
    assert "Saved. 1 contact is now on ALL service accounts." in phone.say("YES")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"From": "+17145550123", "Body": "hi"}, 400),  # no MessageSid
        ({"MessageSid": "SM1", "Body": "hi"}, 400),  # no From
        ({"MessageSid": "SM1", "From": "12", "Body": "hi"}, 400),  # not a number
        ({"MessageSid": "SM1", "From": "+17145550123"}, 200),  # no Body: the question again
        ({"MessageSid": "SM2", "From": "+17145550123", "Body": "😀🔥"}, 200),
    ],
)
def test_signed_but_incomplete_or_odd_messages_never_give_a_500(
    client: TestClient, body: dict[str, str], status: int
) -> None:
    assert client.post("/sms/inbound", data=body, headers=signed(body)).status_code == status


def test_a_huge_body_gets_413_before_anything_else(client: TestClient) -> None:
    params = {"MessageSid": "SM1", "From": "+17145550123", "Body": "x" * 100_000}
    assert client.post("/sms/inbound", data=params, headers=signed(params)).status_code == 413


@pytest.mark.parametrize("raw", [b"\xff\xfe\xfa=\x80", b"MessageSid=SM1&From=%2B17145550123&Body=%FF%FE", b"&&&==&"])
def test_bodies_that_are_not_utf8_forms_never_give_a_500(client: TestClient, raw: bytes) -> None:
    response = client.post(
        "/sms/inbound",
        content=raw,
        headers={"content-type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"},
    )
    assert response.status_code == 403


def test_status_callbacks_are_signed_and_move_a_status_forward_only(client: TestClient, sms_app: App) -> None:
    phone = Phone(client)
    for text in ("hi", "2", "1", "700000002", "731562", "1", "Anh Tran", "(626) 555-0190", "n", "2", "1", "y"):
        phone.say(text)
    with sms_app.db.engine.begin() as conn:
        conn.execute(OutboundMessage.__table__.update().values(provider_id="SM" + "a" * 32, status="accepted"))

    def callback(status: str, error: str = "") -> int:
        params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": status, "ErrorCode": error}
        return int(client.post("/sms/status", data=params, headers=signed(params, "/sms/status")).status_code)

    assert client.post("/sms/status", data={"MessageSid": "SM1", "MessageStatus": "sent"}).status_code == 403
    assert callback("sent") == 204
    assert callback("delivered") == 204
    assert callback("sent") == 204  # late and out of order: ignored
    assert [r.status for r in rows(sms_app, OutboundMessage)] == ["delivered"]


@pytest.mark.parametrize(
    "sender",
    [
        "whatsapp:+17145550123",
        "viber:+17145550123",
        "messenger:7145550123",
        "rcs:+17145550123",
        "sms:+17145550123",
        "7145550123",
        "(714) 555-0123",
        "+1 714 555 0123",
        "+17145550123 ",
        "12345",
        "+12345",
        "OUTAGES",
        "+1714555O123",
        "+1800FLOWERS",
        "+１７１４５５５０１２３",
        "+1٧١٤٥٥٥٠١٢٣",
        "",
    ],
)
def test_only_a_plain_e164_sender_reaches_a_conversation(client: TestClient, sms_app: App, sender: str) -> None:
    """Other channels on the same webhook, short codes, letters, an empty From: 400, and nothing stored
    (no session, no processed message, no audit row), even for the number of a verified SMS session."""
    phone = Phone(client)
    for text in ("hi", "2", "1", "700000001", "482913"):
        phone.say(text)
    before = every_row(sms_app.db.engine)
    params = {
        "MessageSid": f"SM{next(SIDS):032x}",
        "AccountSid": TWILIO["twilio_account_sid"],
        "From": sender,
        "To": TWILIO["twilio_from"],
        "Body": "1",
        "NumMedia": "0",
    }
    response = client.post("/sms/inbound", data=params, headers=signed(params))
    assert response.status_code == 400
    assert every_row(sms_app.db.engine) == before


def test_the_same_message_from_whatsapp_does_not_replay_the_sms_answer(client: TestClient, sms_app: App) -> None:
    params = {"MessageSid": "SM" + "e" * 32, "From": "+17145550123", "Body": "hi"}
    assert client.post("/sms/inbound", data=params, headers=signed(params)).status_code == 200
    other = {**params, "From": "whatsapp:+17145550123"}
    assert client.post("/sms/inbound", data=other, headers=signed(other)).status_code == 400


@pytest.fixture
def sent_notice(sms_app: App, clock: Clock) -> str:
    """An opt-in notice in the outbox that Twilio accepted; returns its provider id."""
    with sms_app.db.transaction() as conn:
        enqueue(
            conn,
            "sms",
            "+16265550190",
            OPT_IN_NOTICE,
            "en",
            {"business": "Sunrise Bakery Inc.", "accounts": 1},
            clock(),
        )
    sid = "SM" + "a" * 32
    with sms_app.db.engine.begin() as conn:
        conn.execute(OutboundMessage.__table__.update().values(provider_id=sid, status="accepted"))
    return sid


@pytest.mark.parametrize(
    ("error", "stored"),
    [
        ("30003", 30003),
        ("", None),
        ("0", None),
        ("²", None),
        ("①", None),
        ("３０００３", None),
        ("-30003", None),
        ("30003.5", None),
        (" 30003", None),
        ("2147483647", 2_147_483_647),
        ("2147483648", None),
        ("99999999999999999999", None),
        ("9" * 400, None),
    ],
)
def test_a_status_callback_with_any_error_code_is_recorded_never_a_500(
    client: TestClient, sms_app: App, sent_notice: str, error: str, stored: int | None
) -> None:
    params = {"MessageSid": sent_notice, "MessageStatus": "undelivered", "ErrorCode": error}
    response = client.post("/sms/status", data=params, headers=signed(params, "/sms/status"))
    assert response.status_code == 204
    [row] = rows(sms_app, OutboundMessage)
    assert (row.status, row.error_code) == ("undelivered", stored)


@pytest.mark.parametrize("sid", ["", "SM\x00" + "a" * 30, "SM " + "a" * 30, "SM١", "S" * 65])
def test_a_status_callback_without_a_message_id_is_refused(
    client: TestClient, sms_app: App, sent_notice: str, sid: str
) -> None:
    before = every_row(sms_app.db.engine)
    params = {"MessageSid": sid, "MessageStatus": "delivered", "ErrorCode": ""}
    response = client.post("/sms/status", data=params, headers=signed(params, "/sms/status"))
    assert response.status_code == 400
    assert every_row(sms_app.db.engine) == before


def test_healthz_reports_the_database(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_without_twilio_settings_the_sms_routes_are_off(database_url: str) -> None:
    app = build(make_settings(database_url), migrate_db=False)
    with TestClient(create_web(app)) as plain:
        assert plain.post("/sms/inbound", data={"Body": "hi"}).status_code == 404
        assert plain.get("/healthz").status_code == 200
    app.close()


def test_a_declared_body_over_the_limit_is_refused_without_reading_it(sms_app: App) -> None:
    import asyncio

    app = create_web(sms_app)
    reads: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/sms/inbound",
        "raw_path": b"/sms/inbound",
        "query_string": b"",
        "root_path": "",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 5000),
        "headers": [(b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", b"999999999")],
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413 and reads == []


def test_a_streamed_body_over_the_limit_is_cut_off(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"MessageSid=SM1&From=%2B17145550123&Body="
        for _ in range(100):
            yield b"x" * 1000

    response = client.post(
        "/sms/inbound",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"},
    )
    assert response.status_code == 413


def test_the_signature_covers_the_query_string_of_the_configured_url(client: TestClient, sms_app: App) -> None:
    params = {"MessageSid": "SM" + "9" * 32, "From": "+17145550123", "Body": "hi"}
    with_query = RequestValidator(TOKEN).compute_signature(PUBLIC + "/sms/inbound?tenant=sce", params)
    good = client.post("/sms/inbound?tenant=sce", data=params, headers={"X-Twilio-Signature": with_query})
    assert good.status_code == 200
    without = RequestValidator(TOKEN).compute_signature(PUBLIC + "/sms/inbound", params)
    assert (
        client.post(
            "/sms/inbound?tenant=sce",
            data={**params, "MessageSid": "SM" + "8" * 32},
            headers={"X-Twilio-Signature": without},
        ).status_code
        == 403
    )


def test_a_status_callback_saying_21610_records_the_opt_out(client: TestClient, sms_app: App) -> None:
    phone = Phone(client)
    for text in ("hi", "2", "1", "700000002", "731562", "1", "Anh Tran", "(626) 555-0190", "n", "2", "1", "y"):
        phone.say(text)
    with sms_app.db.engine.begin() as conn:
        conn.execute(OutboundMessage.__table__.update().values(provider_id="SM" + "b" * 32, status="accepted"))
    params = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "undelivered", "ErrorCode": "21610"}
    assert client.post("/sms/status", data=params, headers=signed(params, "/sms/status")).status_code == 204
    assert [(r.address, r.keyword) for r in rows(sms_app, OptOut)] == [("+16265550190", "provider:21610")]
    assert [(r.status, r.error_code) for r in rows(sms_app, OutboundMessage)] == [("undelivered", 21610)]


def test_healthz_is_503_while_turns_cannot_take_the_sqlite_write_lock(sqlite_template: Path, tmp_path: Path) -> None:
    """(PostgreSQL's 503, a server that is down, is tested against a real server in test_faults.py.)"""
    import shutil
    import sqlite3
    import time

    path = tmp_path / "outagebot.db"
    shutil.copy(sqlite_template, path)
    app = build(make_settings(f"sqlite:///{path}", **TWILIO), migrate_db=False)
    holder = sqlite3.connect(path, isolation_level=None)
    with TestClient(create_web(app)) as client:
        assert client.get("/healthz").status_code == 200
        holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock every turn needs
        try:
            started = time.perf_counter()
            response = client.get("/healthz")
            waited = time.perf_counter() - started
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert response.status_code == 503 and response.json() == {"status": "database unavailable"}
        assert waited < 2.5
        assert client.get("/healthz").status_code == 200
    app.close()


# --- what a conversation costs ----------------------------------------------------------------------

ADD_BY_SMS = {
    "vi": ("xin chào", "1", "700000001", "482913", "1", "Lê Thị Cúc 714 555 0177", "không có", "1", "1 3", "có"),
    "en": ("hello", "1", "700000002", "731562", "1", "Maria Cruz 626 555 0199", "no", "2", "1 2", "yes"),
}


# the targets; the English welcome holds the whole six-entry main menu in one GSM-7 segment (160
# characters), the Vietnamese one the part of the menu that fits beside it in two
@pytest.mark.parametrize(("locale", "budget"), [("vi", 14), ("en", 10)])
def test_adding_a_contact_by_sms_costs_at_most_its_budget_of_segments(
    client: TestClient, sms_app: App, locale: str, budget: int
) -> None:
    """The whole conversation, first message to saved, one SMS a turn, counted as carriers count
    segments (fdf572a: 23 in Vietnamese, 17 in English)."""
    phone = Phone(client, "+17145550177" if locale == "en" else "+17145550166")
    bodies = [phone.sms(text) or "" for text in ADD_BY_SMS[locale]]
    assert all(bodies) and len(bodies) == 10
    assert sum(count_segments(body).count for body in bodies) <= budget, bodies
    assert all(count_segments(body).count <= 2 for body in bodies)
    if locale == "en":
        assert all(count_segments(body).encoding == "GSM-7" for body in bodies)  # no Vietnamese letter
    assert ("Đã lưu" if locale == "vi" else "Saved") in bodies[-1]


def test_a_bare_dung_is_the_opt_out_word_even_at_a_yes_no_question_and_dung_with_marks_is_yes(
    client: TestClient, sms_app: App
) -> None:
    """Typed without marks, "dung" may be "dừng" (stop) or "đúng" (right): a request to stop is honoured
    wherever it comes (the change asked about is not saved, and the reply says how to opt in again).
    "đúng" with its marks, and "ngừng ạ" with a particle, are read as they are meant."""
    phone = Phone(client, "+17145550155")
    before = contact_accounts(sms_app, "Trần Thị Bích")
    for text in ("xin chào", "1", "700000001", "482913", "2", "2", "1"):
        phone.sms(text)
    assert (phone.sms("dung") or "").startswith("SCE: quý vị sẽ không nhận tin")
    assert len(rows(sms_app, OptOut)) == 1 and contact_accounts(sms_app, "Trần Thị Bích") == before
    assert "BẮT ĐẦU" in (phone.sms("xin chào") or "")  # opted out: the reminder, no dialog
    assert (phone.sms("bắt đầu nhé") or "").startswith("SCE: quý vị sẽ nhận lại tin")
    for text in ("2", "2", "1"):  # still verified, at the contacts menu
        phone.sms(text)
    assert "Đã thêm Trần Thị Bích" in (phone.sms("đúng ạ") or "")
    assert contact_accounts(sms_app, "Trần Thị Bích") != before
    for text in ("2", "1", "3"):  # Nguyễn Văn An onto *1003 too: "dạ dung" is "dạ đúng", a yes
        phone.sms(text)
    assert "Đã thêm" in (phone.sms("dạ dung") or "") and rows(sms_app, OptOut) == []  # opted in again above
    assert (phone.sms("Ngừng ạ") or "").startswith("SCE: quý vị sẽ không nhận tin")
    assert len(rows(sms_app, OptOut)) == 1


def test_help_at_a_read_back_too_long_to_hold_it_is_said_alone_and_a_hint_is_left_out(
    client: TestClient, sms_app: App
) -> None:
    """At a read-back that fills its two segments, "?" asks how to answer the message just before:
    the help alone says it. A wrong answer there gets the read-back again, whose "C/K" is the hint."""
    phone = Phone(client, "+17145550157")
    for text in ("xin chào", "1", "700000001", "482913", "4", "1"):
        phone.sms(text)
    readback = phone.sms("1") or ""
    assert readback == "Xóa Nguyễn Văn An khỏi *1001? Nếu xóa, sẽ không còn ai nhận cảnh báo cho tài khoản *1001. C/K"
    assert phone.sms("?") == "C: lưu thay đổi này. K: không lưu. 0: quay lại. X: hủy."
    assert (phone.sms("giúp") or "").endswith("?: xem hướng dẫn.")  # the carriers' HELP: the program notice
    assert phone.sms("abc") == readback
    assert "Đã xóa Nguyễn Văn An khỏi 1 tài khoản dịch vụ." in (phone.sms("có") or "")
    assert contact_accounts(sms_app, "Nguyễn Văn An") == ["3-001-1002"]


# --- every reply within two segments, for long names and many service accounts ---------------------

LONG_NAMES = {  # (customer, code, business name, service accounts, contact)
    "vi": ("700000021", "135246", "Cơm Tấm Sài Gòn Restaurant", 12, "Phạm Thị Hương Giang"),
    "en": ("700000022", "DA1234", "Sunrise Wholesale Bakery Inc", 100, "Nguyễn Thị Thanh Thủy"),
}
LONG_CONVERSATIONS = {
    "vi": (
        *("xin chào", "1", "700000021", "135246", "1", "Lê Thị Cúc 714 555 0177", "không có", "1", "tất cả", "có"),
        *("6", "tiếp", "0", "4", "1", "2 5", "?", "giúp", "?", "có", "5", "1", "1", "có"),
    ),
    "en": (
        *("hello", "1", "700000022", "DA 1234", "1", "Maria Cruz 626 555 0199", "no", "2", "1-40", "yes"),
        *("6", "0", "4", "2", "3 50 99", "?", "yes", "3", "1", "2", "626 555 0166", "yes"),
    ),
}


def long_names_file(path: Path) -> Path:
    """Two businesses with long names, one with 12 and one with 100 service accounts, each with one
    contact whose name is written in Vietnamese letters (so even an English SMS about it is UCS-2)."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(DEMO.read_text(encoding="utf-8").splitlines()[0].split(","))
        for locale, (customer, code, business, count, contact) in LONG_NAMES.items():
            for i in range(count):
                account = f"7-{customer[-2:]}-{i:04d}"
                address = f"{10000 + i} North Harbor Boulevard Suite {i}, Fullerton"
                phone = "(714) 555-0141" if locale == "vi" else "(714) 555-0142"
                out.writerow([customer, code, business, account, address, "B007", "90", contact, phone, "", locale])
    return path


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_every_reply_fits_two_segments_with_long_names_and_many_service_accounts(
    client: TestClient, sms_app: App, tmp_path: Path, locale: str
) -> None:
    """A long business name in the "verified" heading, a contact's name in Vietnamese letters in English
    read-backs and saves, a contact on every one of 100 service accounts in the contacts list, a
    read-back of 40 chosen accounts, ? at read-backs: every SMS stays within two segments, and each step
    still works (an access code of letters and digits typed in two groups, "DA 1234", too)."""
    assert import_file(sms_app.db, sms_app.hasher, long_names_file(tmp_path / "long.csv")).imported
    phone = Phone(client, "+17145550131" if locale == "vi" else "+17145550132")
    bodies = [(text, phone.sms(text) or "") for text in LONG_CONVERSATIONS[locale]]
    for text, body in bodies:
        assert body and count_segments(body).count <= 2, (text, body)
    said = "\n".join(body for _, body in bodies)
    if locale == "vi":
        assert "Đã xác minh" in said and said.count("Đã lưu") + said.count("Đã xóa") + said.count("Đã thêm") >= 3
    else:
        assert "Verified: Sunrise Wholesale Bakery Inc. Please choose:" in said
        assert "*0000, *0001, *0002 and 37 more" in said  # 40 accounts read back in a line
        assert "from *0002, *0049, *0098?" in said and "Maria Cruz, (626) 555-0199: 40 service accounts" in said
        # a name in Vietnamese letters makes the English SMS UCS-2: the line after the save is the short one
        assert "Nguyễn Thị Thanh Thủy was removed from 3 service accounts.\n? shows the contacts menu." in said
        assert said.count("Saved.") >= 3
