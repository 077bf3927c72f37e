"""``outagebot alert ...`` and ``outagebot worker``: operators issue rotating-outage alerts and watch them go.

``alert send`` shows what would be sent (the text in both languages, the recipients by channel and
language, the SMS segments), asks, creates the alert with its deliveries in one transaction, and then
shows a progress bar until every delivery is final. While it waits it sends too (the same dispatcher
as ``outagebot worker``), so an alert goes out even where no worker runs; ``--no-wait`` leaves the
sending to the workers.
"""

from __future__ import annotations

import asyncio
import csv
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Connection, select

from bot.alerts import SMS_SEGMENTS, Alert, Texts
from bot.app import App
from bot.channels.segments import count_segments
from bot.cli import (
    EXIT_BAD_DATA,
    EXIT_USAGE,
    SETTINGS_FOR_TURNS,
    _app,
    _once,
    _print_json,
    _settings,
    _table,
    cli,
    err,
    reads,
    say,
)
from bot.config import Settings
from bot.i18n import OP, OPN, Catalogs, format_when
from bot.security import mask
from bot.storage import alerts as stored
from bot.storage.alerts import Account, AlertError, AlertRequest
from bot.storage.models import ServiceAccount, table
from dialogs.text import Listed, Literal, Msg

alert_cli = typer.Typer(no_args_is_help=True, help="Rotating-outage alerts: send, watch, cancel, report.")
cli.add_typer(alert_cli, name="alert")

SENDING = (
    "sms_per_second",
    "telegram_per_second",
    "pacing",
    "dispatch_batch",
    "dispatch_concurrency",
    "dispatch_lease_seconds",
    "alert_max_attempts",
    "twilio_account_sid",
    "twilio_auth_token",
    "twilio_from",
    "twilio_messaging_service_sid",
    "twilio_api_url",
    "public_url",
    "telegram_token",
    "telegram_api_url",
)
_ERRORS = {
    "kind": OP("--kind must be one of {kinds}."),
    "no_groups": OP("Name at least one rotating outage group with --groups."),
    "too_many_groups": OP("At most {limit} groups in one alert."),
    "start_after_end": OP("The start must be before the end."),
    "past": OP("That window is already over: nothing would be worth sending."),
    "note_too_long": OP("The note is longer than {limit} characters."),
    "unknown_groups": OP("No service account or subscriber is in these groups: {groups}. Nothing was created."),
    "nothing_to_follow": OP(
        "There is no earlier advance or started alert for these groups that a {kind} alert could answer."
    ),
    "key_reused": OP("That idempotency key was used for another alert."),
}
_SAMPLE = Account("3-000-0000", "1234 Example St")


def _fail(catalogs: Catalogs, settings: Settings, exc: AlertError) -> NoReturn:
    msg = _ERRORS.get(exc.code, OP("{code}", code=Literal(exc.code)))
    params = {
        "kinds": Listed(tuple(Literal(k) for k in stored.KINDS), "or"),
        "limit": Literal(exc.details[0] if exc.details else ""),
        "groups": Literal(", ".join(exc.details)),
        "kind": Literal(exc.details[0] if exc.details else ""),
    }
    say(catalogs, settings, Msg(msg.id, {k: v for k, v in params.items() if "{" + k + "}" in msg.id}), error=True)
    raise typer.Exit(EXIT_USAGE)


