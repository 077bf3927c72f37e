"""The ``outagebot`` command: chat in the terminal, import accounts, seed demo data, draw the dialogs.

What the command prints for operators (import reports, errors) comes from the catalogs too, in
``OUTAGEBOT_OPERATOR_LANGUAGE``; what customers read is in their conversation's language.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import typer
from alembic.script import ScriptDirectory
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Connection, Engine, make_url, select
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, NoSuchModuleError, OperationalError

from bot.app import App, build
from bot.channels.base import Inbound, render_text
from bot.cli_api import api_token_cli
from bot.config import ConfigError, Settings
from bot.exporter import LeftOut, export_contacts
from bot.i18n import OP, OPN, Catalogs
from bot.importer import ImportReport, import_file
from bot.logs import configure_logging, logging_config, mask_text
from bot.security import mask
from bot.storage.accounts import revoke_sessions
from bot.storage.backoffice import audit_entries, customer_overview, opt_outs, outbox, unlock
from bot.storage.db import BATCH_WAITS, Database, alembic_config, is_empty, make_engine, migrate, schema
from bot.storage.models import CustomerAccount
from bot.storage.outbound import STATUSES
from dialogs.text import Listed, Literal, Msg, fold

EXIT_BAD_DATA, EXIT_USAGE, EXIT_PARTIAL, EXIT_CONFIG, EXIT_DATABASE, EXIT_UNREACHABLE = 1, 2, 3, 4, 5, 6
DEMO_ACCOUNTS = frozenset({"700000001", "700000002"})

cli = typer.Typer(
    add_completion=False,
    help="outagebot: rotating-outage alert contacts, in Vietnamese and English.",
    epilog="Settings come from OUTAGEBOT_* environment variables or a .env file in the current "
    "directory; each command's --help names the ones it reads, and `outagebot settings` "
    "shows them all with their values.",
)
err = Console(stderr=True, soft_wrap=True, highlight=False)
PHASES = {
    "validated": OP("checking rows"),
    "codes": OP("hashing access codes"),
    "customers": OP("customer accounts"),
    "service accounts": OP("service accounts"),
    "contacts": OP("contacts"),
}


SETTINGS_FOR_ALL = ("database_url", "log_level", "log_format", "operator_language")
SETTINGS_FOR_TURNS = (
    "pepper",
    "pepper_file",
    "scrypt_n",
    "timezone",
    "support_phone",
    "utility_name",
    "default_region",
    "phone_regions",
    "session_idle_minutes",
    "session_max_hours",
    "lockout_failures",
    "lockout_minutes",
    "address_max_failures",
    "address_window_minutes",
    "global_failure_alarm_per_minute",
    "max_contacts_per_customer",
    "notices_per_customer_per_hour",
)


def reads(*names: str) -> str:
    """The epilog of a command's help: the settings it reads."""
    variables = ", ".join(f"OUTAGEBOT_{name.upper()}" for name in (*SETTINGS_FOR_ALL, *names))
    return f"Reads {variables} (environment or .env); `outagebot settings` shows their values."


DEBUG = {"on": False}  # --debug: errors keep their traceback
LEAVE_WORDS = frozenset({"QUIT", "EXIT", "THOAT"})  # the terminal's own words to leave (folded)


def _version(value: bool) -> None:
    if value:
        print(f"outagebot {metadata.version('outagebot')}")
        raise typer.Exit()


@cli.callback(invoke_without_command=True)
def _main(
    context: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_version, help="print the version and exit")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show the full traceback of an error")] = False,
) -> None:
    """outagebot: rotating-outage alert contacts, in Vietnamese and English."""
    DEBUG["on"] = debug
    if context.invoked_subcommand is None:  # bare ``outagebot``: the help, and success
        print(context.get_help())
        raise typer.Exit()


def say(catalogs: Catalogs, settings: Settings, msg: Msg, *, error: bool = False, to_stderr: bool = False) -> None:
    """Print an operator message in the operator's language (never read as Rich markup)."""
    text = catalogs.render(msg, settings.operator_language)
    if error or to_stderr:
        err.print(text, markup=False, style="red" if error else None)
    else:
        print(text)


def _settings() -> Settings:
    """The settings from the environment, logging configured by them; a bad one ends the command with one line."""
    try:
        settings = Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = "OUTAGEBOT_" + str(error["loc"][0]).upper() if error["loc"] else "OUTAGEBOT_*"
        _config_error(Settings.model_construct(), f"{name}: {error['msg']}")
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _config_error(settings: Settings, text: str) -> NoReturn:
    err.print(text, markup=False, style="red")
    raise typer.Exit(EXIT_CONFIG)


def _url(settings: Settings) -> str:
    """The database URL as it may be shown (no password)."""
    return make_url(settings.database_url).render_as_string(hide_password=True)


