"""The ASGI application that hosts every webhook: SMS (Twilio) and Telegram.

Each webhook is authenticated before anything else: a request without a valid ``X-Twilio-Signature``
for ``OUTAGEBOT_PUBLIC_URL`` + path, or without the ``X-Telegram-Bot-Api-Secret-Token`` we gave
Telegram (compared in constant time), gets 403 and changes nothing. Bodies over the limit get 413.
A Telegram update is processed before it is answered (``bot.telegram``), so Telegram sends it again
only when we did not finish it, and the update's id makes that replay change nothing.

Turns run from the event loop through a :class:`bot.storage.aio.Runner`: on SQLite in the loop itself
(a turn is a fraction of a millisecond; a busy write lock is waited for with ``asyncio.sleep``), on
PostgreSQL on a pool of threads with a connection each, so that turns of different customers overlap.
An access-code hash runs on a small thread pool of its own. Nothing a turn waits for blocks the loop, so one slow
customer never delays another or ``/healthz``; every wait is bounded (``OUTAGEBOT_DB_*_SECONDS``) and
ends in the apology, well within Twilio's 15-second budget. The reply goes back as TwiML.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from sqlalchemy import Connection, text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from twilio.request_validator import RequestValidator, compare

from bot import metrics, outbox, worker
from bot.api import api_routes
from bot.app import App
from bot.channels import sms
from bot.channels.base import render_text
from bot.logs import RateLimitedLog, configure_logging
from bot.storage.aio import Runner, runner_for
from bot.storage.db import schema
from bot.storage.retention import purge_expired

if TYPE_CHECKING:
    from telegram.request import BaseRequest

    from bot.dispatch import Dispatcher
    from bot.telegram import TelegramChannel

log = logging.getLogger(__name__)
rejected = RateLimitedLog(log)  # forged requests: the first logged at once, then a count a minute
MAX_FIELDS = 200


access = logging.getLogger("bot.access")


class AccessLog:
    """One line a request at INFO on ``bot.access``: method, path, status, milliseconds, client address.

    Nothing in it is personal (the phone number is in the signed body, never in the path); the line
    goes through the same masking filter as every other. Below INFO it costs one level check.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client") or ("-", 0)
            access.info(
                "%s %s %d %.1f ms %s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                client[0],
            )


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _form(body: bytes) -> dict[str, str] | None:
    try:
        pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        return None
    return dict(pairs)


def from_environment() -> Starlette:
    """The application for ``outagebot serve`` (one per worker process), from ``OUTAGEBOT_*``."""
    from bot.app import build
    from bot.config import Settings

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_web(build(settings, migrate_db=False))