def parse_time(text: str, settings: Settings) -> datetime:
    """``"2026-11-28 14:00"`` in the utility's zone, or ISO 8601 with an offset; aware, in UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise typer.BadParameter(
            Catalogs().render(
                OP("{value} is not a time like 2026-11-28 14:00", value=Literal(text)), settings.operator_language
            )
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=settings.zone)
    return moment.astimezone(UTC)


def _sample_account(conn: Connection, groups: tuple[str, ...]) -> Account:
    sa = table(ServiceAccount)
    row = conn.execute(
        select(sa.c.number, sa.c.service_address).where(sa.c.outage_group.in_(groups)).order_by(sa.c.number).limit(1)
    ).first()
    return Account(str(row[0]), str(row[1])) if row is not None else _SAMPLE


def _preview(
    catalogs: Catalogs, settings: Settings, request: AlertRequest, audience: stored.Audience, sample: Account
) -> dict[str, Any]:
    """What the operator sees before confirming, as data (printed as text, or as JSON)."""
    texts = Texts(catalogs, settings.zone, settings.utility_name, settings.support_phone)
    alert = Alert(request.kind, request.starts_at, request.ends_at, request.note_en, request.note_vi)
    messages: dict[str, dict[str, Any]] = {}
    for locale in ("vi", "en"):
        text = texts.render(alert, locale, [sample], [], budget=SMS_SEGMENTS[locale])
        segments = count_segments(text)
        messages[locale] = {"text": text, "segments": segments.count, "encoding": segments.encoding}
    by_channel: dict[str, int] = {}
    by_language: dict[str, int] = {}
    segments_total = 0
    for (channel, locale), n in audience.counts.items():
        by_channel[channel] = by_channel.get(channel, 0) + n
        by_language[locale] = by_language.get(locale, 0) + n
        if channel == "sms":
            segments_total += n * int(messages.get(locale, messages["en"])["segments"])
    return {
        "kind": request.kind,
        "groups": list(request.groups),
        "start": request.starts_at.isoformat(),
        "end": request.ends_at.isoformat(),
        "follows": audience.follows_id,
        "recipients": audience.total,
        "by_channel": by_channel,
        "by_language": by_language,
        "messages": messages,
        "sms_segments_estimate": segments_total,
        "sms_segments_most": sum(
            n * SMS_SEGMENTS.get(locale, 2) for (channel, locale), n in audience.counts.items() if channel == "sms"
        ),
    }


def _show_preview(catalogs: Catalogs, settings: Settings, preview: dict[str, Any]) -> None:
    lang = settings.operator_language
    out = err.print

    def line(msg: Msg) -> None:
        out(catalogs.render(msg, lang), markup=False)

    if preview["follows"] is not None:
        line(OP("Answers alert {id}: goes to exactly those it reached.", id=Literal(str(preview["follows"]))))
    for locale, name in (("vi", OP("Vietnamese")), ("en", OP("English"))):
        message = preview["messages"][locale]
        line(
            OPN(
                "{language} ({n} SMS segment, {encoding}), for a recipient with one service account:",
                "{language} ({n} SMS segments, {encoding}), for a recipient with one service account:",
                message["segments"],
                language=name,
                encoding=Literal(message["encoding"]),
            )
        )
        out("  " + message["text"].replace("\n", "\n  "), markup=False, highlight=False)
    by_channel = preview["by_channel"]
    by_language = preview["by_language"]
    line(
        OPN(
            "{n} recipient: {sms} by SMS, {telegram} on Telegram; {vi} in Vietnamese, {en} in English.",
            "{n} recipients: {sms} by SMS, {telegram} on Telegram; {vi} in Vietnamese, {en} in English.",
            preview["recipients"],
            sms=Literal(str(by_channel.get("sms", 0))),
            telegram=Literal(str(by_channel.get("telegram", 0))),
            vi=Literal(str(by_language.get("vi", 0))),
            en=Literal(str(by_language.get("en", 0))),
        )
    )
    line(
        OP(
            "SMS segments: about {estimate} in total (at most {most}); each message names the recipient's own "
            "service accounts, so lengths vary.",
            estimate=Literal(str(preview["sms_segments_estimate"])),
            most=Literal(str(preview["sms_segments_most"])),
        )
    )


@alert_cli.command("send", epilog=reads(*SETTINGS_FOR_TURNS, *SENDING))
def alert_send(
    kind: Annotated[str, typer.Option("--kind", metavar="[" + "|".join(stored.KINDS) + "]", help="what is happening")],
    groups: Annotated[str, typer.Option("--groups", help="rotating outage groups, comma-separated: A012,B007")],
    start: Annotated[str, typer.Option("--start", help='"2026-11-28 14:00" (utility\'s zone) or ISO 8601')],
    end: Annotated[str, typer.Option("--end", help="expected end, as --start")],
    note: Annotated[str | None, typer.Option("--note", help="a line added as written, in both languages")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be sent; create nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="return once created; workers send it")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Issue a rotating-outage alert to every contact and subscriber of the groups, then watch it go."""
    settings, catalogs = _settings(), Catalogs()
    note = (note or "").strip() or None
    request = AlertRequest(
        kind.strip().lower(),
        tuple(groups.split(",")),
        parse_time(start, settings),
        parse_time(end, settings),
        note,
        note,
    )
    now = datetime.now(UTC)

    def plan(conn: Connection) -> tuple[AlertRequest, stored.Audience, Account]:
        checked = stored.check(conn, request, now)
        return checked, stored.audience(conn, checked), _sample_account(conn, checked.groups)

    try:
        checked, audience, sample = _once(settings, plan)
    except AlertError as exc:
        _fail(catalogs, settings, exc)
    if checked.kind in stored.FOLLOWS and audience.follows_id is None:
        _fail(catalogs, settings, AlertError("nothing_to_follow", (checked.kind,)))
    preview = _preview(catalogs, settings, checked, audience, sample)
    if as_json and dry_run:
        _print_json({"id": None, "dry_run": True, **preview})
        return
    _show_preview(catalogs, settings, preview)
    if dry_run:
        say(catalogs, settings, OP("Dry run: nothing was created."), to_stderr=True)
        return
    if not yes:
        if not sys.stdin.isatty():
            say(catalogs, settings, OP("Not a terminal: add --yes to send without being asked."), error=True)
            raise typer.Exit(EXIT_USAGE)
        if not typer.confirm(catalogs.render(OP("Send this alert now?"), settings.operator_language), err=True):
            say(catalogs, settings, OP("Nothing was sent."), to_stderr=True)
            raise typer.Exit(EXIT_BAD_DATA)
    app = _app(batch=True)  # planning a large alert is no turn: longer waits for locks
    try:
        try:
            created = app.db.run(lambda conn: stored.create(conn, checked, datetime.now(UTC), _operator()))
        except AlertError as exc:
            _fail(catalogs, settings, exc)
        say(
            catalogs,
            settings,
            OPN(
                "Alert {id} created: {n} delivery.",
                "Alert {id} created: {n} deliveries.",
                created.recipients,
                id=Literal(str(created.id)),
            ),
            to_stderr=True,
        )
        final: stored.Progress | None = None
        if not no_wait and created.recipients:
            final = _watch(app, created.id, catalogs, quiet=False)
        result: dict[str, Any] = {"id": created.id, **preview, "recipients": created.recipients}
        if final is not None:
            result["deliveries"] = _progress_json(final)
        if as_json:
            _print_json(result)
    finally:
        app.close()