def _prepare_schema(engine: Engine, settings: Settings, *, migrate_any_sqlite: bool = False) -> None:
    """Migrate the default SQLite file; any other database must be at the newest schema already.

    Several hosts share a production database: its schema changes only when an operator runs
    ``outagebot db upgrade`` (after a backup), never because some process started.
    """
    if settings.is_default_database or (migrate_any_sqlite and settings.database_file() is not None):
        migrate(engine)
        return
    found = schema(engine)
    if found.up_to_date:
        return
    url = Literal(_url(settings))
    if found.current is None:
        message = OP("The database {url} has no schema yet: run outagebot db upgrade first.", url=url)
    elif found.newer:
        message = OP(
            "The database {url} is at schema {current}, which this version of outagebot does not know "
            "(it knows up to {head}): upgrade outagebot.",
            url=url,
            current=Literal(found.current),
            head=Literal(found.head),
        )
    else:
        message = OP(
            "The database {url} is at schema {current}; this version needs {head}: back it up, then run "
            "outagebot db upgrade.",
            url=url,
            current=Literal(found.current),
            head=Literal(found.head),
        )
    _config_error(settings, Catalogs().render(message, settings.operator_language))


def _check_schema(settings: Settings, *, migrate_any_sqlite: bool = False) -> None:
    engine = make_engine(settings.database_url, BATCH_WAITS)
    try:
        _prepare_schema(engine, settings, migrate_any_sqlite=migrate_any_sqlite)
    finally:
        engine.dispose()


def _app(*, generate_pepper: bool = False, batch: bool = False, migrate_any_sqlite: bool = False) -> App:
    """The application; a missing pepper ends the command (``generate_pepper``: the demo database only).

    ``batch``: a command that writes many rows at once (an import) waits longer for locks than a turn,
    and has no statement time limit.
    """
    settings = _settings()
    try:
        pepper, created = settings.resolve_pepper(generate=generate_pepper)
    except ConfigError as exc:
        _config_error(settings, str(exc))
    if created is not None:
        say(
            Catalogs(),
            settings,
            OP(
                "Made a secret pepper for this demo database in {path} (keep it with the "
                "database: without it no access code verifies).",
                path=Literal(str(created.resolve())),
            ),
            to_stderr=True,
        )
    _check_schema(settings, migrate_any_sqlite=migrate_any_sqlite)
    return build(settings, pepper=pepper, limits=BATCH_WAITS if batch else None, migrate_db=False)


def _database(settings: Settings) -> Database:
    """The database alone, for commands that verify nobody (no pepper needed), with a batch job's limits."""
    engine = make_engine(settings.database_url, BATCH_WAITS)
    try:
        _prepare_schema(engine, settings)
    except BaseException:
        engine.dispose()
        raise
    return Database(engine, BATCH_WAITS)


T = TypeVar("T")


def _once(settings: Settings, work: Callable[[Connection], T], *, write: bool = False) -> T:
    """``work`` on the database in one read (or, with ``write``, one transaction), then closed."""
    db = _database(settings)
    try:
        return db.run(work) if write else db.read(work)
    finally:
        db.close()


def _no_such_customer(catalogs: Catalogs, settings: Settings, number: str) -> NoReturn:
    say(catalogs, settings, OP("No customer account {number}.", number=Literal(mask(number))), error=True)
    raise typer.Exit(EXIT_BAD_DATA)


def _seed(app: App) -> ImportReport:
    demo = resources.files("bot").joinpath("demo_accounts.csv")
    with resources.as_file(demo) as path:
        return import_file(
            app.db, app.hasher, Path(path), region=app.settings.default_region, regions=app.settings.regions
        )


