"""STATUS and group alerts without an account: dialog tables in both languages, on a real database.

Alerts are written as rows here (issuing them is another module's work): the demo's contacts are
Nguyễn Văn An (+17145550101: *1001 in A012, *1002 in A013), Trần Thị Bích (+17145550102: *1002 in
A013) and Maria Lopez (+16265550100: *2001 in C104). The clock stands at Fri 27 Nov 2026, 14:00 in
Los Angeles (22:00 UTC).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from starlette.testclient import TestClient

from bot.app import App
from bot.channels.segments import count_segments
from bot.storage.models import Alert, AlertGroup, AuditEntry, Subscription
from bot.web import create_web
from tests.bot.test_web import TWILIO, Phone
from tests.conftest import DEMO, Chat, Clock, make_settings

AN, BICH, STRANGER = "+17145550101", "+17145550102", "+17145559999"


def add_alert(app: App, kind: str, groups: list[str], start: datetime, hours: float, **values: Any) -> int:
    """One alert row, as the alert-issuing code will write it."""
    with app.db.engine.begin() as conn:
        row = {
            "kind": kind,
            "starts_at": start,
            "ends_at": start + timedelta(hours=hours),
            "status": "sending",
            "recipients": 0,
            "created_by": "test",
            "created_at": start - timedelta(hours=1),
            **values,
        }
        alert_id = int(conn.execute(insert(Alert).values(**row).returning(Alert.id)).scalar_one())
        conn.execute(insert(AlertGroup), [{"alert_id": alert_id, "outage_group": g} for g in groups])
    return alert_id


@pytest.fixture
def outages(app: App, clock: Clock) -> dict[str, int]:
    """A planned outage in A012 at 16:00-20:00, one under way in A013 since 13:00, and some that are not
    active: answered by a restoration, stopped by the operator, over, a test, and one in C104 and B021."""
    now = clock.now
    ids = {
        "planned": add_alert(
            app, "advance", ["A012"], now + timedelta(hours=2), 4, note_en="Heat wave.", note_vi="Nắng nóng."
        ),
        "under_way": add_alert(app, "started", ["A013"], now - timedelta(hours=1), 4),
        "restored": add_alert(app, "started", ["A012"], now - timedelta(hours=2), 5),
        "stopped": add_alert(app, "advance", ["A013"], now + timedelta(hours=1), 2, status="cancelled"),
        "over": add_alert(app, "started", ["A012"], now - timedelta(hours=5), 2),
        "test": add_alert(app, "test", ["A012"], now, 1),
    }
    add_alert(app, "restored", ["A012"], now - timedelta(minutes=30), 0.1, follows_id=ids["restored"])
    return ids


def subscriptions(app: App) -> list[tuple[str, str, str, str]]:
    with app.db.engine.connect() as conn:
        rows = conn.execute(
            select(Subscription.channel, Subscription.address, Subscription.outage_group, Subscription.locale).order_by(
                Subscription.id
            )
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def audit(app: App, prefix: str = "subscription.") -> list[tuple[str, str, str, dict[str, Any]]]:
    with app.db.engine.connect() as conn:
        rows = conn.execute(
            select(AuditEntry.action, AuditEntry.channel, AuditEntry.address, AuditEntry.details)
            .where(AuditEntry.action.like(prefix + "%"))
            .order_by(AuditEntry.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def walk(chat: Chat, steps: list[tuple[str, str, list[str]]]) -> None:
    for text, state, words in steps:
        reply = chat.say(text)
        assert chat.state == state, f"after {text!r}: {reply}"
        for word in words:
            assert word in reply, f"after {text!r} expected {word!r} in:\n{reply}"


# -- STATUS ----------------------------------------------------------------------------------------

CONTACT_WITH_ALERTS = {
    "en": [
        (
            "STATUS",
            "status.list",
            [
                "Rotating outages in your groups:",
                "1 A013 in progress: Fri, Nov 27, 1:00 - 5:00 PM, *1002",
                "2 A012 planned: Fri, Nov 27, 4:00 - 8:00 PM, *1001",
                "3 Another group",
            ],
        ),
        ("2", "status.list", ["Heat wave.\nRotating outages in your groups:"]),
        ("3", "status.group", ["Which rotating outage group?"]),
    ],
    "vi": [
        (
            "tình trạng",
            "status.list",
            [
                "Cắt điện luân phiên ở các nhóm của quý khách:",
                "1 A013 đang cắt điện: Thứ 6, 27 thg 11, 13:00-17:00, *1002\nTIẾP: xem thêm (1/3)",
            ],
        ),  # two SMS segments of Vietnamese hold one row: the rest comes a page at a time
        ("tiếp", "status.list", ["2 A012 dự kiến: Thứ 6, 27 thg 11, 16:00-20:00, *1001\nTIẾP: xem thêm (2/3)"]),
        ("2", "status.list", ["Nắng nóng."]),
        ("1", "status.list", ["Không có thêm chi tiết. Hỗ Trợ Khách Hàng: 1-800-990-7788\n2 A012"]),
    ],
}


@pytest.mark.parametrize("locale", ["en", "vi"])
def test_a_contacts_number_sees_its_groups_outages_with_its_own_accounts(
    app: App, outages: dict[str, int], locale: str
) -> None:
    chat = Chat(app, address=AN, channel="sms")
    walk(chat, CONTACT_WITH_ALERTS[locale])


@pytest.mark.parametrize(
    ("locale", "first", "words"),
    [
        ("en", "status", "There is no rotating outage planned for your groups (A012, A013) now."),
        ("vi", "TINH TRANG", "Hiện không có kế hoạch cắt điện luân phiên cho các nhóm của quý khách (A012, A013)."),
    ],
)
def test_a_contact_without_outages_is_told_so(app: App, locale: str, first: str, words: str) -> None:
    chat = Chat(app, address=AN, channel="sms")
    assert words in chat.say(first)
    assert chat.state == "menu" and chat.last is not None and chat.last.locale == locale


STRANGER_ASKS = {
    "en": [
        ("hello", "menu", ["(Tieng Viet: VI):", "5 Outage status\n6 Group alerts"]),
        ("5", "status.group", ["Which rotating outage group? It is printed on your bill"]),
        ("Z 999", "status.group", ["There is no rotating outage group Z999. Please check your bill."]),
        ("hello", "status.group", ["Hello!"]),
        ("!!", "status.group", ["Please type the rotating outage group as printed on your bill"]),
        (
            "a 012",
            "status.list",
            [
                "Rotating outages, group A012:",
                "1 A012 planned: Fri, Nov 27, 4:00 - 8:00 PM\n2 Get alerts for group A012",
            ],
        ),
        ("2", "subs.confirm", ["Get rotating outage alerts for group A012 on this number? Y/N"]),
        ("y", "menu", ["Saved. Alerts for group A012 will come on this number. To stop them: LEAVE A012"]),
    ],
    "vi": [
        ("xin chào", "menu", ["Xin chào quý khách!", "3 Trạm Làm Mát\nTIẾP: xem tất cả"]),  # 2 segments: 3 rows
        ("tiếp", "menu", ["Menu chính:", "5 Tình trạng cắt điện\n6 Cảnh báo theo nhóm"]),
        ("tình trạng cắt điện", "status.group", ["Nhóm cắt điện luân phiên nào?"]),
        ("nhóm a012", "status.list", ["Cắt điện luân phiên, nhóm A012:", "2 Nhận cảnh báo cho nhóm A012"]),
        ("2", "subs.confirm", ["Nhận cảnh báo cắt điện luân phiên cho nhóm A012 qua số này? C/K"]),
        ("dạ có", "menu", ["Đã lưu.", "Để ngừng nhận: BỎ THEO DÕI A012"]),
    ],
}


@pytest.mark.parametrize("locale", ["en", "vi"])
def test_a_stranger_asks_for_a_group_sees_only_group_facts_and_may_subscribe(
    app: App, outages: dict[str, int], locale: str
) -> None:
    chat = Chat(app, address=STRANGER, channel="sms")
    walk(chat, STRANGER_ASKS[locale])
    assert "*1001" not in chat.last_text and "Bolsa" not in chat.last_text
    assert subscriptions(app) == [("sms", STRANGER, "A012", locale)]
    assert audit(app) == [("subscription.add", "sms", STRANGER, {"group": "A012", "locale": locale})]
    # now a subscriber: STATUS answers for the subscribed group at once, still without accounts
    reply = chat.say("STATUS")
    assert chat.state == "status.list" and "A012" in reply and "*1001" not in reply and "A013" not in reply


def test_a_group_without_outages_offers_its_alerts_as_a_yes_no_question(app: App) -> None:
    chat = Chat(app, address=STRANGER, channel="sms")
    reply = chat.say("STATUS B021")
    assert "There is no rotating outage planned for group B021 now." in reply
    assert "Get rotating outage alerts for group B021 on this number? Y/N" in reply and chat.state == "subs.confirm"
    assert "nothing was changed" in chat.say("n") and subscriptions(app) == []


def test_the_terminal_sees_the_status_but_is_offered_no_alerts(app: App, outages: dict[str, int]) -> None:
    chat = Chat(app)  # the console: no alert can reach it
    reply = chat.run("2", "STATUS", "A012")
    assert chat.state == "status.list" and "Get alerts" not in reply
    assert "Group alerts come by SMS or Telegram" in chat.say("JOIN A012") and subscriptions(app) == []


def test_status_in_the_middle_of_a_change_drops_it_and_says_so(app: App, outages: dict[str, int]) -> None:
    chat = Chat(app, address=AN, channel="sms")
    chat.run("hello", "1", "700000001", "482913", "1", "Lê Thị Cúc")
    assert chat.state == "add.phone"
    reply = chat.say("status")
    assert "Cancelled. Nothing was changed." in reply and chat.state == "status.list"


# -- subscribing and leaving -----------------------------------------------------------------------

JOIN_AND_LEAVE = {
    "en": [
        ("JOIN a012", "subs.confirm", ["Get rotating outage alerts for group A012 on this number? Y/N"]),
        ("maybe", "subs.confirm", ["Please answer Y (yes) or N (no)."]),
        ("yes", "menu", ["Saved. Alerts for group A012 will come on this number."]),
        ("join A012", "menu", ["You already get alerts for group A012 on this number."]),
        ("join", "subs.add", ["Which rotating outage group?"]),
        ("Q123", "subs.add", ["There is no rotating outage group Q123."]),
        ("C104", "subs.confirm", ["group C104"]),
        ("ok", "menu", ["Saved."]),
        (
            "6",
            "subs.menu",
            ["Alerts on this number for groups: A012, C104", "1 Get alerts for a group", "2 Stop alerts for a group"],
        ),
        ("2", "subs.remove", ["Stop alerts for which group?\n1 A012\n2 C104"]),
        ("c104", "subs.confirm", ["Stop rotating outage alerts for group C104 on this number? Y/N"]),
        ("y", "menu", ["Done. No more alerts for group C104 on this number."]),
        ("LEAVE B021", "menu", ["You get no alerts for group B021 on this number."]),
        ("leave A012", "subs.confirm", ["Stop rotating outage alerts for group A012"]),
        ("n", "menu", ["OK, nothing was changed."]),
    ],
    "vi": [
        ("THEO DÕI A012", "subs.confirm", ["Nhận cảnh báo cắt điện luân phiên cho nhóm A012 qua số này? C/K"]),
        ("c", "menu", ["Đã lưu. Cảnh báo cho nhóm A012 sẽ được gửi qua số này."]),
        ("theo doi nhom C 104", "subs.confirm", ["nhóm C104"]),
        ("có", "menu", ["Đã lưu."]),
        (
            "bỏ theo dõi c104",
            "subs.confirm",
            ["Bỏ theo dõi nhóm C104 qua số này? Sẽ không còn cảnh báo cắt điện luân phiên của nhóm này. C/K"],
        ),
        ("có ạ", "menu", ["Xong. Sẽ không còn cảnh báo cho nhóm C104 qua số này."]),
        ("BO THEO DOI B021", "menu", ["Quý khách không nhận cảnh báo cho nhóm B021 qua số này."]),
        ("bỏ theo dõi A012", "subs.confirm", ["nhóm A012"]),
        ("không", "menu", []),
    ],
}


@pytest.mark.parametrize("locale", ["en", "vi"])
def test_join_and_leave_are_read_back_confirmed_saved_and_audited(app: App, locale: str) -> None:
    chat = Chat(app, address=STRANGER, channel="sms", locale_hint=locale)
    walk(chat, JOIN_AND_LEAVE[locale])
    assert subscriptions(app) == [("sms", STRANGER, "A012", locale)]
    assert [(a, c, ad, d["group"]) for a, c, ad, d in audit(app)] == [
        ("subscription.add", "sms", STRANGER, "A012"),
        ("subscription.add", "sms", STRANGER, "C104"),
        ("subscription.remove", "sms", STRANGER, "C104"),
    ]


def test_leave_with_nothing_subscribed_says_so(app: App) -> None:
    chat = Chat(app, address=STRANGER, channel="sms")
    assert "You get no group alerts on this number." in chat.say("LEAVE")
    assert chat.state == "menu"


def test_at_most_ten_groups_an_address(app: App, clock: Clock) -> None:
    with app.db.engine.begin() as conn:
        conn.execute(
            insert(Subscription),
            [
                {
                    "channel": "sms",
                    "address": STRANGER,
                    "outage_group": f"X{i:03d}",
                    "locale": "en",
                    "created_at": clock.now,
                }
                for i in range(10)
            ],
        )
    chat = Chat(app, address=STRANGER, channel="sms")
    assert "You already get alerts for 10 groups, the most allowed." in chat.say("JOIN A012")
    assert len(subscriptions(app)) == 10 and audit(app) == []


def test_a_group_gone_between_the_read_back_and_the_yes_is_asked_again(app: App) -> None:
    from bot.storage.models import ServiceAccount

    chat = Chat(app, address=STRANGER, channel="sms")
    chat.say("JOIN B021")
    with app.db.engine.begin() as conn:
        conn.execute(
            ServiceAccount.__table__.update().values(outage_group="B022").where(ServiceAccount.outage_group == "B021")
        )
    assert "There is no rotating outage group B021." in chat.say("y")
    assert chat.state == "subs.add" and subscriptions(app) == []


# -- over SMS --------------------------------------------------------------------------------------


@pytest.fixture
def client(database_url: str, clock: Clock) -> Any:
    from bot.app import build
    from bot.importer import import_file

    app = build(make_settings(database_url, **TWILIO), clock=clock, migrate_db=False)
    import_file(app.db, app.hasher, DEMO)
    with TestClient(create_web(app), base_url="http://127.0.0.1:8080") as test_client:
        yield app, test_client
    app.close()


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("Status", "A013 in progress: Fri, Nov 27, 1:00 - 5:00 PM, *1002"),
        ("TÌNH TRẠNG", "A013 đang cắt điện: Thứ 6, 27 thg 11, 13:00-17:00, *1002"),
    ],
)
def test_status_over_sms_in_one_message_within_two_segments(
    client: Any, clock: Clock, word: str, expected: str
) -> None:
    app, test_client = client
    add_alert(app, "started", ["A013"], clock.now - timedelta(hours=1), 4)
    add_alert(app, "advance", ["A012"], clock.now + timedelta(hours=2), 4)
    body = Phone(test_client, AN).sms(word)
    assert body is not None and expected in body
    assert count_segments(body).count <= 2, body


def test_join_over_sms_then_stop_leaves_the_subscription_to_the_opt_out(client: Any) -> None:
    app, test_client = client
    phone = Phone(test_client, STRANGER)
    assert "A012" in (phone.sms("JOIN A012") or "")
    assert "Saved." in (phone.sms("Y") or "")  # YES is Twilio's; Y is ours
    assert subscriptions(app) == [("sms", STRANGER, "A012", "en")]
    assert phone.sms("STOP") is None  # Twilio confirms; alerts must skip an opted-out number


@pytest.mark.parametrize(
    ("locale", "status", "join", "yes"),
    [("vi", "TÌNH TRẠNG", "THEO DÕI A012", "có"), ("en", "STATUS", "JOIN A012", "y")],
)
def test_joining_the_group_offered_asks_the_same_question_without_cancelling_it(
    app: App, locale: str, status: str, join: str, yes: str
) -> None:
    """At "Get alerts for group A012? Y/N" the customer types JOIN A012: the same thing, so nothing is
    cancelled and the question stands; another group's JOIN does cancel the question first."""
    chat = Chat(app, address=STRANGER, channel="sms", locale_hint=locale)
    chat.run(status, "A012")
    assert chat.state == "subs.confirm"
    helped = chat.say("?")  # how to answer a yes/no question, not the menu's "type the number"
    assert ("C: có. K: không." if locale == "vi" else "Y: yes. N: no.") in helped and "A012" in helped
    again = chat.say(join)
    assert chat.state == "subs.confirm" and "A012" in again
    assert "Đã hủy" not in again and "Cancelled" not in again
    assert ("Đã hủy" if locale == "vi" else "Cancelled") in chat.say(join.replace("A012", "A013"))
    chat.say(yes)
    assert subscriptions(app) == [("sms", STRANGER, "A013", locale)]
