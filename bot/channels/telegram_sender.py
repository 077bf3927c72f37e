"""Messages we send on Telegram that are not a reply (alerts): within Telegram's limits, and every
outcome as the same :class:`~bot.channels.base.SendResult` as an SMS.

Telegram allows a bot about 30 messages a second in all and about one a second to one chat; over
that it answers 429 with ``retry_after``, and then every send must wait that long. The sender spaces
its sends to stay within both limits, and after a 429 holds every send (not only that chat's) until
``retry_after`` has passed; the message itself is :attr:`~Outcome.TRANSIENT`, for the caller to send
again. A chat that blocked the bot (403 Forbidden) or no longer exists is :attr:`~Outcome.PERMANENT`:
``on_blocked`` unlinks it, so that its contacts' alerts go by SMS.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta

from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.channels.base import Outcome, SendResult
from bot.security import mask

log = logging.getLogger(__name__)

OVERALL_PER_SECOND = 30.0  # Telegram's limit for one bot, to different chats
PER_CHAT_SECONDS = 1.0  # Telegram's limit for one chat


class TelegramSender:
    """Sends text messages to chats, spaced within Telegram's limits."""

    key = "default"  # the shared send budget's name for this bot (its id); see bot.storage.pacing

    def __init__(
        self,
        bot: Bot,
        *,
        per_second: float = OVERALL_PER_SECOND,
        per_chat_seconds: float = PER_CHAT_SECONDS,
        on_blocked: Callable[[int], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot = bot
        self.gap = 1.0 / per_second
        self.per_chat = per_chat_seconds
        self.on_blocked = on_blocked
        self.clock = clock
        self._next = 0.0  # the earliest time the next send may start (30 a second overall)
        self._paused_until = 0.0  # after a 429: no send before this
        self._last: dict[int, float] = {}  # chat -> when its last send left
        self._chats: dict[int, asyncio.Lock] = {}  # one send at a time to a chat
        self._users: Counter[int] = Counter()  # sends waiting for or holding each chat's lock
        self._lock = asyncio.Lock()

    async def _overall(self) -> None:
        """Wait for a place in the overall rate, taken when the send is about to leave (not earlier,
        so that a chat's own wait never lands its send on another's place), and for any 429 pause,
        checked again right before the send leaves."""
        while True:
            async with self._lock:
                now = self.clock()
                start = max(now, self._next, self._paused_until)
                if start <= now:
                    self._next = now + self.gap
                    return
            await asyncio.sleep(start - now)

    def pause(self, seconds: float) -> None:
        """Hold every send, those already waiting included, for ``seconds`` (Telegram's ``retry_after``)."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    async def send(self, chat_id: int, text: str) -> SendResult:
        """Send ``text`` to ``chat_id``; never raises for a Telegram or network failure."""
        lock = self._chats.setdefault(chat_id, asyncio.Lock())
        self._users[chat_id] += 1
        try:
            async with lock:
                wait = self._last.get(chat_id, float("-inf")) + self.per_chat - self.clock()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._overall()
                try:
                    return await self._send(chat_id, text)
                finally:
                    self._last[chat_id] = self.clock()
        finally:
            self._users[chat_id] -= 1
            if not self._users[chat_id]:  # nobody else waiting for this chat: forget it once its second passed
                del self._users[chat_id]
                self._chats.pop(chat_id, None)
                if len(self._last) > 10_000:
                    now = self.clock()
                    self._last = {c: t for c, t in self._last.items() if t + self.per_chat > now}

    async def _send(self, chat_id: int, text: str) -> SendResult:
        try:
            message = await self.bot.send_message(chat_id, text)
        except RetryAfter as exc:
            with warnings.catch_warnings():  # PTB 22 warns that the int becomes a timedelta: both are read
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                wait = _seconds(exc.retry_after)
            self.pause(wait)
            log.warning("Telegram asks us to wait %.0f s (429)", wait)
            return SendResult(Outcome.TRANSIENT, error_code=429, retry_after=wait)
        except Forbidden:
            log.info("Telegram chat %s blocked the bot: unlinked", mask(str(chat_id)))
            if self.on_blocked is not None:
                await self.on_blocked(chat_id)
            return SendResult(Outcome.PERMANENT, error_code=403)
        except BadRequest as exc:
            gone = "chat not found" in str(exc).lower() or "user is deactivated" in str(exc).lower()
            log.warning("Telegram refused a message to %s: %s", mask(str(chat_id)), type(exc).__name__)
            if gone and self.on_blocked is not None:
                await self.on_blocked(chat_id)
            return SendResult(Outcome.PERMANENT, error_code=400)
        except (NetworkError, TelegramError) as exc:
            log.warning("Telegram unreachable for %s: %s", mask(str(chat_id)), type(exc).__name__)
            return SendResult(Outcome.TRANSIENT)
        return SendResult(Outcome.ACCEPTED, provider_id=f"tg:{chat_id}:{message.message_id}")


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