@cli.command(epilog=reads(*SETTINGS_FOR_TURNS))
def chat(
    lang: Annotated[
        str | None, typer.Option("--lang", metavar="[vi|en]", help="the conversation's language (no language question)")
    ] = None,
    address: Annotated[str, typer.Option("--address", help="who is chatting (one session each)")] = "local",
) -> None:
    """Chat with the bot in this terminal (reads one message per line when input is not a terminal)."""
    if lang not in (None, "vi", "en"):
        settings = _settings()
        raise typer.BadParameter(Catalogs().render(OP("--lang must be vi or en"), settings.operator_language))
    app = _app(generate_pepper=True)
    try:
        database = app.settings.database_file()
        if database is not None:
            say(
                app.catalogs,
                app.settings,
                OP("Database: {path}", path=Literal(str(database.resolve()))),
                to_stderr=True,
            )
        if is_empty(app.db.engine):
            if app.settings.is_default_database:
                _seed(app)
                say(
                    app.catalogs,
                    app.settings,
                    OP("Loaded the demo accounts (see README: 700000001 / 482913, 700000002 / 731562)."),
                    to_stderr=True,
                )
            else:
                say(
                    app.catalogs,
                    app.settings,
                    OP(
                        "This database has no customer accounts yet: load them with outagebot import-accounts FILE.csv."
                    ),
                    to_stderr=True,
                )
        interactive = sys.stdin.isatty()
        if interactive:
            say(
                app.catalogs,
                app.settings,
                OP(
                    "Type quit, exit or thoát (or press Ctrl-D) to leave; the "
                    "conversation is kept for its next message."
                ),
                to_stderr=True,
            )
        states = app.conversation.engine.states

        def turn(text: str) -> bool:
            """Answer ``text``; whether the next answer is a secret (not echoed)."""
            reply = app.conversation.handle(
                Inbound("console", address, text, locale_hint=lang, locale_chosen=lang is not None)
            )
            for message in render_text(reply, app.catalogs):
                print(message)
            print(flush=True)
            state = states.get(reply.state)
            return state is not None and state.secret

        secret = turn("")
        while True:
            try:
                line = getpass.getpass("> ") if interactive and secret else input("> " if interactive else "")
            except EOFError:
                break
            if interactive and fold(line) in LEAVE_WORDS:
                break
            secret = turn(line)
    except KeyboardInterrupt:
        print()
    finally:
        app.close()


@cli.command("import-accounts", epilog=reads("pepper", "pepper_file", "scrypt_n", "default_region", "phone_regions"))
def import_accounts(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CIS export (CSV)")],
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="import the good rows anyway")] = False,
    report_file: Annotated[
        Path | None,
        typer.Option(
            "--report",
            dir_okay=False,
            help=f"where every bad row is written when there are more than {SHOWN_ERRORS} "
            "(default: FILE.errors.txt beside the file)",
        ),
    ] = None,
) -> None:
    """Import (or update in place) customer accounts, service accounts and contacts from a CSV file."""
    app = _app(batch=True)
    catalogs, settings = app.catalogs, app.settings
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(phase: str, n: int, total: int) -> None:
                if phase not in tasks:
                    label = catalogs.render(PHASES.get(phase, Literal(phase)), settings.operator_language)
                    tasks[phase] = bar.add_task(label, total=total)
                bar.advance(tasks[phase], n)

            try:
                report = import_file(
                    app.db,
                    app.hasher,
                    file,
                    skip_invalid=skip_invalid,
                    region=settings.default_region,
                    regions=settings.regions,
                    progress=progress,
                )
            except UnicodeDecodeError as exc:
                line = file.read_bytes()[: exc.start].count(b"\n") + 1
                say(
                    catalogs,
                    settings,
                    OP(
                        "{file}, line {line}: not UTF-8 text (byte {position} of the file); "
                        "nothing imported. Save the export as UTF-8.",
                        file=Literal(str(file)),
                        line=line,
                        position=exc.start,
                    ),
                    error=True,
                )
                raise typer.Exit(EXIT_USAGE) from None
        _report_bad_rows(catalogs, settings, file, report, report_file)
        if report.error is not None:
            say(catalogs, settings, report.error, error=True)
            raise typer.Exit(EXIT_DATABASE)
        if not report.imported:
            say(
                catalogs,
                settings,
                OPN(
                    "{n} bad row of {rows}; nothing imported. Fix it, or use --skip-invalid to import the good rows.",
                    "{n} bad rows of {rows}; nothing imported. Fix "
                    "them, or use --skip-invalid to import the good rows.",
                    len(report.bad),
                    rows=report.rows,
                ),
                error=True,
            )
            raise typer.Exit(EXIT_BAD_DATA)
        say(
            catalogs,
            settings,
            OP(
                "imported {good} of {rows} rows: customer accounts +{customers_added} ~{customers_updated}, "
                "access codes hashed {codes}, service accounts +{accounts_added} ~{accounts_updated}, "
                "contacts +{contacts_added} ~{contacts_updated}, assignments +{assignments}; "
                "{unchanged} contact rows unchanged since the last import (customers' changes to them kept)",
                good=report.rows - len(report.bad),
                rows=report.rows,
                customers_added=report.customers_added,
                customers_updated=report.customers_updated,
                codes=report.codes_hashed,
                accounts_added=report.service_accounts_added,
                accounts_updated=report.service_accounts_updated,
                contacts_added=report.contacts_added,
                contacts_updated=report.contacts_updated,
                assignments=report.assignments_added,
                unchanged=report.rows_unchanged,
            ),
        )
        if report.bad:
            raise typer.Exit(EXIT_PARTIAL)
    finally:
        app.close()


SHOWN_ERRORS = 50  # bad rows printed on the terminal; all of them go to the report file


