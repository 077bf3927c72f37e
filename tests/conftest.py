"""Shared fixtures: a real database (a SQLite file, and PostgreSQL), a clock, a chat.

Every test that touches storage runs on SQLite and again on PostgreSQL: a throwaway server that this
test run starts from the installed binaries (``tests/pg.py``), or the server named by
``OUTAGEBOT_TEST_POSTGRES_URL`` when that is set. Without PostgreSQL installed those runs are skipped
(under ``CI=true`` they fail instead). Nothing of our own is mocked: the chat helper drives
``Conversation.handle`` exactly as a channel does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.app import App, build
from bot.channels.base import Inbound, render_text
from bot.config import Settings
from bot.importer import import_file
from bot.storage.db import make_engine, migrate
from dialogs.engine import Reply
from tests.pg import ThrowawayPostgres, find_pg_ctl

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "bot" / "demo_accounts.csv"
PG_URL = os.environ.get("OUTAGEBOT_TEST_POSTGRES_URL")
PG_CTL = find_pg_ctl()
PG_MISSING = None if PG_URL or PG_CTL else "PostgreSQL is not installed (no pg_ctl found)"
TABLES = (
    "audit_log",
    "import_snapshots",
    "contact_assignments",
    "contacts",
    "sessions",
    "service_accounts",
    "customer_accounts",
    "processed_messages",
    "opt_outs",
    "outbound_messages",
    "alerts",
    "alert_groups",
    "subscriptions",
)


class Clock:
    """An injected clock that only moves when a test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()  # the last connection to close folds the WAL into the file
    return path


def need_postgres() -> None:
    """Skip (or, under CI, fail) a test that needs PostgreSQL when it is not installed."""
    if PG_MISSING:
        if os.environ.get("CI"):
            pytest.fail(PG_MISSING)
        pytest.skip(PG_MISSING)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayPostgres]:
    """This test run's own PostgreSQL server (fsync off: nothing here needs to survive a power cut)."""
    need_postgres()
    assert PG_CTL is not None
    server = ThrowawayPostgres(PG_CTL).start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def pg_migrated(request: pytest.FixtureRequest) -> str:
    url = PG_URL
    if not url:
        url = request.getfixturevalue("pg_server").create_database("outagebot_test")
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def _params() -> list[object]:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=[pytest.mark.postgres]),
    ]


@pytest.fixture(params=_params())
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A migrated, empty database: a fresh SQLite file, or the PostgreSQL test database truncated."""
    if request.param == "sqlite":
        path = tmp_path / "outagebot.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    need_postgres()
    url = request.getfixturevalue("pg_migrated")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Test settings: a cheap scrypt so that suites stay fast; everything else as in production."""
    values: dict[str, object] = {"database_url": database_url, "pepper": "test-pepper", "scrypt_n": 16}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def empty_app(database_url: str) -> Iterator[App]:
    """The application on an empty database (nothing imported yet; the real clock)."""
    application = build(make_settings(database_url), migrate_db=False)
    yield application
    application.close()


@pytest.fixture
def app(database_url: str, clock: Clock) -> Iterator[App]:
    """The application on a database holding the demo accounts."""
    application = build(make_settings(database_url), clock=clock, migrate_db=False)
    import_file(application.db, application.hasher, DEMO)
    yield application
    application.close()


@dataclass
class Chat:
    """One customer talking to the bot through ``Conversation.handle``, as a channel would."""

    app: App
    address: str = "+17145550123"
    channel: str = "console"
    locale_hint: str | None = None
    last: Reply | None = None
    last_text: str = ""

    def say(self, text: str) -> str:
        """Send ``text``; returns the whole rendered reply as one string."""
        self.last = self.app.conversation.handle(
            Inbound(self.channel, self.address, text, locale_hint=self.locale_hint)
        )
        self.last_text = "\n".join(render_text(self.last, self.app.catalogs))
        return self.last_text

    @property
    def state(self) -> str:
        """The state the last reply left the conversation in ("" before the first message)."""
        return self.last.state if self.last is not None else ""

    def run(self, *texts: str) -> str:
        """Send several messages; returns the last reply."""
        reply = ""
        for t in texts:
            reply = self.say(t)
        return reply


@pytest.fixture
def chat(app: App) -> Chat:
    return Chat(app)


def verified_chat(
    app: App, locale: str = "en", account: str = "700000001", code: str = "482913", address: str = "+17145550123"
) -> Chat:
    """A chat that has chosen ``locale`` and verified ``account``; it stands at the contacts menu."""
    c = Chat(app, address=address)
    c.say("")
    c.say("1" if locale == "vi" else "2")
    c.run("1", account, code)
    assert c.state == "contacts.menu", c.say("")
    return c


@pytest.fixture(scope="session")
def twilio_api() -> Iterator[str]:
    """Twilio's REST API as Prism serves it from Twilio's spec, behind our fault layer."""
    from tests.peers import twilio

    if not twilio.PRISM.exists() or not twilio.SPEC.exists():
        message = f"Twilio stand-in not installed (run: npm ci): {twilio.describe()}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: a missing peer is a broken run, not a skip
        pytest.skip(message)
    prism = twilio.start_prism()
    upstream = next(prism)
    layer = twilio.start_fault_layer(upstream)
    yield next(layer)
    for generator in (layer, prism):
        with contextlib.suppress(StopIteration):
            next(generator)


@dataclass(frozen=True)
class TelegramPeers:
    """telegram-test-api (the user's side: ``standin``) and the repairing proxy the bot talks to."""

    standin: str
    api: str
    observed: Any


@pytest.fixture(scope="session")
def telegram_api() -> Iterator[TelegramPeers]:
    """Telegram's Bot API as telegram-test-api plays it, behind the tests' repairing proxy."""
    from tests.peers import telegram

    if not (telegram.NODE_MODULES / "telegram-test-api").exists():
        message = "Telegram stand-in not installed (run: npm ci)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    observed = telegram.Observed()
    standin = telegram.start_standin()
    upstream = next(standin)
    proxy = telegram.start_proxy(upstream, observed)
    yield TelegramPeers(upstream, next(proxy), observed)
    for generator in (proxy, standin):
        with contextlib.suppress(StopIteration):
            next(generator)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """One line at the end: what this machine let the run cover, and what it skipped and why."""
    from tests.peers import twilio

    skipped = terminalreporter.stats.get("skipped", [])
    reasons: dict[str, int] = {}
    for report in skipped:
        longrepr = report.longrepr
        reason = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr).removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    postgres = ("PostgreSQL " + ("(the given server)" if PG_URL else "(throwaway servers)")) if not PG_MISSING else None
    prism = "the Twilio stand-in" if twilio.PRISM.exists() and twilio.SPEC.exists() else None
    standin = "the Telegram stand-in" if (ROOT / "node_modules" / "telegram-test-api").exists() else None
    covered = ", ".join(part for part in ("SQLite", postgres, prism, standin) if part)
    missing = "; ".join(f"{n} skipped: {reason}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    terminalreporter.write_line(f"outagebot: ran on {covered}; " + (missing or "nothing skipped"))