def _operator() -> str:
    try:
        return "cli:" + getpass.getuser()
    except Exception:  # no user name (a container): still an operator
        return "cli"


def _watch(app: App, alert_id: int, catalogs: Catalogs, *, quiet: bool) -> stored.Progress:
    """A progress bar until every delivery of the alert is final, sending meanwhile."""
    settings = app.settings
    lang = settings.operator_language

    from bot import worker

    async def run() -> stored.Progress:
        stop = asyncio.Event()
        sending = asyncio.create_task(worker.work(app, stop=stop))
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[counts]}"),
        )
        try:
            with Progress(*columns, console=err, transient=False, disable=quiet) as bar:
                task = bar.add_task(catalogs.render(OP("sending"), lang), total=None, counts="")
                while True:
                    found = await asyncio.to_thread(app.db.read, lambda conn: stored.progress(conn, alert_id))
                    counts = "  ".join(f"{status} {n}" for status, n in sorted(found.by_status().items()))
                    bar.update(task, total=found.total, completed=found.done, counts=counts)
                    if found.open == 0 or sending.done():
                        return found
                    await asyncio.sleep(0.5)
        finally:
            stop.set()
            try:
                await asyncio.wait_for(sending, 15)
            except BaseException:
                sending.cancel()

    return worker.run(run())


