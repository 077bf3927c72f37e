"""Every log line of the process is masked: messages, arguments, exception text and tracebacks.

The lines are written through the handler that :func:`configure_logging` installs (the one the CLI
and every web worker use), into a captured standard error, exactly as an operator would read them.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from bot.logs import CHATTY, UVICORN, RateLimitedLog, configure_logging, mask_text
from bot.storage.db import make_engine, migrate
from bot.storage.models import Contact, CustomerAccount, table

NUMBER = "+16265550100"
NOW = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)

Written = Callable[[], str]
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z ", re.MULTILINE)


@pytest.fixture
def configured(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[str], Written]]:
    """``configure(level)`` sets the process's logging up; the result returns what it wrote to stderr.

    Whatever the test changed in the logging of this (test) process is put back afterwards.
    """
    root = logging.getLogger()
    names = (*UVICORN, *CHATTY, "uvicorn.access", "bot", "sqlalchemy.engine", "sqlalchemy.engine.Engine")
    saved = {name: (lg.handlers[:], lg.level, lg.propagate) for name in names for lg in [logging.getLogger(name)]}
    saved_root = (root.handlers[:], root.level)
    hooks = (sys.excepthook, threading.excepthook)

    def configure(level: str) -> Written:
        capsys.readouterr()
        configure_logging(level)  # its handler writes to sys.stderr as it is now: capsys's
        return lambda: STAMP.sub("", capsys.readouterr().err)  # the lines without their timestamps

    yield configure
    for handler in root.handlers:
        if handler not in saved_root[0]:
            handler.close()
    root.handlers[:], _ = saved_root[0], root.setLevel(saved_root[1])
    for name, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers[:], lg.propagate = handlers, propagate
        lg.setLevel(level)
    sys.excepthook, threading.excepthook = hooks


MASKED = [
    # personal data, in the forms it reaches logs in
    (f"reply sent to {NUMBER}", "reply sent to +*******0100"),
    (
        "DETAIL:  Key (customer_id, phone)=(1, +16265550100) already exists.",
        "DETAIL:  Key (customer_id, phone)=(1, +*******0100) already exists.",
    ),
    ("call (626) 555-0100", "call (***) ***-0100"),
    ("call 626.555.0100 or 626-555-0100", "call ***.***.0100 or ***-***-0100"),
    ("call 626 555 0100 or 1-626-555-0100", "call *** *** 0100 or *-***-***-0100"),
    ("+1 (626) 555-0100 / +1-626-555-0100", "+* (***) ***-0100 / +*-***-***-0100"),
    (
        "số +84 912 345 678, 0912 345 678, 0912345678, 028 3822 1234",
        "số +** *** **5 678, **** **5 678, ******5678, *** **** 1234",
    ),
    ("call 626\u00a0555\u00a00100 or 626–555–0100", "call ***\u00a0***\u00a00100 or ***–***–0100"),
    (
        "sms:+16265550100, whatsapp:+16265550100, x+16265550100",
        "sms:+*******0100, whatsapp:+*******0100, x+*******0100",
    ),
    ("bad code for customer account 700000001", "bad code for customer account *****0001"),
    ("service accounts 3-001-1001, 3-001-1002", "service accounts *-***-1001, *-***-1002"),
    ("code 482913 refused", "code **2913 refused"),
    ("contact maria.lopez@sunrise.example added", "contact ***@*** added"),
    ("POST /sms/inbound?From=%2B16265550100&To=16265550000", "POST /sms/inbound?From=%2B*******0100&To=*******0000"),
    ("form {'From': '+16265550100', 'Body': 'xin chào'}", "form {'From': '+*******0100', 'Body': 'xin chào'}"),
    # what must stay as it is: timestamps, durations, ports, addresses, status lines, ids, counts
    ("lease ends 2026-11-27 22:00:00.123456+00:00", None),
    ("at 2026-11-27T22:00:00.123456Z, 2026-11-27 22:00:00,123 and 0:00:01.234567", None),
    ("datetime.datetime(2026, 11, 27, 22, 0, 0, 123456, tzinfo=datetime.timezone.utc)", None),
    ("[generated in 0.00012s] ()", None),
    ("[cached since 1234.567s ago] ()", None),
    ("Started server process [4194301]", None),
    ("Child process [1234567] died", None),
    ('127.0.0.1:54321 - "POST /sms/inbound HTTP/1.1" 403', None),
    ("Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)", None),
    ("connection to 192.168.100.200:5432 refused", None),
    ("HTTP/1.1 429 Too Many Requests", None),
    ("message SM0123456789abcdef0123456789abcdef for AC00000000000000000000000000000000", None),
    ("request 123e4567-e89b-12d3-a456-426614174000", None),
    ("<sqlite3.Connection object at 0x7f3a2b1c4d50>", None),
    ("imported 1,500,000 rows in 12345 ms", None),
    ("Running upgrade 0002 -> 0003, hardening", None),
    ("Pool disposed. Pool size: 10  Connections in pool: 0 Current Overflow: -10", None),
    ("turn for sms:********0123 failed and was rolled back: OperationalError", None),
    ("already masked: +*******0100, *****0001, ***@***", None),
]


@pytest.mark.parametrize(("raw", "masked"), MASKED, ids=[raw[:40] for raw, _ in MASKED])
def test_each_line_comes_out_masked_or_untouched(
    configured: Callable[[str], Written], raw: str, masked: str | None
) -> None:
    written = configured("INFO")
    logging.getLogger("bot.anything").warning(raw)
    assert written() == f"WARNING bot.anything: {masked or raw}\n"
    assert mask_text(masked or raw) == (masked or raw)  # masking twice changes nothing


@pytest.mark.parametrize(
    "logger",
    ["bot.web", "uvicorn.error", "uvicorn", "sqlalchemy.engine.Engine", "twilio.http_client", "somebody.elses"],
)
def test_every_logger_of_the_service_goes_through_the_mask(configured: Callable[[str], Written], logger: str) -> None:
    written = configured("WARNING")
    logging.getLogger(logger).error("could not reach %s", NUMBER)
    assert written() == f"ERROR {logger}: could not reach +*******0100\n"


def test_arguments_exceptions_chains_and_stacks_are_masked(configured: Callable[[str], Written]) -> None:
    written = configured("WARNING")
    log = logging.getLogger("bot.conversation")
    try:
        try:
            raise LookupError(f"no contact {NUMBER} on account 700000001")
        except LookupError as first:
            raise RuntimeError("could not notify maria@sunrise.example") from first
    except RuntimeError:
        log.exception("turn for %s failed (%d attempts)", NUMBER, 3, stack_info=True)
    out = written()
    assert out.startswith("ERROR bot.conversation: turn for +*******0100 failed (3 attempts)\n")
    assert "LookupError: no contact +*******0100 on account *****0001" in out
    assert "The above exception was the direct cause of the following exception" in out
    assert "RuntimeError: could not notify ***@***" in out
    assert "Stack (most recent call last)" in out
    for leak in ("6265550100", "700000001", "maria@"):
        assert leak not in out


def test_a_hostile_line_costs_no_more_than_a_long_one(configured: Callable[[str], Written]) -> None:
    written = configured("WARNING")
    hostile = "\n[parameters: ('" + "a\\'" * 50_000 + ")]"  # a quote that never closes, 50,000 times
    started = time.perf_counter()
    try:
        raise ValueError(hostile + " +16265550100\n" + "1-" * 50_000)
    except ValueError:
        logging.getLogger("bot").exception("x")
    assert time.perf_counter() - started < 2  # quadratic matching took minutes here
    assert "[parameters: ('***\n" in written()


def test_a_broken_format_string_is_written_masked_and_does_not_raise(configured: Callable[[str], Written]) -> None:
    written = configured("WARNING")
    logging.getLogger("bot").warning("code %s for %s", NUMBER)  # one argument short
    assert written() == "WARNING bot: code %s for %s (arguments: ('+*******0100',)) \n".replace(") \n", ")\n")


def test_the_level_is_the_one_configured(configured: Callable[[str], Written]) -> None:
    written = configured("error")
    logging.getLogger("bot").warning("not shown")
    logging.getLogger("bot").error("shown")
    assert written() == "ERROR bot: shown\n"


SUNRISE = insert(table(CustomerAccount)).values(  # the customer the refused rows belong to
    id=1,
    number="700000002",
    name="Sunrise Bakery Inc.",
    access_code_hash="x",
    failed_attempts=0,
    credential_version=0,
    updated_at=NOW,
)


def duplicate_phone(url: str) -> IntegrityError:
    """A real IntegrityError: the same phone twice for one customer account."""
    engine = make_engine(url)
    contact = {
        "customer_id": 1,
        "name": "Maria Lopez",
        "phone": NUMBER,
        "email": "maria@sunrise.example",
        "language": "en",
        "created_at": NOW,
        "updated_at": NOW,
    }
    try:
        with engine.begin() as conn:
            conn.execute(SUNRISE)
            conn.execute(insert(table(Contact)).values(**contact))
            conn.execute(insert(table(Contact)).values(**contact))
    except IntegrityError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the duplicate phone was accepted")


def test_a_duplicate_phone_error_is_logged_masked(configured: Callable[[str], Written], database_url: str) -> None:
    error = duplicate_phone(database_url)
    assert NUMBER in str(error)  # what the database and SQLAlchemy put in the exception's text
    written = configured("WARNING")
    try:
        raise error
    except IntegrityError:
        logging.getLogger("bot.storage.accounts").exception("could not add a contact for customer %s", "700000002")
        logging.getLogger("bot.outbox").warning("flush failed: %s", error)  # the error's text as the message
    out = written()
    assert out.startswith("ERROR bot.storage.accounts: could not add a contact for customer *****0002\n")
    assert "WARNING bot.outbox: flush failed: (" in out
    if database_url.startswith("postgresql"):
        assert "DETAIL:  Key (customer_id, phone)=(1, +*******0100) already exists." in out
    else:
        assert "UNIQUE constraint failed: contacts.customer_id, contacts.phone" in out
    assert "[parameters: " in out and "'+*******0100'" in out  # SQLAlchemy's copy of the values
    for leak in ("6265550100", "Maria", "Lopez", "sunrise.example"):
        assert leak not in out


def test_a_row_the_database_refused_is_logged_without_its_values(
    configured: Callable[[str], Written], database_url: str
) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(SUNRISE)
            contact = {
                "customer_id": 1,
                "name": "Maria Lopez",
                "phone": NUMBER,
                "language": None,
                "created_at": NOW,
                "updated_at": NOW,
            }
            conn.execute(insert(table(Contact)).values(**contact))  # no language: refused
    except IntegrityError as exc:
        error = exc
    finally:
        engine.dispose()
    assert "Maria Lopez" in str(error)
    written = configured("WARNING")
    try:
        raise error
    except IntegrityError:
        logging.getLogger("bot.importer").exception("import failed")
    out = written()
    if database_url.startswith("postgresql"):
        assert "DETAIL:  Failing row contains (hidden)." in out
    assert "Maria" not in out and "6265550100" not in out


def test_sqlalchemys_statement_log_at_debug_hides_names_and_keeps_durations(
    configured: Callable[[str], Written], database_url: str
) -> None:
    written = configured("DEBUG")
    error = duplicate_phone(database_url)
    assert error is not None
    out = written()
    assert "INFO sqlalchemy.engine.Engine: INSERT INTO contacts" in out
    assert "'***', '+*******0100', '***'" in out or "'name': '***', 'phone': '+*******0100'" in out
    assert "[generated in 0.0" in out
    for leak in ("6265550100", "Maria", "sunrise.example"):
        assert leak not in out


def test_sqlalchemy_and_twilio_chatter_stays_out_below_debug(
    configured: Callable[[str], Written], database_url: str
) -> None:
    written = configured("INFO")
    duplicate_phone(database_url)
    logging.getLogger("twilio.http_client").info("-- BEGIN Twilio API Request --")
    logging.getLogger("bot.outbox").info("sent")
    assert written() == "INFO bot.outbox: sent\n"


def test_configuring_twice_writes_each_line_once(configured: Callable[[str], Written]) -> None:
    configured("INFO")
    written = configured("INFO")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 4194301)
    assert written() == "INFO uvicorn.error: Started server process [4194301]\n"


@pytest.mark.parametrize("where", ["main", "thread"])
def test_uncaught_exceptions_are_logged_masked(where: str) -> None:
    crash = f"raise ValueError('no contact {NUMBER}')"
    if where == "thread":
        crash = f"import threading\nt = threading.Thread(target=lambda: exec({crash!r}))\nt.start()\nt.join()"
    script = f"from bot.logs import configure_logging\nconfigure_logging('WARNING')\n{crash}\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "ValueError: no contact +*******0100" in result.stderr
    assert "6265550100" not in result.stderr


# --- the whole process: the CLI, the web workers, a real `outagebot serve` ---------------------------


def test_the_cli_and_the_web_workers_configure_masked_logging_from_the_environment(
    configured: Callable[[str], Written], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bot import cli, web

    written = configured("CRITICAL")  # only to capture stderr and restore the logging afterwards
    monkeypatch.setenv("OUTAGEBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'outagebot.db'}")
    monkeypatch.setenv("OUTAGEBOT_LOG_LEVEL", "info")
    monkeypatch.setenv("OUTAGEBOT_PEPPER", "test-pepper")
    engine = make_engine(f"sqlite:///{tmp_path / 'outagebot.db'}")
    migrate(engine)  # a database other than the default is migrated by `outagebot db upgrade`, not by starting
    engine.dispose()
    cli._app().close()
    logging.getLogger("bot.importer").info("customer 700000001 imported")
    web.from_environment()
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 4194301)
    logging.getLogger("uvicorn.error").error("Exception in ASGI application: %s", NUMBER)
    lines = [line for line in written().splitlines() if "alembic" not in line]
    assert lines == [
        "INFO bot.importer: customer *****0001 imported",
        "INFO uvicorn.error: Started server process [4194301]",
        "ERROR uvicorn.error: Exception in ASGI application: +*******0100",
    ]


def test_a_real_server_logs_through_the_mask_and_summarises_forged_requests(tmp_path: Path) -> None:
    from twilio.request_validator import RequestValidator

    from tests.peers.twilio import free_port, wait_for_port

    public, token = "https://sms.utility.example", "e2e-token"
    env = {
        **os.environ,
        "OUTAGEBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'outagebot.db'}",
        "OUTAGEBOT_LOG_LEVEL": "INFO",
        "OUTAGEBOT_PEPPER": "e2e",
        "OUTAGEBOT_SCRYPT_N": "1024",
        "OUTAGEBOT_PUBLIC_URL": public,
        "OUTAGEBOT_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "OUTAGEBOT_TWILIO_AUTH_TOKEN": token,
        "OUTAGEBOT_TWILIO_FROM": "+16265550000",
        "OUTAGEBOT_TWILIO_API_URL": "http://127.0.0.1:9",
    }
    port = free_port()
    subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, 30)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            form = {"MessageSid": "SM1", "From": NUMBER, "To": "+16265550000", "Body": "700000001"}
            for _ in range(5):
                assert (
                    client.post("/sms/inbound", data=form, headers={"X-Twilio-Signature": "forged"}).status_code == 403
                )
            signature = RequestValidator(token).compute_signature(public + "/sms/inbound", form)
            assert client.post("/sms/inbound", data=form, headers={"X-Twilio-Signature": signature}).status_code == 200
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=30)
    assert f"INFO uvicorn.error: Started server process [{server.pid}]" in err
    assert err.count("rejected") == 2  # the first at once, the other four summed up when the server stops
    assert "rejected unsigned or forged requests: 4 in the last" in err
    assert "uvicorn.access" not in err  # no line per request
    assert "WARNING bot.web: rejected an unsigned or forged request to /sms/inbound" in err
    assert "6265550100" not in err and "700000001" not in err


# --- RateLimitedLog -----------------------------------------------------------------------------------


class Ticks:
    """A clock in seconds that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "bot.web"]


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def rejections(ticks: Ticks, caplog: pytest.LogCaptureFixture) -> RateLimitedLog:
    caplog.set_level(logging.WARNING, logger="bot.web")
    return RateLimitedLog(logging.getLogger("bot.web"), interval_seconds=60, clock=ticks)