def _report_bad_rows(
    catalogs: Catalogs, settings: Settings, file: Path, report: ImportReport, report_file: Path | None
) -> None:
    """The first bad rows on the terminal; when there are more, every one of them in a report file."""
    language = settings.operator_language
    lines = [  # the reasons of a row apart by semicolons: each may hold commas of its own
        catalogs.render(
            OP(
                "line {line}: {problems}",
                line=bad.line,
                problems=Literal("; ".join(catalogs.render(p, language) for p in bad.problems)),
            ),
            language,
        )
        for bad in report.bad
    ]
    for line in lines[:SHOWN_ERRORS]:
        err.print(line, markup=False)
    if len(lines) <= SHOWN_ERRORS:
        return
    target = report_file or file.with_name(file.name + ".errors.txt")
    try:
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        say(
            catalogs,
            settings,
            OP(
                "... and {more} more; the full list could not be written to {path}: {reason}",
                more=len(lines) - SHOWN_ERRORS,
                path=Literal(str(target)),
                reason=Literal(exc.strerror or type(exc).__name__),
            ),
            error=True,
        )
        return
    say(
        catalogs,
        settings,
        OP(
            "... and {more} more: every bad row is listed in {path}",
            more=len(lines) - SHOWN_ERRORS,
            path=Literal(str(target)),
        ),
        to_stderr=True,
    )


def _left_out(left: LeftOut) -> Msg:
    contact, customer = Literal(left.contact), Literal(left.customer)
    if left.reason == "no_service_account":
        return OP(
            "not exported: {contact} of customer_account {customer} is on no service account (every row "
            "of the format is a service account)",
            contact=contact,
            customer=customer,
        )
    return OP(
        "not exported: {contact} of customer_account {customer} has neither a phone nor an email (the "
        "import would refuse the row)",
        contact=contact,
        customer=customer,
    )


@cli.command("export-contacts", epilog=reads())
def export_contacts_command(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="CSV file to write")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace the file if it exists")] = False,
) -> None:
    """Write the contacts as they are now (customers' changes included) in the import's own CSV format."""
    settings, catalogs = _settings(), Catalogs()
    db = _database(settings)  # no pepper needed: nothing is verified or hashed
    try:
        if file.exists() and not overwrite:
            say(
                catalogs,
                settings,
                OP("{file} exists; nothing written (use --overwrite to replace it).", file=Literal(str(file))),
                error=True,
            )
            raise typer.Exit(EXIT_USAGE)
        partial = file.with_name(f".{file.name}.partial")
        try:
            with partial.open("w", newline="", encoding="utf-8") as stream:
                report = export_contacts(db, stream)
            os.replace(partial, file)  # readers never see half a file
        except OSError as exc:
            say(
                catalogs,
                settings,
                OP(
                    "{file}: cannot write it ({error}); nothing written.",
                    file=Literal(str(file)),
                    error=Literal(exc.strerror or type(exc).__name__),
                ),
                error=True,
            )
            raise typer.Exit(EXIT_USAGE) from None
        finally:
            partial.unlink(missing_ok=True)
        for left in report.left_out:
            say(catalogs, settings, _left_out(left), to_stderr=True)
        say(
            catalogs,
            settings,
            OP(
                "exported {rows} rows to {file}: {customers} customer accounts, {accounts} service accounts, "
                "{contacts} contacts; access_code is left empty (only hashes are stored; the import keeps the "
                "stored codes)",
                rows=report.rows,
                file=Literal(str(file)),
                customers=report.customers,
                accounts=report.service_accounts,
                contacts=report.contacts,
            ),
        )
    finally:
        db.close()


