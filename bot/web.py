"""The ASGI application that hosts every webhook: SMS (Twilio) now, Telegram later.

Each webhook is authenticated before anything else: a request without a valid ``X-Twilio-Signature``
for ``OUTAGEBOT_PUBLIC_URL`` + path gets 403 and changes nothing. Bodies over the limit get 413. The
conversation is synchronous (one short database transaction), so it runs in Starlette's thread pool;
the reply goes back as TwiML in the same HTTP response, well within Twilio's 15-second budget.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from urllib.parse import parse_qsl

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from bot import outbox
from bot.app import App
from bot.channels import sms
from bot.channels.base import Inbound, render_text
from bot.channels.twilio_sender import TwilioSender
from bot.conversation import Answer
from dialogs.engine import Reply

log = logging.getLogger(__name__)
MAX_FIELDS = 200


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
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
        pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True,
                          max_num_fields=MAX_FIELDS)
    except ValueError:
        return None
    return dict(pairs)


def from_environment() -> Starlette:
    """The application for ``outagebot serve`` (one per worker process), from ``OUTAGEBOT_*``."""
    from bot.app import build
    from bot.config import Settings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return create_web(build(Settings(), migrate_db=False))


def create_web(app: App, clock: Callable[[], datetime] | None = None) -> Starlette:
    """The web application for ``app``; SMS routes only when Twilio is configured."""
    settings = app.settings
    now = clock or app.conversation.clock
    routes = [Route("/healthz", _healthz(app), methods=["GET"])]
    sender: TwilioSender | None = None
    if settings.sms_enabled and settings.twilio_auth_token is not None:
        validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
        base = (settings.public_url or "").rstrip("/")
        sender = TwilioSender(settings)
        routes += [
            Route("/sms/inbound", _inbound(app, validator, base, sender, now), methods=["POST"]),
            Route("/sms/status", _status(app, validator, base, now), methods=["POST"]),
        ]

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if sender is None:
            log.warning("SMS routes are off: set OUTAGEBOT_PUBLIC_URL, OUTAGEBOT_TWILIO_ACCOUNT_SID, "
                        "OUTAGEBOT_TWILIO_AUTH_TOKEN and OUTAGEBOT_TWILIO_FROM (or _MESSAGING_SERVICE_SID)")
            yield
            return
        retries = asyncio.create_task(_retry_loop(app, sender, now, settings.outbox_interval_seconds))
        try:
            yield
        finally:
            retries.cancel()

    return Starlette(routes=routes, lifespan=lifespan)


def _flush(app: App, sender: TwilioSender, now: Callable[[], datetime]) -> None:
    """Send what is due in the outbox; a failure is logged and left to the next flush."""
    try:
        outbox.flush(app.db, sender.send, app.catalogs, now, app.settings.support_phone)
    except Exception:
        log.exception("outbox flush failed; the next one will retry")


async def _retry_loop(app: App, sender: TwilioSender, now: Callable[[], datetime], interval: float) -> None:
    """Send what is due in the outbox now and then: retries after backoff, leases that ran out."""
    while True:
        await asyncio.sleep(interval)
        await run_in_threadpool(_flush, app, sender, now)


def _healthz(app: App) -> Callable[[Request], object]:
    def check() -> bool:
        with app.db.unlocked() as conn:
            conn.execute(text("SELECT 1")).all()
        return True

    async def healthz(request: Request) -> Response:
        try:
            await run_in_threadpool(check)
        except Exception:
            log.exception("health check failed")
            return JSONResponse({"status": "database unreachable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return healthz


async def _signed_form(request: Request, validator: RequestValidator, base: str,
                       limit: int) -> dict[str, str] | Response:
    try:
        body = await _read_body(request, limit)
    except BodyTooLarge:
        return Response(status_code=413)
    form = _form(body)
    signature = request.headers.get("x-twilio-signature", "")
    url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if form is None or not signature or not validator.validate(url, form, signature):
        log.warning("rejected an unsigned or forged request to %s", request.url.path)
        return Response(status_code=403)
    return form


def _inbound(app: App, validator: RequestValidator, base: str, sender: TwilioSender,
             now: Callable[[], datetime]) -> Callable[[Request], object]:
    settings = app.settings

    async def inbound(request: Request) -> Response:
        form = await _signed_form(request, validator, base, settings.sms_max_body_bytes)
        if isinstance(form, Response):
            return form
        message = sms.inbound_from_form(form, settings.default_region)
        if message is None:
            return Response(status_code=400)
        answer = await _answer(app, message)
        background = BackgroundTask(run_in_threadpool, _flush, app, sender, now) if answer.enqueued else None
        return Response(sms.twiml(answer.texts), media_type="application/xml", background=background)

    return inbound


async def _answer(app: App, message: Inbound) -> Answer:
    """Run the turn in the event loop; only an access-code hash goes to a thread, before it.

    A turn costs a few hundred microseconds (SQLite) to a couple of milliseconds (PostgreSQL's WAL
    flush). Handing it to a thread and back cost more than that under load (GIL hand-offs): measured
    in ``bench/sms_webhook.py``, 485 -> ~1,000 turns/s on SQLite, ~400 -> ~650 on PostgreSQL. The hash
    (tens of milliseconds, GIL released) is the one thing that must not block the loop. More
    throughput on PostgreSQL comes from more worker processes (``serve --workers``).
    """
    conversation = app.conversation

    def render(reply: Reply) -> list[str]:
        return render_text(reply, app.catalogs)

    pending = conversation.pending_code(message)
    prechecked = await run_in_threadpool(conversation.precheck, pending) if pending else None
    return conversation.answer(message, render, prechecked=prechecked, checked=True)


def _status(app: App, validator: RequestValidator, base: str,
            now: Callable[[], datetime]) -> Callable[[Request], object]:
    async def status(request: Request) -> Response:
        form = await _signed_form(request, validator, base, app.settings.sms_max_body_bytes)
        if isinstance(form, Response):
            return form
        sid, state = form.get("MessageSid", ""), form.get("MessageStatus", "")
        if not sid or not state:
            return Response(status_code=400)
        code = form.get("ErrorCode", "")
        await run_in_threadpool(outbox.record_status, app.db, sid[:64], state[:20],
                                int(code) if code.isdigit() else None, now())
        return Response(status_code=204)

    return status
