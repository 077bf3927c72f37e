"""The ``outagebot`` command: chat in the terminal, import accounts, seed demo data, draw the dialogs.

What the command prints for operators (import reports, errors) comes from the catalogs too, in
``OUTAGEBOT_OPERATOR_LANGUAGE``; what customers read is in their conversation's language.
"""

from __future__ import annotations

import logging
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bot.app import App, build
from bot.channels.base import Inbound, render_text
from bot.config import Settings
from bot.exporter import LeftOut, export_contacts
from bot.i18n import OP, Catalogs
from bot.importer import ImportReport, import_file
from bot.storage.db import is_empty
from dialogs.text import Literal, Msg

cli = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="outagebot: rotating-outage alert contacts, in Vietnamese and English.")
err = Console(stderr=True, soft_wrap=True, highlight=False)
PHASES = {"validated": OP("checking rows"), "codes": OP("hashing access codes"),
          "customers": OP("customer accounts"), "service accounts": OP("service accounts"),
          "contacts": OP("contacts")}


def say(catalogs: Catalogs, settings: Settings, msg: Msg, *, error: bool = False, to_stderr: bool = False) -> None:
    """Print an operator message in the operator's language (never read as Rich markup)."""
    text = catalogs.render(msg, settings.operator_language)
    if error or to_stderr:
        err.print(text, markup=False, style="red" if error else None)
    else:
        print(text)


def _app() -> App:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return build(Settings())


def _seed(app: App) -> ImportReport:
    demo = resources.files("bot").joinpath("demo_accounts.csv")
    with resources.as_file(demo) as path:
        return import_file(app.db, app.hasher, Path(path), region=app.settings.default_region)


@cli.command()
def chat(
    lang: Annotated[str | None, typer.Option("--lang", help="vi or en: the language offered first")] = None,
    address: Annotated[str, typer.Option("--address", help="who is chatting (one session each)")] = "local",
) -> None:
    """Chat with the bot in this terminal (reads one message per line when input is not a terminal)."""
    if lang not in (None, "vi", "en"):
        settings = Settings()
        raise typer.BadParameter(Catalogs().render(OP("--lang must be vi or en"), settings.operator_language))
    app = _app()
    try:
        if is_empty(app.db.engine):
            _seed(app)
            say(app.catalogs, app.settings, OP("Loaded the demo accounts (see README: 700000001 / 482913, "
                                               "700000002 / 731562)."), to_stderr=True)
        interactive = sys.stdin.isatty()

        def turn(text: str) -> None:
            reply = app.conversation.handle(Inbound("console", address, text, locale_hint=lang))
            for message in render_text(reply, app.catalogs):
                print(message)
            print(flush=True)

        turn("")
        while True:
            try:
                line = input("> " if interactive else "")
            except EOFError:
                break
            turn(line)
    except KeyboardInterrupt:
        print()
    finally:
        app.close()


@cli.command("import-accounts")
def import_accounts(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CIS export (CSV)")],
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="import the good rows anyway")] = False,
) -> None:
    """Import (or update in place) customer accounts, service accounts and contacts from a CSV file."""
    app = _app()
    catalogs, settings = app.catalogs, app.settings
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(phase: str, n: int) -> None:
                if phase not in tasks:
                    label = catalogs.render(PHASES.get(phase, Literal(phase)), settings.operator_language)
                    tasks[phase] = bar.add_task(label, total=None)
                bar.advance(tasks[phase], n)

            try:
                report = import_file(app.db, app.hasher, file, skip_invalid=skip_invalid,
                                     region=settings.default_region, progress=progress)
            except UnicodeDecodeError as exc:
                say(catalogs, settings, OP("{file}: not UTF-8 text (byte {position}); nothing imported.",
                                           file=Literal(str(file)), position=exc.start), error=True)
                raise typer.Exit(2) from None
        for bad in report.bad:
            say(catalogs, settings, OP("line {line}: {problems}", line=bad.line, problems=list(bad.problems)),
                to_stderr=True)
        if report.error is not None:
            say(catalogs, settings, report.error, error=True)
            raise typer.Exit(4)
        if not report.imported:
            say(catalogs, settings, OP("{bad} bad row(s) of {rows}; nothing imported. Fix them, or use "
                                       "--skip-invalid to import the good rows.", bad=len(report.bad),
                                       rows=report.rows), error=True)
            raise typer.Exit(1)
        say(catalogs, settings, OP(
            "imported {good} of {rows} rows: customer accounts +{customers_added} ~{customers_updated}, "
            "access codes hashed {codes}, service accounts +{accounts_added} ~{accounts_updated}, "
            "contacts +{contacts_added} ~{contacts_updated}, assignments +{assignments}; "
            "{unchanged} contact rows unchanged since the last import (customers' changes to them kept)",
            good=report.rows - len(report.bad), rows=report.rows, customers_added=report.customers_added,
            customers_updated=report.customers_updated, codes=report.codes_hashed,
            accounts_added=report.service_accounts_added, accounts_updated=report.service_accounts_updated,
            contacts_added=report.contacts_added, contacts_updated=report.contacts_updated,
            assignments=report.assignments_added, unchanged=report.rows_unchanged))
        if report.bad:
            raise typer.Exit(3)
    finally:
        app.close()