class _Lazy:
    """The runner, made when first needed (a worker process makes its own threads)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.runner: Runner | None = None

    def get(self) -> Runner:
        if self.runner is None:
            self.runner = runner_for(self.app.db, threads=self.app.settings.db_pool_size)
        return self.runner


def create_web(
    app: App, clock: Callable[[], datetime] | None = None, *, telegram_request: BaseRequest | None = None
) -> Starlette:
    """The web application for ``app``: SMS routes when Twilio is configured; Telegram's webhook when
    its token, secret and the public URL are (or long polling, with ``OUTAGEBOT_TELEGRAM_POLLING``).
    ``telegram_request`` replaces python-telegram-bot's HTTP client (the tests' repairs)."""
    settings = app.settings
    now = clock or app.conversation.clock
    runner = _Lazy(app)
    routes = [
        Route("/healthz", _healthz(app, runner), methods=["GET"]),
        Route("/readyz", _readyz(app, runner), methods=["GET"]),
        Route("/metrics", _metrics(app, runner), methods=["GET"]),
    ]
    routes += api_routes(app, runner.get, now)  # the outage-management system's API (bot.api)
    dispatching = _Dispatching()
    sms_on = False
    if settings.sms_enabled and settings.twilio_auth_token is not None:
        validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
        base = (settings.public_url or "").rstrip("/")
        sms_on = True
        routes += [
            Route("/sms/inbound", _inbound(app, runner, validator, base, dispatching.wake), methods=["POST"]),
            Route("/sms/status", _status(app, runner, validator, base, now), methods=["POST"]),
        ]
    channel: TelegramChannel | None = None
    if settings.telegram_enabled and (settings.telegram_polling or settings.telegram_webhook_ready):
        from bot.telegram import TelegramChannel

        async def kick() -> None:
            dispatching.wake()

        channel = TelegramChannel(
            app, runner.get, polling=settings.telegram_polling, request=telegram_request, after_enqueue=kick
        )
        if not settings.telegram_polling:
            routes.append(Route("/telegram/webhook", _telegram(app, channel), methods=["POST"]))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        runner.get()
        # Everything loaded so far (catalogs, dialog graph, SQLAlchemy, compiled statements) lives as long
        # as the process: keep it out of the collector's full passes, which otherwise walk all of it
        # (about 70 ms here) and stall every customer's turn while they do.
        gc.collect()
        gc.freeze()
        if not sms_on:
            log.info(
                "SMS routes are off: set OUTAGEBOT_PUBLIC_URL, OUTAGEBOT_TWILIO_ACCOUNT_SID, "
                "OUTAGEBOT_TWILIO_AUTH_TOKEN and OUTAGEBOT_TWILIO_FROM (or _MESSAGING_SERVICE_SID)"
            )
        if channel is not None:
            await channel.start()
        periodic = asyncio.create_task(_periodic(app, runner.get(), now, settings.outbox_interval_seconds))
        if settings.serve_dispatch:
            dispatching.start(app, runner.get(), telegram_request)
        try:
            yield
        finally:
            periodic.cancel()
            with contextlib.suppress(BaseException):
                await periodic
            await dispatching.stop()
            if channel is not None:
                await channel.stop()
            await runner.get().close()

    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(AccessLog)])


class _Dispatching:
    """The dispatcher ``serve`` runs beside its routes (``bot.worker``), unless told not to."""

    def __init__(self) -> None:
        self.task: asyncio.Task[object] | None = None
        self.halt = asyncio.Event()
        self.dispatcher: Dispatcher | None = None

    def start(self, app: App, runner: Runner, telegram_request: BaseRequest | None) -> None:
        senders = worker.Senders(app, telegram_request=telegram_request)
        self.dispatcher = senders.dispatcher(app, runner)

        async def run() -> object:
            assert self.dispatcher is not None
            try:
                return await self.dispatcher.run(stop=self.halt)
            finally:
                await senders.close()

        self.task = asyncio.create_task(run())

    def wake(self) -> None:
        """A turn queued a message: send it now rather than at the next poll."""
        if self.dispatcher is not None:
            self.dispatcher.wake()

    async def stop(self) -> None:
        if self.task is None:
            return
        self.halt.set()
        self.dispatcher.wake() if self.dispatcher is not None else None
        try:
            await asyncio.wait_for(self.task, 10.0)
        except BaseException:  # a send that will not end: the lease hands its rows to the next worker
            self.task.cancel()


CALIBRATE_EVERY = 600.0  # seconds between samples of the stored hashes' cost


def _calibrate(app: App) -> None:
    app.calibrate()


def _purge(app: App, now: Callable[[], datetime]) -> None:
    purge_expired(app.db, now(), app.settings.replay_retention, app.settings.session_retention)


async def _periodic(app: App, runner: Runner, now: Callable[[], datetime], interval: float) -> None:
    """Now and then: the forged-request summary, the hash cost
    of unknown accounts, and the purge of what is kept only for a while. A failure is logged and the
    next round tries again."""
    loop = asyncio.get_running_loop()
    purge_every = app.settings.purge_interval_seconds
    last = {"calibrate": loop.time(), "purge": loop.time() - purge_every}  # the first purge at the first round
    try:
        while True:
            await asyncio.sleep(interval)
            rejected.flush()
            jobs: list[tuple[str, Callable[[], None]]] = []
            timed: list[tuple[str, float, Callable[[], None]]] = [
                ("calibrate", CALIBRATE_EVERY, functools.partial(_calibrate, app)),
                ("purge", purge_every, functools.partial(_purge, app, now)),
            ]
            for name, every, due in timed:
                if loop.time() - last[name] >= every:
                    last[name] = loop.time()
                    jobs.append((name, due))
            for name, job in jobs:
                try:
                    await runner.blocking(job)
                except Exception:
                    log.exception("periodic %s failed; it runs again later", name)
    finally:
        rejected.flush(force=True)


HEALTH_SECONDS = 2.0


def _probe(conn: Connection) -> None:
    conn.execute(text("SELECT 1 FROM sessions LIMIT 1")).all()


async def _turns_can_run(runner: _Lazy, check: str) -> bool:
    """Whether a turn could run now: the same runner, a transaction, the sessions table, within 2 s."""
    try:
        await asyncio.wait_for(runner.get().run(_probe), HEALTH_SECONDS)
    except Exception as exc:
        log.warning("%s check failed: %s", check, type(exc).__name__)
        return False
    return True


_UNAVAILABLE = {"status": "database unavailable"}


def _healthz(app: App, runner: _Lazy) -> Callable[[Request], object]:
    """503 unless a turn could run now (what turns use: the runner, its connections, the locks)."""

    async def healthz(request: Request) -> Response:
        if not await _turns_can_run(runner, "health"):
            return JSONResponse(_UNAVAILABLE, status_code=503)
        return JSONResponse({"status": "ok"})

    return healthz


def _readyz(app: App, runner: _Lazy) -> Callable[[Request], object]:
    """Ready for traffic: turns could run now (as /healthz) and the database has this code's schema."""

    async def readyz(request: Request) -> Response:
        if not await _turns_can_run(runner, "readiness"):
            return JSONResponse(_UNAVAILABLE, status_code=503)
        try:
            found = await asyncio.wait_for(runner.get().blocking(schema, app.db.engine), HEALTH_SECONDS)
        except Exception as exc:
            log.warning("readiness check failed: %s", type(exc).__name__)
            return JSONResponse(_UNAVAILABLE, status_code=503)
        if not found.up_to_date:
            return JSONResponse({"status": "schema", "database": found.current, "needs": found.head}, status_code=503)
        return JSONResponse({"status": "ok", "schema": found.current})

    return readyz


