"""bot.storage.subscriptions: which outages concern an address, and its group subscriptions."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from bot.app import App
from bot.storage import subscriptions
from bot.storage.models import Contact
from dialogs.ports import Subscribed
from tests.bot.test_status import AN, STRANGER, add_alert
from tests.conftest import Clock


def test_only_announced_unanswered_unstopped_unfinished_outages_count(app: App, clock: Clock) -> None:
    now = clock.now
    planned = add_alert(app, "advance", ["A012", "B021"], now + timedelta(hours=2), 4)
    under_way = add_alert(app, "started", ["A013"], now - timedelta(hours=1), 4)
    answered = add_alert(app, "started", ["A012"], now - timedelta(hours=2), 5)
    add_alert(app, "restored", ["A012"], now, 0.1, follows_id=answered)
    still_on = add_alert(app, "started", ["A013"], now - timedelta(hours=2), 5)
    add_alert(app, "restored", ["A013"], now, 0.1, follows_id=still_on, status="cancelled")  # the answer was stopped
    add_alert(app, "advance", ["A012"], now, 1, status="cancelled")
    add_alert(app, "started", ["A012"], now - timedelta(hours=3), 3)  # ends now: over
    add_alert(app, "test", ["A012"], now, 1)
    add_alert(app, "advance", ["C104"], now, 1)  # not An's group
    with app.db.engine.connect() as conn:
        mine = subscriptions.status_for(conn, "sms", AN, now)
        group = subscriptions.group_status(conn, "B021", now)
        nobody = subscriptions.status_for(conn, "sms", STRANGER, now)
    assert mine.groups == ("A012", "A013")
    assert [(a.id, a.groups, a.accounts) for a in mine.alerts] == [
        (still_on, ("A013",), ("3-001-1002",)),
        (under_way, ("A013",), ("3-001-1002",)),
        (planned, ("A012",), ("3-001-1001",)),  # B021 is not An's: not named
    ]
    assert [(a.id, a.groups, a.accounts) for a in group] == [(planned, ("B021",), ())]
    assert nobody.groups == () and nobody.alerts == ()


def test_a_linked_telegram_chat_and_a_subscription_add_their_groups(app: App, clock: Clock) -> None:
    with app.db.engine.begin() as conn:
        conn.execute(update(Contact).where(Contact.phone == AN).values(telegram_chat_id=4242))
        assert subscriptions.subscribe(conn, "telegram", "4242", "C104", "vi", clock.now, 10) is Subscribed.SAVED
        status = subscriptions.status_for(conn, "telegram", "4242", clock.now)
        assert subscriptions.status_for(conn, "telegram", "not-a-chat", clock.now).groups == ()
    assert status.groups == ("A012", "A013", "C104")


def test_subscribe_and_unsubscribe(app: App, clock: Clock) -> None:
    with app.db.engine.begin() as conn:
        add = subscriptions.subscribe
        assert add(conn, "sms", STRANGER, "A012", "en", clock.now, 2) is Subscribed.SAVED
        assert add(conn, "sms", STRANGER, "A012", "en", clock.now, 2) is Subscribed.ALREADY
        assert add(conn, "sms", STRANGER, "Z999", "en", clock.now, 2) is Subscribed.UNKNOWN_GROUP
        assert add(conn, "sms", STRANGER, "A013", "en", clock.now, 2) is Subscribed.SAVED
        assert add(conn, "sms", STRANGER, "B021", "en", clock.now, 2) is Subscribed.TOO_MANY
        assert add(conn, "sms", AN, "B021", "en", clock.now, 2) is Subscribed.SAVED  # per address
        assert subscriptions.subscribed_groups(conn, "sms", STRANGER) == ["A012", "A013"]
        assert subscriptions.unsubscribe(conn, "sms", STRANGER, "A012") is Subscribed.SAVED
        assert subscriptions.unsubscribe(conn, "sms", STRANGER, "A012") is Subscribed.NOT_SUBSCRIBED
        assert subscriptions.subscribed_groups(conn, "sms", STRANGER) == ["A013"]
        assert subscriptions.group_exists(conn, "C105") and not subscriptions.group_exists(conn, "c105")