def _progress_json(found: stored.Progress) -> dict[str, Any]:
    by_channel: dict[str, dict[str, int]] = {}
    for (status, channel), n in found.counts.items():
        by_channel.setdefault(channel, {})[status] = n
    return {
        "total": found.total,
        "open": found.open,
        "by_status": found.by_status(),
        "by_channel": by_channel,
        "sms_segments": found.segments,
        "failures": [{"reason": r, "channel": c, "count": n} for r, c, n in found.failures],
    }


def _when(moment: datetime | None, settings: Settings) -> str:
    return format_when(moment, settings.operator_language, settings.zone) if moment is not None else "-"


@alert_cli.command("status", epilog=reads("timezone"))
def alert_status(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="the alert's id")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """An alert's deliveries: counts by status and channel, SMS segments, failures with reasons."""
    settings, catalogs = _settings(), Catalogs()
    info, found = _once(settings, lambda conn: (stored.get(conn, alert_id), stored.progress(conn, alert_id)))
    if info is None:
        say(catalogs, settings, OP("No alert {id}.", id=Literal(str(alert_id))), error=True)
        raise typer.Exit(EXIT_BAD_DATA)
    if as_json:
        _print_json({**_info_json(info), "deliveries": _progress_json(found)})
        return
    say(catalogs, settings, _headline(info, settings))
    statuses = sorted({s for s, _ in found.counts})
    channels = sorted({c for _, c in found.counts})
    rows = [[s, *(str(found.counts.get((s, c), 0)) for c in channels), str(found.by_status()[s])] for s in statuses]
    _table(catalogs, settings, [OP("status"), *(Msg.of(c) for c in channels), OP("total")], rows)
    say(catalogs, settings, OP("SMS segments sent: {n}", n=Literal(str(found.segments))))
    if found.failures:
        say(catalogs, settings, OP("Failures:"))
        _table(
            catalogs,
            settings,
            [OP("reason"), OP("channel"), OP("count")],
            [[r, c, str(n)] for r, c, n in found.failures],
        )


def _headline(info: stored.AlertInfo, settings: Settings) -> Msg:
    return OP(
        "Alert {id} ({kind}) for {groups}, {start} to {end}: {status}, {n} recipients.",
        id=Literal(str(info.id)),
        kind=Literal(info.kind),
        groups=Literal(", ".join(info.groups)),
        start=Literal(_when(info.starts_at, settings)),
        end=Literal(_when(info.ends_at, settings)),
        status=Literal(info.status),
        n=Literal(str(info.recipients)),
    )


def _info_json(info: stored.AlertInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "kind": info.kind,
        "groups": list(info.groups),
        "start": info.starts_at.isoformat(),
        "end": info.ends_at.isoformat(),
        "note": {"en": info.note_en, "vi": info.note_vi},
        "follows": info.follows_id,
        "status": info.status,
        "recipients": info.recipients,
        "created_by": info.created_by,
        "created_at": info.created_at.isoformat(),
        "cancelled_at": info.cancelled_at.isoformat() if info.cancelled_at else None,
    }


@alert_cli.command("list", epilog=reads("timezone"))
def alert_list(
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="at most this many, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="a JSON array")] = False,
) -> None:
    """The latest alerts, newest first."""
    settings, catalogs = _settings(), Catalogs()
    found = _once(settings, lambda conn: stored.recent(conn, limit))
    if as_json:
        _print_json([_info_json(info) for info in found])
        return
    _table(
        catalogs,
        settings,
        [OP("id"), OP("kind"), OP("groups"), OP("start"), OP("end"), OP("status"), OP("recipients"), OP("created")],
        [
            [
                str(i.id),
                i.kind,
                ", ".join(i.groups),
                _when(i.starts_at, settings),
                _when(i.ends_at, settings),
                i.status,
                str(i.recipients),
                _when(i.created_at, settings),
            ]
            for i in found
        ],
    )