def _metrics(app: App, runner: _Lazy) -> Callable[[Request], object]:
    """Prometheus exposition: every worker's counters and the outbox's depth read now."""

    def outbox_counts(conn: Connection) -> dict[str, int]:
        rows = conn.execute(text("SELECT status, count(*) FROM outbound_messages GROUP BY status"))
        return {str(status): int(count) for status, count in rows}

    async def serve_metrics(request: Request) -> Response:
        try:
            counts = await asyncio.wait_for(runner.get().read(outbox_counts), HEALTH_SECONDS)
        except Exception as exc:
            log.warning("metrics: outbox not read: %s", type(exc).__name__)
            counts = {}
        body = await asyncio.get_running_loop().run_in_executor(None, metrics.exposition, counts)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    return serve_metrics


def _signed(validator: RequestValidator, url: str, form: dict[str, str], signature: str) -> bool:
    """Twilio's signature check, with one HMAC for the URL exactly as configured.

    ``RequestValidator.validate`` always computes two (the URL with and without its port, as Twilio
    signs one or the other); a request signed for the configured URL needs only the first, so the
    library's full check runs only when that one does not match.
    """
    return bool(compare(validator.compute_signature(url, form), signature) or validator.validate(url, form, signature))


async def _signed_form(
    request: Request, validator: RequestValidator, base: str, limit: int
) -> dict[str, str] | Response:
    try:
        body = await _read_body(request, limit)
    except BodyTooLarge:
        metrics.REJECTED.labels("too_large").inc()
        return Response(status_code=413)
    form = _form(body)
    signature = request.headers.get("x-twilio-signature", "")
    url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if form is None or not signature or not _signed(validator, url, form, signature):
        rejected.hit(request.url.path)
        metrics.REJECTED.labels("signature").inc()
        return Response(status_code=403)
    return form


