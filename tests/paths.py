"""A scripted path to every state of the dialog graph, on the demo data, in either language.

Customer 700000001 (Phở Bolsa LLC) has three service accounts (*1001, *1002, *1003) and two contacts,
listed by name: 1 Nguyễn Văn An (on *1001 and *1002) and 2 Trần Thị Bích (on *1002). No path writes
anything but its own session row: each stops before the confirmation that would save. The status
and subscription paths (from an SMS number, since alerts cannot reach the terminal) find one rotating
outage in A012 and, for the number's own path to ``subs.remove``, its subscription to C104, both
written before its first message.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select

from bot.app import App, build
from bot.importer import import_file
from bot.storage.models import Alert, AlertGroup, Subscription
from tests.conftest import DEMO, Chat, Clock, make_settings, verified_chat

LANGUAGE_ANSWER = {"vi": "1", "en": "2"}
UNVERIFIED: dict[str, tuple[str, ...]] = {
    "start.language": (),
    "menu": ("{lang}",),
    "verify.account": ("{lang}", "1"),
    "verify.code": ("{lang}", "1", "700000001"),
}
# from the contacts menu of a verified session
VERIFIED: dict[str, tuple[str, ...]] = {
    "contacts.menu": (),
    "list.contacts": ("6",),
    "add.name": ("1",),
    "add.phone": ("1", "Lê Thị Cúc"),
    "add.email": ("1", "Lê Thị Cúc", "(626) 555-0177"),
    "add.language": ("1", "Lê Thị Cúc", "(626) 555-0177", "n"),
    "add.accounts": ("1", "Lê Thị Cúc", "(626) 555-0177", "n", "1"),
    "add.confirm": ("1", "Lê Thị Cúc", "(626) 555-0177", "n", "1", "1,3"),
    "link.contact": ("2",),
    "link.accounts": ("2", "2"),
    "link.confirm": ("2", "2", "1"),
    "edit.contact": ("3",),
    "edit.field": ("3", "1"),
    "edit.name": ("3", "1", "1"),
    "edit.phone": ("3", "1", "2"),
    "edit.email": ("3", "1", "3"),
    "edit.language": ("3", "1", "4"),
    "edit.confirm": ("3", "1", "1", "Nguyễn Văn Ân"),
    "unlink.contact": ("4",),
    "unlink.accounts": ("4", "1"),
    "unlink.confirm": ("4", "1", "1"),
    "all.action": ("5",),
    "all.contacts": ("5", "1"),
    "all.confirm": ("5", "1", "1,2"),
}
# from the main menu, by SMS
SUBSCRIBER: dict[str, tuple[str, ...]] = {
    "status.group": ("5",),
    "status.list": ("STATUS A012",),
    "subs.menu": ("6",),
    "subs.add": ("6", "1"),
    "subs.remove": ("6", "2"),
    "subs.confirm": ("JOIN A012",),
}
STATES = (*UNVERIFIED, *VERIFIED, *SUBSCRIBER)


def _outage_and_subscription(app: App, address: str, subscribed: bool) -> None:
    """One rotating outage in A012 (planned from the clock's now, for a long while), once; and the
    address's subscription to C104."""
    now = app.conversation.clock()
    with app.db.engine.begin() as conn:
        if conn.execute(select(AlertGroup.outage_group).where(AlertGroup.outage_group == "A012")).first() is None:
            row = {"kind": "advance", "starts_at": now + timedelta(hours=2), "ends_at": now + timedelta(days=3650)}
            row |= {"status": "sending", "recipients": 0, "created_by": "tests.paths", "created_at": now}
            alert = conn.execute(insert(Alert).values(**row).returning(Alert.id)).scalar_one()
            conn.execute(insert(AlertGroup).values(alert_id=alert, outage_group="A012"))
        if subscribed:
            conn.execute(
                insert(Subscription).values(
                    channel="sms", address=address, outage_group="C104", locale="en", created_at=now
                )
            )


def chat_at(app: App, state: str, locale: str, address: str = "+17145550123") -> Chat:
    """A chat in ``locale`` standing at ``state`` (its question was the last reply)."""
    if state in VERIFIED:
        chat = verified_chat(app, locale, address=address)
        chat.run(*VERIFIED[state])
    elif state in SUBSCRIBER:
        _outage_and_subscription(app, address, subscribed=state == "subs.remove")
        chat = Chat(app, address=address, channel="sms", locale_hint=locale)
        chat.say("")
        chat.run(LANGUAGE_ANSWER[locale], *SUBSCRIBER[state])
    else:
        chat = Chat(app, address=address, locale_hint=locale)
        chat.say("")
        chat.run(*(step.format(lang=LANGUAGE_ANSWER[locale]) for step in UNVERIFIED[state]))
    assert chat.state == state, (state, chat.last_text)
    assert chat.last is not None and chat.last.locale == locale
    return chat


@contextmanager
def demo_app_on_sqlite(template: Path, folder: Path, clock: Clock) -> Iterator[App]:
    """The application on a fresh SQLite file (a copy of the migrated template) with the demo data.

    For tests of what a turn does with text, which no database changes: they run on SQLite only.
    """
    path = folder / "outagebot.db"
    shutil.copy(template, path)
    app = build(make_settings(f"sqlite:///{path}"), clock=clock, migrate_db=False)
    try:
        import_file(app.db, app.hasher, DEMO)
        yield app
    finally:
        app.close()
