"""Composition root: builds the running pieces from one :class:`Settings` object."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from bot.config import Settings
from bot.conversation import Clock, Conversation, utc_now
from bot.i18n import Catalogs
from bot.security import CodeHasher, FailureAlarm
from bot.storage.accounts import LockoutPolicy
from bot.storage.db import Database, make_engine, migrate
from dialogs.engine import Engine
from dialogs.graph import build_engine

log = logging.getLogger(__name__)


@dataclass
class App:
    """Everything a channel or command needs, built once."""

    settings: Settings
    db: Database
    catalogs: Catalogs
    engine: Engine
    hasher: CodeHasher
    conversation: Conversation

    def close(self) -> None:
        """Release database connections."""
        self.db.close()


def build(settings: Settings, clock: Clock = utc_now, migrate_db: bool = True) -> App:
    """Build the application: migrate the database, load and check catalogs and the dialog graph."""
    engine = make_engine(settings.database_url)
    if migrate_db:
        migrate(engine)
    db = Database(engine)
    catalogs = Catalogs()
    dialogs = build_engine(settings.dialog_settings())
    dialogs.check_catalog(catalogs.has)
    hasher = CodeHasher(settings.pepper.get_secret_value().encode("utf-8"), settings.scrypt_n)
    policy = LockoutPolicy(
        account_failures=settings.lockout_failures,
        account_lock=timedelta(minutes=settings.lockout_minutes),
        address_failures=settings.address_max_failures,
        address_window=timedelta(minutes=settings.address_window_minutes),
    )
    alarm = FailureAlarm(settings.global_failure_alarm_per_minute)
    conversation = Conversation(db, dialogs, hasher, policy, clock=clock, alarm=alarm)
    return App(settings, db, catalogs, dialogs, hasher, conversation)