def test_the_first_rejection_is_logged_at_once_and_a_burst_becomes_one_line_a_minute(
    rejections: RateLimitedLog, ticks: Ticks, caplog: pytest.LogCaptureFixture
) -> None:
    rejections.hit("/sms/inbound")
    assert lines(caplog) == ["rejected an unsigned or forged request to /sms/inbound"]
    for second in range(1, 60):  # a request a second for the rest of the minute: nothing more yet
        ticks.now += 1
        rejections.hit("/sms/status" if second % 3 == 0 else "/sms/inbound")
    assert len(lines(caplog)) == 1
    ticks.now += 1
    rejections.hit("/sms/inbound")
    assert lines(caplog)[1:] == [
        "rejected unsigned or forged requests: 60 in the last 60 seconds (/sms/inbound: 41, /sms/status: 19)"
    ]


def test_what_is_held_back_is_written_by_flush_once_the_interval_has_passed(
    rejections: RateLimitedLog, ticks: Ticks, caplog: pytest.LogCaptureFixture
) -> None:
    rejections.hit("/sms/inbound")
    ticks.now += 5
    rejections.hit("/sms/inbound")
    rejections.flush()
    assert len(lines(caplog)) == 1  # too early
    ticks.now += 55
    rejections.flush()
    rejections.flush()  # nothing left to say
    assert lines(caplog)[1:] == ["rejected an unsigned or forged request to /sms/inbound"]
    ticks.now += 1
    rejections.hit("/sms/status")
    rejections.flush(force=True)  # e.g. when the server stops
    assert lines(caplog)[2:] == ["rejected an unsigned or forged request to /sms/status"]


