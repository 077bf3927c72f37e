"""A dispatcher with its senders: what ``outagebot worker`` runs, and what ``serve`` runs beside its routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from telegram import Bot
from telegram.request import BaseRequest, HTTPXRequest

from bot.app import App
from bot.channels.telegram_sender import TelegramSender
from bot.channels.twilio_sender import TwilioSender
from bot.dispatch import Dispatcher, Stats
from bot.storage.aio import Runner, runner_for

log = logging.getLogger(__name__)

T = TypeVar("T")
UNLIMITED = 1e9  # the Telegram sender's own overall rate: the shared budget paces every worker together


class Senders:
    """The channels' senders for a dispatcher, and their closing."""

    def __init__(self, app: App, *, telegram_request: BaseRequest | None = None) -> None:
        settings = app.settings
        self.sms: TwilioSender | None = TwilioSender(settings) if settings.sms_enabled else None
        self.telegram: TelegramSender | None = None
        self._request: BaseRequest | None = None  # ours to close
        if settings.telegram_token is not None:
            token = settings.telegram_token.get_secret_value()
            if telegram_request is None:
                self._request = HTTPXRequest(connection_pool_size=settings.dispatch_concurrency, pool_timeout=30.0)
            request = telegram_request or self._request
            bot = Bot(token, base_url=settings.telegram_api_url.rstrip("/") + "/bot", request=request)
            self.telegram = TelegramSender(bot, per_second=UNLIMITED)
            self.telegram.key = token.split(":", 1)[0]

    def dispatcher(self, app: App, runner: Runner) -> Dispatcher:
        """A dispatcher sending through these; a chat Telegram refuses for good is unlinked."""
        dispatcher = Dispatcher(app, runner, sms=self.sms, telegram=self.telegram)
        if self.telegram is not None:
            self.telegram.on_blocked = dispatcher.chat_gone
        return dispatcher

    async def close(self) -> None:
        if self.sms is not None:
            with contextlib.suppress(Exception):
                await self.sms.aclose()
        if self._request is not None:
            with contextlib.suppress(Exception):
                await self._request.shutdown()


async def work(
    app: App,
    *,
    until_idle: bool = False,
    stop: asyncio.Event | None = None,
    runner: Runner | None = None,
    telegram_request: BaseRequest | None = None,
) -> Stats:
    """Run a dispatcher until ``stop`` (or, ``until_idle``, until nothing is due or in flight)."""
    own = runner is None
    runner = runner or runner_for(app.db, threads=4)
    senders = Senders(app, telegram_request=telegram_request)
    try:
        dispatcher = senders.dispatcher(app, runner)
        return await dispatcher.run(until_idle=until_idle, stop=stop)
    finally:
        await senders.close()
        if own:
            await runner.close()


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a worker's coroutine to its end on uvloop where it is installed (uvicorn's standard extra
    brings it): the dispatcher is mostly event-loop work, and uvloop's loop costs less per send."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without uvloop
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def channels(app: App) -> list[str]:
    """The channels a worker can send on with these settings."""
    settings: Any = app.settings
    return [
        name for name, on in (("sms", settings.sms_enabled), ("telegram", settings.telegram_token is not None)) if on
    ]