@cli.command(
    epilog=reads(
        *SETTINGS_FOR_TURNS,
        "public_url",
        "twilio_account_sid",
        "twilio_auth_token",
        "twilio_from",
        "twilio_messaging_service_sid",
        "twilio_api_url",
        "sms_max_body_bytes",
        "telegram_token",
        "telegram_secret",
        "telegram_api_url",
        "telegram_max_body_bytes",
        "outbox_interval_seconds",
        "purge_interval_seconds",
        "db_lock_timeout_seconds",
        "db_statement_timeout_seconds",
        "db_pool_size",
        "replay_retention_hours",
        "session_retention_days",
    )
)
def serve(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port to listen on")] = 8080,
    workers: Annotated[int, typer.Option("--workers", help="worker processes (PostgreSQL for more than 1)")] = 1,
    polling: Annotated[
        bool, typer.Option("--polling", help="fetch Telegram updates by long polling (no public URL needed)")
    ] = False,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="send no alerts or notices here (run `outagebot worker` instead)")
    ] = False,
) -> None:
    """Serve the webhooks (SMS, Telegram) over HTTP with uvicorn, with a dispatcher for alerts and notices."""
    import uvicorn

    if no_worker:
        os.environ["OUTAGEBOT_SERVE_DISPATCH"] = "false"
    if polling:
        os.environ["OUTAGEBOT_TELEGRAM_POLLING"] = "true"  # every worker's Settings reads it
    settings = _settings()
    catalogs = Catalogs()
    try:
        settings.resolve_pepper()  # every worker reads it again; here a missing one is refused in one line
    except ConfigError as exc:
        _config_error(settings, str(exc))
    if workers > 1 and settings.database_file() is not None:
        say(
            catalogs,
            settings,
            OP("--workers above 1 needs PostgreSQL: SQLite has one writer, and one worker serves it best."),
            error=True,
        )
        raise typer.Exit(EXIT_USAGE)
    if settings.sms_enabled:
        say(
            catalogs,
            settings,
            OP(
                "SMS webhooks on: {url}/sms/inbound (status callbacks: {url}/sms/status)",
                url=Literal((settings.public_url or "").rstrip("/")),
            ),
            to_stderr=True,
        )
    else:
        say(
            catalogs,
            settings,
            OP(
                "SMS webhooks are off: set OUTAGEBOT_PUBLIC_URL, OUTAGEBOT_TWILIO_ACCOUNT_SID, "
                "OUTAGEBOT_TWILIO_AUTH_TOKEN and OUTAGEBOT_TWILIO_FROM."
            ),
            to_stderr=True,
        )
    _telegram_setup(settings, catalogs, workers)
    try:  # a port that is taken (or not ours to take) is one line and the configuration's exit code
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        _config_error(
            settings,
            catalogs.render(
                OP(
                    "Cannot listen on {host}:{port}: {reason}",
                    host=Literal(host),
                    port=Literal(str(port)),
                    reason=Literal(exc.strerror or type(exc).__name__),
                ),
                settings.operator_language,
            ),
        )
    _check_schema(settings)  # before any worker starts: the default SQLite file is migrated, others checked
    say(
        catalogs,
        settings,
        OPN(
            "Listening on http://{host}:{port} with {n} worker; database {url}; health check /healthz",
            "Listening on http://{host}:{port} with {n} workers; database {url}; health check /healthz",
            workers,
            host=Literal(host),
            port=Literal(str(port)),
            url=Literal(_url(settings)),
        ),
        to_stderr=True,
    )
    with tempfile.TemporaryDirectory(prefix="outagebot-metrics-") as shared:
        if workers > 1:  # every worker writes its metrics here; /metrics adds them up (bot.metrics)
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", shared)
        uvicorn.run(
            "bot.web:from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level.lower(),
            access_log=False,
            log_config=logging_config(settings.log_level, settings.log_format),
        )


def _telegram_setup(settings: Settings, catalogs: Catalogs, workers: int) -> None:
    """Say whether Telegram is on and how; set its webhook (or delete it for polling) and its commands."""
    if not settings.telegram_enabled:
        say(catalogs, settings, OP("Telegram is off: set OUTAGEBOT_TELEGRAM_TOKEN to turn it on."), to_stderr=True)
        return
    if settings.telegram_polling:
        if workers > 1:
            say(catalogs, settings, OP("--polling needs one worker: Telegram gives updates to one poller."), error=True)
            raise typer.Exit(EXIT_USAGE)
        webhook = None
        say(catalogs, settings, OP("Telegram on: long polling (serve --polling)"), to_stderr=True)
    elif not settings.telegram_webhook_ready:
        _config_error(
            settings,
            catalogs.render(
                OP(
                    "Telegram's webhook needs OUTAGEBOT_PUBLIC_URL and OUTAGEBOT_TELEGRAM_SECRET "
                    "(or run serve --polling)."
                ),
                settings.operator_language,
            ),
        )
    else:
        webhook = f"{(settings.public_url or '').rstrip('/')}/telegram/webhook"
        say(catalogs, settings, OP("Telegram on: webhook {url}", url=Literal(webhook)), to_stderr=True)
    from bot.telegram import announce

    for problem in asyncio.run(announce(settings, catalogs, webhook)):
        say(catalogs, settings, OP("Telegram: {problem}", problem=Literal(problem)), error=True)