def test_a_flood_is_counted_legibly_through_the_mask(configured: Callable[[str], Written], ticks: Ticks) -> None:
    written = configured("WARNING")
    rejections = RateLimitedLog(logging.getLogger("bot.web"), clock=ticks)
    for _ in range(250_001):
        rejections.hit("/sms/inbound")
    ticks.now += 60
    rejections.flush()
    assert written().splitlines()[1] == (
        "WARNING bot.web: rejected unsigned or forged requests: 250,000 in the last 60 seconds (/sms/inbound: 250,000)"
    )


def test_after_a_quiet_interval_the_next_rejection_is_logged_at_once(
    rejections: RateLimitedLog, ticks: Ticks, caplog: pytest.LogCaptureFixture
) -> None:
    rejections.hit("/sms/inbound")
    ticks.now += 3600
    rejections.hit("/sms/status")
    assert lines(caplog) == [
        "rejected an unsigned or forged request to /sms/inbound",
        "rejected an unsigned or forged request to /sms/status",
    ]


def test_paths_are_printable_short_and_few(
    rejections: RateLimitedLog, ticks: Ticks, caplog: pytest.LogCaptureFixture
) -> None:
    rejections.hit("/sms/inbound\nWARNING bot.web: forged line")
    assert lines(caplog) == ["rejected an unsigned or forged request to /sms/inbound\\nWARNING bot.web: forged line"]
    for n in range(20):
        rejections.hit(f"/p{n}" + "x" * 200)
    ticks.now += 60
    rejections.flush()
    summary = lines(caplog)[1]
    assert summary.startswith("rejected unsigned or forged requests: 20 in the last 60 seconds (")
    assert "(other paths: 10, /p0" in summary  # the most frequent first
    assert summary.count("/p") == 10 and "/p9" + "x" * 97 + "...: 1)" in summary  # cut to 100 characters


