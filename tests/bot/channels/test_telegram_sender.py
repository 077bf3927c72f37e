"""The Telegram sender for alerts: the real python-telegram-bot Bot against the Telegram stand-in, with
Telegram's own refusals (429 with retry_after, 403 blocked, 400 chat not found) from the tests' proxy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from telegram import Bot

from bot.channels.base import Outcome
from bot.channels.telegram_sender import TelegramSender
from tests.conftest import TelegramPeers
from tests.peers.telegram import TOKEN

T = TypeVar("T")
# PTB 22 itself reads RetryAfter.retry_after when it builds the error, and warns that it becomes a timedelta
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def run(peers: TelegramPeers, work: Callable[[Bot], Awaitable[T]]) -> T:
    async def main() -> T:
        async with Bot(TOKEN, base_url=peers.api + "/bot") as bot:
            return await work(bot)

    return asyncio.run(main())


def test_a_message_is_accepted_with_its_id(telegram_api: TelegramPeers) -> None:
    result = run(telegram_api, lambda bot: TelegramSender(bot).send(5_100_001, "Cắt điện luân phiên lúc 14:00"))
    assert result.outcome is Outcome.ACCEPTED and (result.provider_id or "").startswith("tg:5100001:")
    sent = [p for name, p in telegram_api.observed.calls if name == "sendMessage" and p["chat_id"] == 5_100_001]
    assert sent[-1]["text"] == "Cắt điện luân phiên lúc 14:00"


def test_429_holds_every_send_for_retry_after_and_is_sent_again_later(telegram_api: TelegramPeers) -> None:
    async def work(bot: Bot) -> tuple[Any, float]:
        sender = TelegramSender(bot)
        refused = await sender.send(4_290_001, "x")
        started = time.monotonic()
        await sender.send(5_100_002, "y")  # another chat waits too: the limit is the bot's
        return refused, time.monotonic() - started

    refused, waited = run(telegram_api, work)
    assert refused.outcome is Outcome.TRANSIENT and refused.retry_after == 2 and refused.error_code == 429
    assert 1.8 < waited < 4


def test_a_blocked_bot_or_a_gone_chat_is_permanent_and_unlinks_the_chat(telegram_api: TelegramPeers) -> None:
    unlinked: list[int] = []

    async def on_blocked(chat: int) -> None:
        unlinked.append(chat)

    async def work(bot: Bot) -> list[Any]:
        sender = TelegramSender(bot, on_blocked=on_blocked)
        return [await sender.send(4_030_001, "x"), await sender.send(4_000_001, "x")]

    blocked, gone = run(telegram_api, work)
    assert (blocked.outcome, blocked.error_code) == (Outcome.PERMANENT, 403)
    assert (gone.outcome, gone.error_code) == (Outcome.PERMANENT, 400)
    assert unlinked == [4_030_001, 4_000_001]


def test_an_unreachable_api_is_transient(telegram_api: TelegramPeers) -> None:
    async def main() -> Any:
        async with Bot(TOKEN, base_url="http://127.0.0.1:9/bot") as bot:
            return await TelegramSender(bot).send(5_100_003, "x")

    try:
        result = asyncio.run(main())
    except Exception as exc:  # Bot's own start (getMe) may fail first: that is the caller's to retry
        assert "connect" in str(exc).lower() or "network" in type(exc).__name__.lower()
        return
    assert result.outcome is Outcome.TRANSIENT


def test_sends_stay_within_one_a_second_to_a_chat_and_thirty_a_second_in_all(telegram_api: TelegramPeers) -> None:
    async def work(bot: Bot) -> tuple[float, float]:
        sender = TelegramSender(bot)
        started = time.monotonic()
        await asyncio.gather(*(sender.send(5_200_000 + i, "x") for i in range(31)))
        overall = time.monotonic() - started
        started = time.monotonic()
        await asyncio.gather(*(sender.send(5_200_999, str(i)) for i in range(3)))
        return overall, time.monotonic() - started

    overall, one_chat = run(telegram_api, work)
    assert 0.9 < overall < 5  # 31 sends at 30 a second take at least a second
    assert 1.9 < one_chat < 5  # 3 sends to one chat: a second apart