@cli.command("seed-demo", epilog=reads("pepper", "pepper_file", "scrypt_n"))
def seed_demo() -> None:
    """Load the demo accounts (two businesses, Vietnamese and English contacts) into a SQLite database."""
    settings = _settings()
    if settings.database_file() is None:
        _config_error(
            settings,
            Catalogs().render(
                OP("seed-demo loads demo accounts only into a SQLite database, never into PostgreSQL."),
                settings.operator_language,
            ),
        )
    numbers = _once(settings, lambda conn: {r[0] for r in conn.execute(select(CustomerAccount.number))})
    if numbers - DEMO_ACCOUNTS:
        _config_error(
            settings,
            Catalogs().render(
                OP("This database holds other customers: demo accounts are not loaded into it."),
                settings.operator_language,
            ),
        )
    app = _app(generate_pepper=True, batch=True, migrate_any_sqlite=True)
    try:
        report = _seed(app)
        say(
            app.catalogs,
            app.settings,
            OP(
                "demo data loaded: {rows} rows (customer 700000001 code 482913; customer 700000002 code 731562)",
                rows=report.rows,
            ),
        )
    finally:
        app.close()


db_cli = typer.Typer(no_args_is_help=True, help="The database's schema (Alembic migrations, run explicitly).")
cli.add_typer(db_cli, name="db")


@db_cli.command("upgrade", epilog=reads())
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="the schema to reach (default: the newest)")] = "head",
) -> None:
    """Migrate the database to the newest schema (back it up first); the only way a shared one changes."""
    settings, catalogs = _settings(), Catalogs()
    engine = make_engine(settings.database_url, BATCH_WAITS)
    try:
        before = schema(engine)
        if before.newer:
            _config_error(
                settings,
                catalogs.render(
                    OP(
                        "The database {url} is at schema {current}, which this version of outagebot does not know "
                        "(it knows up to {head}): upgrade outagebot.",
                        url=Literal(_url(settings)),
                        current=Literal(str(before.current)),
                        head=Literal(before.head),
                    ),
                    settings.operator_language,
                ),
            )
        migrate(engine, revision)
        after = schema(engine)
    finally:
        engine.dispose()
    say(
        catalogs,
        settings,
        OP(
            "Database {url}: schema {before} -> {after}",
            url=Literal(_url(settings)),
            before=Literal(before.current or "-"),
            after=Literal(after.current or "-"),
        ),
    )


@db_cli.command("current", epilog=reads())
def db_current() -> None:
    """The database's schema; exit 0 when it is the newest, 4 when it needs outagebot db upgrade."""
    settings, catalogs = _settings(), Catalogs()
    engine = make_engine(settings.database_url, BATCH_WAITS)
    try:
        found = schema(engine)
    finally:
        engine.dispose()
    if found.up_to_date:
        say(catalogs, settings, OP("{current} (the newest)", current=Literal(found.head)))
        return
    say(
        catalogs,
        settings,
        OP("{current} (this version needs {head})", current=Literal(found.current or "-"), head=Literal(found.head)),
    )
    raise typer.Exit(EXIT_CONFIG)


@db_cli.command("history", epilog=reads())
def db_history() -> None:
    """Every schema this version knows, newest first; the database's is marked."""
    settings = _settings()
    engine = make_engine(settings.database_url, BATCH_WAITS)
    try:
        found = schema(engine)
        scripts = ScriptDirectory.from_config(alembic_config(engine))
    finally:
        engine.dispose()
    for script in scripts.walk_revisions():
        mark = " *" if script.revision == found.current else ""
        print(f"{script.revision}{mark}  {(script.doc or '').strip()}")


customer_cli = typer.Typer(no_args_is_help=True, help="Customer accounts, for support staff.")
cli.add_typer(customer_cli, name="customer")


def _print_json(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _table(catalogs: Catalogs, settings: Settings, columns: list[Msg], rows: list[list[str]]) -> None:
    if not rows:
        say(catalogs, settings, OP("(none)"))
        return
    table = Table(*(catalogs.render(c, settings.operator_language) for c in columns), box=None, pad_edge=False)
    for row in rows:
        table.add_row(*row)
    # a terminal's own width; piped into a file or another program, wide enough not to cut anything
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 1000)
    with console.capture() as captured:
        console.print(table)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))  # no padding after the last column


