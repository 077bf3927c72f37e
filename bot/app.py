"""Composition root: builds the running pieces from one :class:`Settings` object."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from bot.channels.base import fits_budget
from bot.config import Settings
from bot.conversation import Clock, Conversation, utc_now
from bot.i18n import Catalogs
from bot.security import CodeHasher, FailureAlarm
from bot.storage.accounts import ContactLimits, LockoutPolicy
from bot.storage.db import Database, Waits, make_engine, migrate
from bot.storage.models import CustomerAccount
from dialogs.engine import Engine
from dialogs.graph import build_engine

log = logging.getLogger(__name__)
CALIBRATION_SAMPLE = 500


@dataclass
class App:
    """Everything a channel or command needs, built once."""

    settings: Settings
    db: Database
    catalogs: Catalogs
    engine: Engine
    hasher: CodeHasher
    conversation: Conversation

    def calibrate(self) -> None:
        """Make an unknown account cost what the stored access-code hashes cost (a random sample)."""
        column = CustomerAccount.__table__.c.access_code_hash
        sample = select(column).order_by(func.random()).limit(CALIBRATION_SAMPLE)
        try:
            hashes = self.db.read(lambda conn: [row[0] for row in conn.execute(sample)])
        except Exception as exc:  # an unmigrated or unreachable database: keep today's cost
            log.warning("could not sample access-code hashes: %s", type(exc).__name__)
            return
        self.hasher.calibrate(hashes)

    def close(self) -> None:
        """Release database connections."""
        self.db.close()


def waits(settings: Settings) -> Waits:
    """The turn path's time limits."""
    return Waits(lock_seconds=settings.db_lock_timeout_seconds, statement_seconds=settings.db_statement_timeout_seconds)


def build(
    settings: Settings,
    clock: Clock = utc_now,
    migrate_db: bool = True,
    *,
    pepper: bytes | None = None,
    limits: Waits | None = None,
) -> App:
    """Build the application: migrate the database, load and check catalogs and the dialog graph.

    ``pepper`` defaults to the configured one (:meth:`Settings.resolve_pepper`); without one this
    raises :class:`bot.config.ConfigError`. ``limits`` default to the turn path's (``waits``); batch
    commands pass longer ones (``bot.storage.db.BATCH_WAITS``).
    """
    if pepper is None:
        pepper, _created = settings.resolve_pepper()
    limits = limits or waits(settings)
    engine = make_engine(settings.database_url, limits, pool_size=settings.db_pool_size + 2)
    if migrate_db:
        migrate(engine)
    db = Database(engine, limits)
    catalogs = Catalogs(zone=settings.zone)
    dialogs = build_engine(settings.dialog_settings(), labels=catalogs.everywhere, fits=fits_budget(catalogs))
    dialogs.check_catalog(catalogs.has)
    hasher = CodeHasher(pepper, settings.scrypt_n)
    policy = LockoutPolicy(
        account_failures=settings.lockout_failures,
        account_lock=timedelta(minutes=settings.lockout_minutes),
        address_failures=settings.address_max_failures,
        address_window=timedelta(minutes=settings.address_window_minutes),
    )
    alarm = FailureAlarm(settings.global_failure_alarm_per_minute)
    contact_limits = ContactLimits(
        max_contacts=settings.max_contacts_per_customer, notices_per_hour=settings.notices_per_customer_per_hour
    )
    conversation = Conversation(db, dialogs, hasher, policy, clock=clock, alarm=alarm, limits=contact_limits)
    app = App(settings, db, catalogs, dialogs, hasher, conversation)
    app.calibrate()
    return app
