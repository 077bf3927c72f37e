"""``outagebot api-token``: the bearer tokens of the outage-management system's HTTP API (``bot.api``).

A token is printed once, on standard output alone (so that a script can take it), when it is made;
only its keyed hash is stored. Making and revoking tokens is audited (channel ``cli``).
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated

import typer

from bot.i18n import OP
from bot.storage import api_tokens
from dialogs.text import Literal

api_token_cli = typer.Typer(
    no_args_is_help=True, help="Tokens of the HTTP API for the outage-management system (POST /api/alerts)."
)

_NAME = typer.Argument(help="the token's name, e.g. oms (1-100 characters, no spaces); alerts show api:NAME")
_OPERATOR = typer.Option("--operator", help="who does this (default: the OS user)")


@api_token_cli.command("create", epilog="Reads OUTAGEBOT_DATABASE_URL, OUTAGEBOT_PEPPER or OUTAGEBOT_PEPPER_FILE.")
def create(name: Annotated[str, _NAME], operator: Annotated[str | None, _OPERATOR] = None) -> None:
    """Make a token and print it once: it is stored only as a keyed hash and cannot be shown again."""
    from bot.cli import EXIT_BAD_DATA, EXIT_USAGE, _config_error, _once, _settings, say
    from bot.config import ConfigError
    from bot.i18n import Catalogs

    settings, catalogs = _settings(), Catalogs()
    if not api_tokens.valid_name(name):
        say(catalogs, settings, OP("A token's name is 1 to 100 characters, without spaces."), error=True)
        raise typer.Exit(EXIT_USAGE)
    try:
        pepper, _created = settings.resolve_pepper()
    except ConfigError as exc:
        _config_error(settings, str(exc))
    who = operator or getpass.getuser()
    token = _once(settings, lambda conn: api_tokens.create(conn, pepper, name, who, datetime.now(UTC)), write=True)
    if token is None:
        say(
            catalogs,
            settings,
            OP("There is already an API token called {name} (revoked ones keep their names).", name=Literal(name)),
            error=True,
        )
        raise typer.Exit(EXIT_BAD_DATA)
    print(token)
    say(
        catalogs,
        settings,
        OP(
            "API token {name} made. Keep it in the outage-management system's secrets now: it will not be shown "
            "again. It goes in each request as Authorization: Bearer TOKEN.",
            name=Literal(name),
        ),
        to_stderr=True,
    )


@api_token_cli.command("list", epilog="Reads OUTAGEBOT_DATABASE_URL, OUTAGEBOT_TIMEZONE.")
def list_tokens() -> None:
    """Every API token: name, when it was made, and when it was revoked (never the token)."""
    from bot.cli import _once, _settings, _table
    from bot.i18n import Catalogs

    settings = _settings()
    found = _once(settings, api_tokens.tokens)

    def shown(when: datetime | None) -> str:
        return when.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M") if when is not None else "-"

    _table(
        Catalogs(),
        settings,
        [OP("name"), OP("made"), OP("revoked")],
        [[t.name, shown(t.created_at), shown(t.revoked_at)] for t in found],
    )


@api_token_cli.command("revoke", epilog="Reads OUTAGEBOT_DATABASE_URL.")
def revoke(name: Annotated[str, _NAME], operator: Annotated[str | None, _OPERATOR] = None) -> None:
    """Refuse a token from now on (audited); its name stays taken."""
    from bot.cli import EXIT_BAD_DATA, _once, _settings, say
    from bot.i18n import Catalogs

    settings, catalogs = _settings(), Catalogs()
    who = operator or getpass.getuser()
    done = _once(settings, lambda conn: api_tokens.revoke(conn, name, who, datetime.now(UTC)), write=True)
    if done is None:
        say(catalogs, settings, OP("No API token called {name}.", name=Literal(name)), error=True)
        raise typer.Exit(EXIT_BAD_DATA)
    say(
        catalogs,
        settings,
        OP("API token {name} revoked: requests carrying it are refused from now on.", name=Literal(name))
        if done
        else OP("API token {name} was revoked already.", name=Literal(name)),
    )