@customer_cli.command("show", epilog=reads("timezone"))
def customer_show(
    customer_account: Annotated[str, typer.Argument(help="Customer Account Number")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """A customer account: service accounts, contacts (numbers masked), lockout, sessions, last activity."""
    settings, catalogs = _settings(), Catalogs()
    zone = ZoneInfo(settings.timezone)
    found = _once(settings, lambda conn: customer_overview(conn, customer_account, datetime.now(UTC), zone))
    if found is None:
        _no_such_customer(catalogs, settings, customer_account)
    if as_json:
        _print_json(found)
        return
    lock = (
        OP("locked until {when}", when=Literal(found["locked_until"]))
        if found["locked_until"]
        else OP("not locked; failed attempts in a row: {n}", n=found["failed_attempts"])
    )
    say(
        catalogs,
        settings,
        OP("Customer account {number}: {name}", number=Literal(found["customer_account"]), name=Literal(found["name"])),
    )
    say(catalogs, settings, lock)
    say(
        catalogs,
        settings,
        OP(
            "signed-in sessions: {n}; last message: {last}; last change: {changed}",
            n=found["signed_in_sessions"],
            last=Literal(found["last_seen"] or "-"),
            changed=Literal(found["last_audited"] or "-"),
        ),
    )
    _table(
        catalogs,
        settings,
        [OP("service account"), OP("service address"), OP("outage group")],
        [[a["number"], a["address"], a["outage_group"]] for a in found["service_accounts"]],
    )
    _table(
        catalogs,
        settings,
        [OP("contact"), OP("mobile"), OP("email"), OP("language"), OP("service accounts")],
        [
            [
                c["name"] + (" (STOP)" if c["opted_out"] else ""),
                c["phone"] or "-",
                c["email"] or "-",
                c["language"],
                ", ".join(c["service_accounts"]) or "-",
            ]
            for c in found["contacts"]
        ],
    )


@customer_cli.command("unlock", epilog=reads())
def customer_unlock(
    customer_account: Annotated[str, typer.Argument(help="Customer Account Number")],
    operator: Annotated[str | None, typer.Option("--operator", help="who does this (default: the OS user)")] = None,
) -> None:
    """Clear a customer account's lockout after too many wrong access codes (audited)."""
    settings, catalogs = _settings(), Catalogs()
    who = operator or getpass.getuser()
    was = _once(settings, lambda conn: unlock(conn, customer_account, who, datetime.now(UTC)), write=True)
    if was is None:
        _no_such_customer(catalogs, settings, customer_account)
    say(
        catalogs,
        settings,
        OP("Customer account {number} unlocked.", number=Literal(customer_account))
        if was
        else OP(
            "Customer account {number} was not locked; its failure count is cleared.", number=Literal(customer_account)
        ),
    )


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            Catalogs().render(
                OP("--since takes a date or a time, e.g. 2026-11-27 or 2026-11-27T14:00"), _settings().operator_language
            )
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=ZoneInfo(_settings().timezone))


@cli.command("audit", epilog=reads("timezone"))
def audit_command(
    customer: Annotated[str | None, typer.Option("--customer", help="only this Customer Account Number")] = None,
    since: Annotated[str | None, typer.Option("--since", help="from this date or time (the utility's zone)")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="at most this many, newest first")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="a JSON array")] = False,
) -> None:
    """The audit log: who changed what, newest first (numbers masked)."""
    settings, catalogs = _settings(), Catalogs()
    start = _since(since)
    entries = _once(settings, lambda conn: audit_entries(conn, customer, start, limit, ZoneInfo(settings.timezone)))
    if entries is None:
        _no_such_customer(catalogs, settings, customer or "")
    if as_json:
        _print_json(entries)
        return
    _table(
        catalogs,
        settings,
        [OP("time"), OP("customer account"), OP("action"), OP("by"), OP("details")],
        [
            [
                e["at"],
                e["customer_account"] or "-",
                e["action"],
                f"{e['channel']}:{e['by']}",
                json.dumps(e["details"], ensure_ascii=False),
            ]
            for e in entries
        ],
    )


@cli.command("optouts", epilog=reads("timezone"))
def optouts_command(as_json: Annotated[bool, typer.Option("--json", help="a JSON array")] = False) -> None:
    """Every address that asked for no more messages (STOP, NGỪNG, ...), newest first (masked): who
    blocks it (Twilio too, after its own words; us only, after NGỪNG) and when it was reminded how to
    opt back in."""
    settings, catalogs = _settings(), Catalogs()
    found = _once(settings, lambda conn: opt_outs(conn, ZoneInfo(settings.timezone)))
    if as_json:
        _print_json(found)
        return
    lang = settings.operator_language
    blocked = {True: catalogs.render(OP("provider and us"), lang), False: catalogs.render(OP("us only"), lang)}
    _table(
        catalogs,
        settings,
        [OP("time"), OP("channel"), OP("address"), OP("keyword"), OP("blocked by"), OP("reminded")],
        [
            [o["at"], o["channel"], o["address"], o["keyword"], blocked[o["provider_blocks"]], o["reminded"] or "-"]
            for o in found
        ],
    )