def test_every_rejection_is_counted_once_when_threads_race(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.web")
    ticks = itertools.count()
    rejections = RateLimitedLog(
        logging.getLogger("bot.web"), interval_seconds=60, clock=lambda: next(ticks) * 0.01
    )  # a minute every 6,000 calls
    threads = [threading.Thread(target=lambda: [rejections.hit("/sms/inbound") for _ in range(3000)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rejections.flush(force=True)
    counted = 0
    for line in lines(caplog):
        found = re.fullmatch(
            r"rejected unsigned or forged requests: ([\d,]+) in the last \d+ seconds "
            r"\(/sms/inbound: ([\d,]+)\)",
            line,
        )
        if found:
            assert found[1] == found[2]
            counted += int(found[1].replace(",", ""))
        else:
            assert line == "rejected an unsigned or forged request to /sms/inbound"
            counted += 1
    assert counted == 24_000
    assert 3 <= len(lines(caplog)) <= 6  # 24,000 calls of the clock: four minutes, a line each


def test_forged_webhook_requests_are_summarised(
    database_url: str, monkeypatch: pytest.MonkeyPatch, ticks: Ticks, caplog: pytest.LogCaptureFixture
) -> None:
    from starlette.testclient import TestClient

    from bot import web
    from bot.app import build
    from tests.bot.test_web import TWILIO
    from tests.conftest import make_settings

    caplog.set_level(logging.WARNING, logger="bot.web")
    monkeypatch.setattr(web, "rejected", RateLimitedLog(web.log, clock=ticks))  # this test's clock
    app = build(make_settings(database_url, **TWILIO), migrate_db=False)
    try:
        with TestClient(web.create_web(app)) as client:
            for path in ("/sms/inbound", "/sms/inbound", "/sms/status"):
                assert client.post(path, data={"From": NUMBER}, headers={"X-Twilio-Signature": "x"}).status_code == 403
            ticks.now += 60
            assert client.post("/sms/inbound").status_code == 403
    finally:
        app.close()
    assert [line for line in lines(caplog) if "rejected" in line] == [
        "rejected an unsigned or forged request to /sms/inbound",
        "rejected unsigned or forged requests: 3 in the last 60 seconds (/sms/inbound: 2, /sms/status: 1)",
    ]


@pytest.mark.parametrize(("given", "level"), [(None, "WARNING"), ("info", "INFO"), (" Debug ", "DEBUG")])
def test_the_log_level_setting(given: str | None, level: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import Settings

    monkeypatch.delenv("OUTAGEBOT_LOG_LEVEL", raising=False)
    settings = Settings() if given is None else Settings(log_level=given)  # type: ignore[arg-type]
    assert settings.log_level == level


def test_an_unknown_log_level_is_refused() -> None:
    from pydantic import ValidationError

    from bot.config import Settings

    with pytest.raises(ValidationError):
        Settings(log_level="LOUD")  # type: ignore[arg-type]


# --- formats and the access log -------------------------------------------------------------------


def test_every_text_line_starts_with_its_time_in_utc(
    capsys: pytest.CaptureFixture[str], configured: Callable[[str], Written]
) -> None:
    configured("INFO")
    before = datetime.now(UTC).replace(microsecond=0)
    logging.getLogger("bot.x").info("one %s", NUMBER)
    line = capsys.readouterr().err
    stamp, rest = line.split(" ", 1)
    assert STAMP.match(line) and rest == "INFO bot.x: one +*******0100\n"
    assert before <= datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) <= datetime.now(UTC)


def test_json_lines_are_one_masked_object_each(
    capsys: pytest.CaptureFixture[str], configured: Callable[[str], Written]
) -> None:
    import json

    configured("INFO")
    configure_logging("INFO", "json")
    try:
        raise ValueError(f"no contact {NUMBER}")
    except ValueError:
        logging.getLogger("bot.conversation").exception("turn for %s failed", NUMBER)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["level"] == "ERROR" and line["logger"] == "bot.conversation"
    assert line["message"] == "turn for +*******0100 failed" and STAMP.match(line["time"] + " ")
    assert "ValueError: no contact +*******0100" in line["exception"] and NUMBER not in lines[0]


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("INFO", "xml")


def test_the_access_log_has_a_line_a_request_with_status_and_time_and_nothing_personal(
    capsys: pytest.CaptureFixture[str], configured: Callable[[str], Written], tmp_path: Path
) -> None:
    from starlette.testclient import TestClient

    from bot.app import build
    from bot.web import create_web
    from tests.conftest import make_settings

    app = build(make_settings(f"sqlite:///{tmp_path / 'access.db'}"))
    written = configured("INFO")
    try:
        with TestClient(create_web(app)) as client:
            assert client.get("/healthz").status_code == 200
            assert client.post("/sms/inbound", data={"From": NUMBER, "Body": "hi"}).status_code == 404
        lines = [x for x in written().splitlines() if x.startswith("INFO bot.access")]
    finally:
        app.close()
    assert len(lines) == 2
    assert re.fullmatch(r"INFO bot\.access: GET /healthz 200 \d+\.\d ms testclient", lines[0])
    assert re.fullmatch(r"INFO bot\.access: POST /sms/inbound 404 \d+\.\d ms testclient", lines[1])