@alert_cli.command("cancel", epilog=reads())
def alert_cancel(alert_id: Annotated[int, typer.Argument(metavar="ID", help="the alert's id")]) -> None:
    """Stop an alert: deliveries not yet sent are not sent (a few in flight may still arrive)."""
    settings, catalogs = _settings(), Catalogs()
    stopped = _once(settings, lambda conn: stored.cancel(conn, alert_id, datetime.now(UTC)), write=True)
    if stopped is None:
        say(catalogs, settings, OP("No alert {id}.", id=Literal(str(alert_id))), error=True)
        raise typer.Exit(EXIT_BAD_DATA)
    say(
        catalogs,
        settings,
        OPN(
            "Alert {id} cancelled: {n} delivery stopped.",
            "Alert {id} cancelled: {n} deliveries stopped.",
            stopped,
            id=Literal(str(alert_id)),
        ),
    )


REPORT_COLUMNS = (
    "delivery",
    "destination",
    "channel",
    "address",
    "language",
    "status",
    "attempts",
    "sms_segments",
    "provider_id",
    "error_code",
    "reason",
    "sent_at",
    "updated_at",
)


@alert_cli.command("report", epilog=reads())
def alert_report(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="the alert's id")],
    file: Annotated[Path, typer.Argument(metavar="FILE.csv", help="where to write the report")],
    full: Annotated[bool, typer.Option("--full", help="whole numbers and chats (personal data: keep it safe)")] = False,
) -> None:
    """One CSV row per delivery: who (masked unless --full), channel, status, attempts, failure reason."""
    settings, catalogs = _settings(), Catalogs()

    def write(conn: Connection) -> int | None:
        if stored.get(conn, alert_id) is None:
            return None
        n = 0
        with file.open("w", newline="", encoding="utf-8") as out:
            rows = csv.writer(out)
            rows.writerow(REPORT_COLUMNS)
            for d in stored.deliveries(conn, alert_id):
                shown = (lambda v: v) if full else mask
                rows.writerow(
                    [
                        d.id,
                        shown(d.destination),
                        d.channel,
                        shown(d.address),
                        d.locale,
                        d.status,
                        d.attempts,
                        d.segments if d.segments is not None else "",
                        d.provider_id or "",
                        d.error_code if d.error_code is not None else "",
                        d.reason or "",
                        d.sent_at.isoformat() if d.sent_at else "",
                        d.updated_at.isoformat(),
                    ]
                )
                n += 1
        return n

    try:
        written = _once(settings, write)
    except OSError as exc:
        say(
            catalogs,
            settings,
            OP("Cannot write {file}: {reason}", file=Literal(str(file)), reason=Literal(exc.strerror or "")),
            error=True,
        )
        raise typer.Exit(EXIT_USAGE) from exc
    if written is None:
        say(catalogs, settings, OP("No alert {id}.", id=Literal(str(alert_id))), error=True)
        raise typer.Exit(EXIT_BAD_DATA)
    say(
        catalogs,
        settings,
        OPN("{n} delivery written to {file}.", "{n} deliveries written to {file}.", written, file=Literal(str(file))),
    )


@cli.command("worker", epilog=reads(*SETTINGS_FOR_TURNS, *SENDING, "dispatch_poll_seconds"))
def worker_command(
    until_idle: Annotated[bool, typer.Option("--until-idle", help="send what is due, then exit")] = False,
) -> None:
    """Send alerts and notices: claim due deliveries, send them within the rates, record what happened.

    Run as many as needed, on as many machines, against one PostgreSQL database.
    """
    from bot import worker

    settings, catalogs = _settings(), Catalogs()
    app = _app()
    names = worker.channels(app)
    if not names:
        say(catalogs, settings, OP("No channel is configured: set Twilio's or Telegram's settings."), error=True)
        app.close()
        raise typer.Exit(EXIT_USAGE)
    say(catalogs, settings, OP("Worker sending on {channels}.", channels=Literal(", ".join(names))), to_stderr=True)
    try:
        stats = worker.run(worker.work(app, until_idle=until_idle))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        app.close()
    say(
        catalogs,
        settings,
        OP("Handled {claimed}, sent {sent}.", claimed=Literal(str(stats.claimed)), sent=Literal(str(stats.sent))),
        to_stderr=True,
    )