@cli.command("outbox", epilog=reads("timezone"))
def outbox_command(
    status: Annotated[
        str | None,
        typer.Option("--status", metavar="[" + "|".join(STATUSES) + "]", help="only messages with this status"),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="at most this many, newest first")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="a JSON array")] = False,
) -> None:
    """Messages waiting to be sent or already sent, newest first (addresses masked)."""
    settings, catalogs = _settings(), Catalogs()
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(
            catalogs.render(
                OP("--status must be one of {statuses}", statuses=Listed(tuple(Literal(s) for s in STATUSES), "or")),
                settings.operator_language,
            )
        )
    found = _once(settings, lambda conn: outbox(conn, status, limit, ZoneInfo(settings.timezone)))
    if as_json:
        _print_json(found)
        return
    _table(
        catalogs,
        settings,
        [OP("created"), OP("kind"), OP("address"), OP("status"), OP("attempts"), OP("error code"), OP("next attempt")],
        [
            [
                m["created"],
                m["kind"],
                m["address"],
                m["status"],
                str(m["attempts"]),
                str(m["error_code"] or "-"),
                m["next_attempt"] or "-",
            ]
            for m in found
        ],
    )


sessions_cli = typer.Typer(no_args_is_help=True, help="Signed-in chat sessions.")
cli.add_typer(sessions_cli, name="sessions")
cli.add_typer(api_token_cli, name="api-token")


@sessions_cli.command("revoke", epilog=reads())
def sessions_revoke(
    customer_account: Annotated[str, typer.Argument(help="Customer Account Number")],
    operator: Annotated[str | None, typer.Option("--operator", help="who does this (default: the OS user)")] = None,
) -> None:
    """End every chat session signed in to a customer account, at its next message (audited)."""
    settings = _settings()
    catalogs = Catalogs()
    who = operator or getpass.getuser()
    done = _once(
        settings, lambda conn: revoke_sessions(conn, customer_account, "operator", who, datetime.now(UTC)), write=True
    )
    if done is None:
        _no_such_customer(catalogs, settings, customer_account)
    say(
        catalogs,
        settings,
        OP(
            "Customer account {number}: signed-in sessions: {n}. They end at their next message.",
            number=Literal(mask(customer_account)),
            n=done,
        ),
    )


@cli.command(epilog=reads())
def dialogs(mermaid: Annotated[bool, typer.Option("--mermaid", help="print a Mermaid diagram")] = False) -> None:
    """Check the dialog graph against the catalogs; with --mermaid, draw it."""
    from dialogs.graph import build_engine

    settings, catalogs = _settings(), Catalogs()
    engine = build_engine(settings.dialog_settings())
    engine.check_catalog(catalogs.has)
    if mermaid:
        print(engine.mermaid(), end="")
    else:
        say(
            catalogs,
            settings,
            OP(
                "{states} states, {transitions} transitions: graph and catalogs OK",
                states=len(engine.states),
                transitions=len(engine.edges()),
            ),
        )


@cli.command("settings", epilog=reads())
def show_settings() -> None:
    """Every OUTAGEBOT_* setting with the value in force here (secrets shown only as set or unset)."""
    settings = _settings()
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr) or (name.endswith(("pepper", "token")) and value is not None):
            print(f"OUTAGEBOT_{name.upper()}=(set)")
            continue
        if value is None:
            shown = "(unset)"
        elif name == "database_url":
            shown = make_url(value).render_as_string(hide_password=True)
        else:
            shown = str(value)
        default = "" if value == field.default else f"  (default: {field.default})"
        print(f"OUTAGEBOT_{name.upper()}={shown}{default}")


def _database_error(exc: DBAPIError | ArgumentError | NoSuchModuleError) -> NoReturn:
    """One line for a database that cannot be reached or a URL that cannot be used (no password)."""
    settings = Settings.model_construct()
    with contextlib.suppress(Exception):
        settings = Settings()
    try:
        url = make_url(settings.database_url).render_as_string(hide_password=True)
    except ArgumentError:
        url = "OUTAGEBOT_DATABASE_URL"
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        err.print(
            Catalogs().render(
                OP("OUTAGEBOT_DATABASE_URL cannot be used: {reason}", reason=Literal(str(exc))),
                settings.operator_language,
            ),
            markup=False,
            style="red",
        )
        raise SystemExit(EXIT_CONFIG)
    reason = (str(exc.orig if exc.orig is not None else exc).strip().splitlines() or [type(exc).__name__])[0]
    err.print(
        Catalogs().render(
            OP(
                "Cannot connect to the database {url}: {reason} (--debug shows the details)",
                url=Literal(url),
                reason=Literal(mask_text(reason)),
            ),
            settings.operator_language,
        ),
        markup=False,
        style="red",
    )
    raise SystemExit(EXIT_UNREACHABLE)


def main() -> None:
    """Entry point of the ``outagebot`` console script: errors an operator can act on are one line."""
    try:
        cli()
    except (OperationalError, InterfaceError, ArgumentError, NoSuchModuleError) as exc:
        if DEBUG["on"]:
            raise
        _database_error(exc)


from bot import cli_alerts as _cli_alerts  # noqa: E402, F401  (its commands: alert ..., worker)