def _inbound(
    app: App, runner: _Lazy, validator: RequestValidator, base: str, wake: Callable[[], None]
) -> Callable[[Request], object]:
    settings = app.settings

    async def inbound(request: Request) -> Response:
        form = await _signed_form(request, validator, base, settings.sms_max_body_bytes)
        if isinstance(form, Response):
            return form
        message = sms.inbound_from_form(form, settings.default_region)
        if message is None:
            metrics.REJECTED.labels("bad_request").inc()
            return Response(status_code=400)
        started = time.perf_counter()
        answer = await app.conversation.answer_async(
            message, lambda reply: render_text(reply, app.catalogs), runner.get()
        )
        metrics.observe_turn(
            "sms", time.perf_counter() - started, failed=answer.failed, replayed=answer.replayed, actions=answer.actions
        )
        if answer.enqueued:
            wake()
        state = answer.reply.state if answer.reply is not None else "(replay)"
        return Response(sms.twiml(answer.texts, state), media_type="application/xml")

    return inbound


def _status(
    app: App, runner: _Lazy, validator: RequestValidator, base: str, now: Callable[[], datetime]
) -> Callable[[Request], object]:
    async def status(request: Request) -> Response:
        form = await _signed_form(request, validator, base, app.settings.sms_max_body_bytes)
        if isinstance(form, Response):
            return form
        sid, state = sms.message_sid(form.get("MessageSid", "")), form.get("MessageStatus", "")
        if sid is None or not state:
            return Response(status_code=400)
        error, at = sms.error_code(form.get("ErrorCode", "")), now()
        if error is not None:
            metrics.PROVIDER_ERRORS.labels(str(error)).inc()
        try:
            await runner.get().run(lambda conn: outbox.apply_status(conn, sid, state[:20], error, at))
        except Exception as exc:  # the database is away: say so (Twilio retries if told to), never a 500
            log.warning("status callback for %s not recorded: %s", sid, type(exc).__name__)
            return Response(status_code=503)
        return Response(status_code=204)

    return status


TELEGRAM_SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name


def _telegram(app: App, channel: TelegramChannel) -> Callable[[Request], object]:
    """``POST /telegram/webhook``: the secret token first (403), then size (413) and JSON (400)."""
    from telegram import Update

    from bot.telegram import TRY_AGAIN

    settings = app.settings
    assert settings.telegram_secret is not None
    secret = settings.telegram_secret.get_secret_value().encode("ascii")

    async def webhook(request: Request) -> Response:
        given = request.headers.get(TELEGRAM_SECRET_HEADER, "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, secret):
            rejected.hit(request.url.path)
            metrics.REJECTED.labels("secret").inc()
            return Response(status_code=403)
        try:
            body = await _read_body(request, settings.telegram_max_body_bytes)
        except BodyTooLarge:
            metrics.REJECTED.labels("too_large").inc()
            return Response(status_code=413)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            data = None
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:  # nothing Telegram sends
            metrics.REJECTED.labels("bad_request").inc()
            return Response(status_code=400)
        try:
            update = Update.de_json(data, channel.bot)
        except Exception as exc:  # an update of a shape this library does not read: taken, not retried
            log.warning("Telegram update %d not read: %s", data["update_id"], type(exc).__name__)
            return Response(status_code=200)
        call = await channel.feed(update)
        if call is TRY_AGAIN:  # the database could not take it and nothing was applied: Telegram retries
            return Response(status_code=503)
        if call is None:
            return Response(status_code=200)
        return Response(json.dumps(call, ensure_ascii=False), media_type="application/json")

    return webhook
