"""The ``outagebot`` command: chat in the terminal, import accounts, seed demo data, draw the dialogs.

Operator-facing output (import reports, errors) is English, like the rest of the operators' tools;
everything a *customer* reads goes through the catalogs.
"""

from __future__ import annotations

import logging
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
from bot.importer import ImportReport, import_file
from bot.storage.db import is_empty

cli = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="outagebot: rotating-outage alert contacts, in Vietnamese and English.")
err = Console(stderr=True, soft_wrap=True, highlight=False)


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
        raise typer.BadParameter("--lang must be vi or en")
    app = _app()
    try:
        if is_empty(app.db.engine):
            _seed(app)
            err.print("[dim]Loaded the demo accounts (see README: 700000001 / 482913, 700000002 / 731562).[/]")
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
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(phase: str, n: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=None)
                bar.advance(tasks[phase], n)

            try:
                report = import_file(app.db, app.hasher, file, skip_invalid=skip_invalid,
                                     region=app.settings.default_region, progress=progress)
            except UnicodeDecodeError as exc:
                err.print(f"[red]{file}: not UTF-8 text ({exc.reason} at byte {exc.start}); nothing imported.[/]")
                raise typer.Exit(2) from None
        for bad in report.bad:
            err.print(f"line {bad.line}: {bad.reason}")
        if not report.imported:
            err.print(f"[red]{len(report.bad)} bad row(s) of {report.rows}; nothing imported. "
                      "Fix them, or use --skip-invalid to import the good rows.[/]")
            raise typer.Exit(1)
        print(f"imported {report.rows - len(report.bad)} of {report.rows} rows: "
              f"customers +{report.customers_added} ~{report.customers_updated}, "
              f"access codes hashed {report.codes_hashed}, "
              f"service accounts +{report.service_accounts_added} ~{report.service_accounts_updated}, "
              f"contacts +{report.contacts_added} ~{report.contacts_updated}, "
              f"assignments +{report.assignments_added}")
        if report.bad:
            raise typer.Exit(3)
    finally:
        app.close()


@cli.command("seed-demo")
def seed_demo() -> None:
    """Load the demo accounts (two businesses, Vietnamese and English contacts)."""
    app = _app()
    try:
        report = _seed(app)
        print(f"demo data loaded: {report.rows} rows "
              "(customer 700000001 code 482913; customer 700000002 code 731562)")
    finally:
        app.close()


@cli.command()
def dialogs(mermaid: Annotated[bool, typer.Option("--mermaid", help="print a Mermaid diagram")] = False) -> None:
    """Check the dialog graph against the catalogs; with --mermaid, draw it."""
    from bot.i18n import Catalogs
    from dialogs.graph import build_engine

    engine = build_engine(Settings().dialog_settings())
    engine.check_catalog(Catalogs().has)
    if mermaid:
        print(engine.mermaid(), end="")
    else:
        print(f"{len(engine.states)} states, {len(engine.edges())} transitions: graph and catalogs OK")


def main() -> None:
    """Entry point of the ``outagebot`` console script."""
    cli()
