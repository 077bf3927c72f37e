"""Running the real dispatcher (``bot.dispatch`` with ``bot.worker``'s senders) from a test."""

from __future__ import annotations

import asyncio

from telegram.request import BaseRequest

from bot.app import App
from bot.dispatch import Stats
from bot.storage.aio import Runner, runner_for
from bot.worker import Senders, work

_RUNNERS: dict[int, tuple[App, Runner]] = {}  # one runner per app: its threads keep their connections


def runner(app: App) -> Runner:
    """The app's runner for tests (made once: a new one per round would open new connections)."""
    if id(app) not in _RUNNERS or _RUNNERS[id(app)][0] is not app:
        _RUNNERS[id(app)] = (app, runner_for(app.db, threads=2))
    return _RUNNERS[id(app)][1]


def dispatch_once(app: App, *, telegram_request: BaseRequest | None = None) -> int:
    """One round of a fresh worker: claim a batch, send it, record it; how many deliveries it held."""

    async def once() -> int:
        senders = Senders(app, telegram_request=telegram_request)
        try:
            return await senders.dispatcher(app, runner(app)).once()
        finally:
            await senders.close()

    return asyncio.run(once())


def drain(app: App, *, telegram_request: BaseRequest | None = None) -> Stats:
    """What ``outagebot worker --until-idle`` does: send until nothing is due or in flight."""
    return asyncio.run(work(app, until_idle=True, runner=runner(app), telegram_request=telegram_request))
