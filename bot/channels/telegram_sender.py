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
        self._next = 0.0  # the earliest time the next send may start
        self._chats: dict[int, float] = {}  # chat -> the earliest time its next send may start
        self._lock = asyncio.Lock()

    async def _slot(self, chat_id: int) -> None:
        """Wait for this send's turn: the overall spacing, this chat's, and any 429 pause."""
        async with self._lock:
            now = self.clock()
            overall = max(now, self._next)  # a place in the overall 30 a second
            self._next = overall + self.gap
            start = max(overall, self._chats.get(chat_id, 0.0))  # and a second after this chat's last
            self._chats[chat_id] = start + self.per_chat
            if len(self._chats) > 10_000:  # forget chats whose spacing has passed
                self._chats = {c: t for c, t in self._chats.items() if t > now}
        delay = start - self.clock()
        if delay > 0:
            await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        """Hold every send for ``seconds`` (Telegram's ``retry_after``)."""
        self._next = max(self._next, self.clock() + seconds)

    async def send(self, chat_id: int, text: str) -> SendResult:
        """Send ``text`` to ``chat_id``; never raises for a Telegram or network failure."""
        await self._slot(chat_id)
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