def _left_out(left: LeftOut) -> Msg:
    contact, customer = Literal(left.contact), Literal(left.customer)
    if left.reason == "no_service_account":
        return OP("not exported: {contact} of customer_account {customer} is on no service account (every row "
                  "of the format is a service account)", contact=contact, customer=customer)
    return OP("not exported: {contact} of customer_account {customer} has neither a phone nor an email (the "
              "import would refuse the row)", contact=contact, customer=customer)


@cli.command("export-contacts")
def export_contacts_command(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="CSV file to write")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace the file if it exists")] = False,
) -> None:
    """Write the contacts as they are now (customers' changes included) in the import's own CSV format."""
    app = _app()
    catalogs, settings = app.catalogs, app.settings
    try:
        if file.exists() and not overwrite:
            say(catalogs, settings, OP("{file} exists; nothing written (use --overwrite to replace it).",
                                       file=Literal(str(file))), error=True)
            raise typer.Exit(2)
        partial = file.with_name(f".{file.name}.partial")
        try:
            with partial.open("w", newline="", encoding="utf-8") as stream:
                report = export_contacts(app.db, stream)
            os.replace(partial, file)  # readers never see half a file
        except OSError as exc:
            say(catalogs, settings, OP("{file}: cannot write it ({error}); nothing written.", file=Literal(str(file)),
                                       error=Literal(exc.strerror or type(exc).__name__)), error=True)
            raise typer.Exit(2) from None
        finally:
            partial.unlink(missing_ok=True)
        for left in report.left_out:
            say(catalogs, settings, _left_out(left), to_stderr=True)
        say(catalogs, settings, OP(
            "exported {rows} rows to {file}: {customers} customer accounts, {accounts} service accounts, "
            "{contacts} contacts; access_code is left empty (only hashes are stored; the import keeps the "
            "stored codes)", rows=report.rows, file=Literal(str(file)), customers=report.customers,
            accounts=report.service_accounts, contacts=report.contacts))
    finally:
        app.close()


@cli.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 8080,
    workers: Annotated[int, typer.Option("--workers", help="worker processes (PostgreSQL for more than 1)")] = 1,
) -> None:
    """Serve the webhooks (SMS now) over HTTP with uvicorn."""
    import uvicorn

    settings = Settings()
    catalogs = Catalogs()
    if settings.sms_enabled:
        say(catalogs, settings, OP("SMS webhooks on: {url}/sms/inbound (status callbacks: {url}/sms/status)",
                                   url=Literal((settings.public_url or "").rstrip("/"))), to_stderr=True)
    else:
        say(catalogs, settings, OP("SMS webhooks are off: set OUTAGEBOT_PUBLIC_URL, OUTAGEBOT_TWILIO_ACCOUNT_SID, "
                                   "OUTAGEBOT_TWILIO_AUTH_TOKEN and OUTAGEBOT_TWILIO_FROM."), to_stderr=True)
    build(settings).close()  # migrate once, before any worker starts
    uvicorn.run("bot.web:from_environment", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)


@cli.command("seed-demo")
def seed_demo() -> None:
    """Load the demo accounts (two businesses, Vietnamese and English contacts)."""
    app = _app()
    try:
        report = _seed(app)
        say(app.catalogs, app.settings, OP("demo data loaded: {rows} rows (customer 700000001 code 482913; "
                                           "customer 700000002 code 731562)", rows=report.rows))
    finally:
        app.close()


@cli.command()
def dialogs(mermaid: Annotated[bool, typer.Option("--mermaid", help="print a Mermaid diagram")] = False) -> None:
    """Check the dialog graph against the catalogs; with --mermaid, draw it."""
    from dialogs.graph import build_engine

    settings, catalogs = Settings(), Catalogs()
    engine = build_engine(settings.dialog_settings())
    engine.check_catalog(catalogs.has)
    if mermaid:
        print(engine.mermaid(), end="")
    else:
        say(catalogs, settings, OP("{states} states, {transitions} transitions: graph and catalogs OK",
                                   states=len(engine.states), transitions=len(engine.edges())))


def main() -> None:
    """Entry point of the ``outagebot`` console script."""
    cli()
