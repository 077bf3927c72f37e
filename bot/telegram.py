"""The Telegram channel: python-telegram-bot's :class:`~telegram.ext.Application` as the Bot API client
and update parser, our dialog engine as the only state machine.

Updates arrive by webhook (``POST /telegram/webhook`` in ``bot.web``, which hands each one to
:meth:`TelegramChannel.feed` and answers Telegram only once it is processed) or by long polling
(``outagebot serve --polling``, PTB's own :class:`~telegram.ext.Updater`). Either way they go through
the Application's update processor, :class:`PerChat`: one chat's updates one after the other, in
order; different chats at once. Each is one turn (``bot.conversation``), in one transaction, under the
update's id: a repeated ``update_id`` changes nothing and is answered nothing.

After the turn is committed the reply is sent: a new message for typed text, the pressed message
edited in place for a button. A message that carried the access code is deleted. A failure of the
Bot API after the commit is logged; the customer's next message shows where the dialog is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, Final, TypeVar

from sqlalchemy import Connection
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application, ApplicationBuilder, BaseUpdateProcessor, ContextTypes, TypeHandler
from telegram.request import BaseRequest

from bot import metrics
from bot.app import App
from bot.channels import buttons, telegram
from bot.channels.buttons import Keyboard
from bot.channels.telegram import Incoming, Kind
from bot.config import Settings
from bot.conversation import SORRY, STALE_STATE, retryable
from bot.i18n import Catalogs
from bot.security import mask
from bot.storage import telegram_links
from bot.storage.aio import Runner
from dialogs.engine import Reply
from dialogs.fields import show_phone
from dialogs.text import Msg

log = logging.getLogger(__name__)


class PerChat(BaseUpdateProcessor):
    """Processes one chat's updates one after the other, and different chats' updates at once."""

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: Counter[int] = Counter()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._users[chat.id] += 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[chat.id] -= 1
            if not self._users[chat.id]:
                del self._users[chat.id]
                self._locks.pop(chat.id, None)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""


Clock = Callable[[], datetime]
T = TypeVar("T")
TRY_AGAIN: Final = "try again"  # feed()'s answer when nothing was applied: the webhook says 503
_ATTEMPTS = 3  # a link change meeting a lost connection or a lost race runs again, as turns do
RETRY_START_SECONDS = 15  # while Telegram cannot be reached at start, how often to try again


class TelegramChannel:
    """The Application, its handler, and what a turn's reply becomes on Telegram."""

    def __init__(
        self,
        app: App,
        runner: Callable[[], Runner],
        *,
        polling: bool = False,
        request: BaseRequest | None = None,
        after_enqueue: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        settings = app.settings
        if settings.telegram_token is None:
            raise ValueError("OUTAGEBOT_TELEGRAM_TOKEN is not set")
        self.app, self.runner, self.polling = app, runner, polling
        self.after_enqueue = after_enqueue
        builder = (
            ApplicationBuilder()
            .token(settings.telegram_token.get_secret_value())
            .base_url(settings.telegram_api_url.rstrip("/") + "/bot")
            .concurrent_updates(PerChat())
        )
        if request is not None:
            builder = builder.request(request)
        else:
            builder = builder.connection_pool_size(64).pool_timeout(5).connect_timeout(5).read_timeout(10)
        if not polling:
            builder = builder.updater(None)
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)
        # update_id -> the Bot API call that answers it in the webhook's response (see feed)
        self._responses: dict[int, dict[str, Any] | None] = {}
        self._again: set[int] = set()  # webhook updates to be delivered again (nothing was applied)
        self._started = False
        self._starting = asyncio.Lock()
        self._retrying: asyncio.Task[None] | None = None

    @property
    def bot(self) -> Any:
        """PTB's bot (an :class:`~telegram.ext.ExtBot`)."""
        return self.application.bot

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Initialize the Application (and, with ``polling``, start fetching updates).

        Telegram unreachable, or the token refused, must not take SMS down with it: the failure is
        logged and the start is tried again every :data:`RETRY_START_SECONDS` (and by each webhook
        update, which gets 503 until then, so that Telegram delivers it again later).
        """
        if not await self._ensure_started():
            self._retrying = asyncio.get_running_loop().create_task(self._keep_starting())

    async def _ensure_started(self) -> bool:
        if self._started:
            return True
        async with self._starting:
            if self._started:
                return True
            try:
                await self.application.initialize()  # getMe: the token and the Bot API checked
                if self.polling:
                    assert self.application.updater is not None
                    await self.application.start()
                    await self.application.updater.start_polling(
                        allowed_updates=list(telegram.ALLOWED_UPDATES), timeout=20
                    )
            except Exception as exc:
                log.error("Telegram could not start (%s): tried again in %d s", type(exc).__name__, RETRY_START_SECONDS)
                return False
            self._started = True
            return True

    async def _keep_starting(self) -> None:
        while not await self._ensure_started():
            await asyncio.sleep(RETRY_START_SECONDS)

    async def stop(self) -> None:
        """Stop polling (if it runs) and release the HTTP clients."""
        if self._retrying is not None:
            self._retrying.cancel()
        if not self._started:
            return
        if self.polling and self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def feed(self, update: Update) -> dict[str, Any] | str | None:
        """Process one update from the webhook, through the per-chat processor, and wait for it.

        Returns the Bot API call to put in the webhook's response, if any: Telegram makes that call
        when it gets the response, so the common reply (one message answering typed text) costs no
        request of ours. Calls whose result we need (an edit that may fail, a deletion) are made here.
        :data:`TRY_AGAIN` when the database could not take the update and nothing was applied.
        """
        if not await self._ensure_started():
            return TRY_AGAIN
        application, key = self.application, update.update_id
        self._responses[key] = None
        try:
            await application.update_processor.process_update(update, application.process_update(update))
            if key in self._again:
                return TRY_AGAIN
            return self._responses.get(key)
        finally:
            self._responses.pop(key, None)
            self._again.discard(key)

    async def _durably(self, incoming: Incoming, work: Callable[[Connection], T]) -> T | None:
        """Run a change that is not a dialog turn (a link, an unlink) in its own transaction, again after
        a lost connection or a lost race; None when the database cannot take it. Then nothing was
        applied: a webhook update is answered 503, so that Telegram delivers it again later; with
        polling (which cannot be asked again) the person is told, as a turn would tell them."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await self.runner().run(work)
            except Exception as exc:
                if attempt < _ATTEMPTS and retryable(exc):
                    continue
                log.warning(
                    "Telegram update %d for %s not applied: %s",
                    incoming.update_id,
                    mask(str(incoming.chat_id)),
                    type(exc).__name__,
                )
                break
        if incoming.update_id in self._responses:
            self._again.add(incoming.update_id)
            return None
        sorry = self._say(incoming.locale, SORRY, support=self.app.settings.support_phone)
        await self._send(incoming.chat_id, sorry, None)
        return None

    async def _last(self, incoming: Incoming, method: str, params: dict[str, Any]) -> bool:
        """Make ``method`` the answer in the webhook's response (True), when the update came by webhook
        and has none yet; otherwise the caller makes the call itself (False)."""
        if incoming.update_id not in self._responses or self._responses[incoming.update_id] is not None:
            return False
        self._responses[incoming.update_id] = {"method": method, **params}
        return True

    # -- updates -----------------------------------------------------------------------------------

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.handle(update)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        log.error("Telegram update not handled: %s", type(error).__name__, exc_info=error)

    async def handle(self, update: Update) -> None:
        """Whatever ``update`` asks: a turn, a language choice, a phone to link, a chat to unlink."""
        incoming = telegram.classify(update)
        kind = incoming.kind
        if kind is Kind.IGNORE:
            return
        if kind is Kind.TURN:
            await self._turn(incoming)
        elif kind is Kind.LANGUAGE:
            catalogs = self.app.catalogs
            text = catalogs.render(Msg.of(telegram.CHOOSE_LANGUAGE), incoming.locale)
            await self._reply(incoming, text, telegram.language_keyboard(catalogs))
        elif kind is Kind.UNKNOWN_PRESS:
            await self._toast(incoming, self._say(incoming.locale, buttons.PASSED))
        elif kind is Kind.CONTACT:
            await self._contact(incoming)
        elif kind is Kind.UNLINK:
            await self._unlink(incoming)
        elif kind is Kind.BLOCKED:  # nothing sent there arrives: its contacts get SMS again
            await self._link_change(
                incoming, lambda conn, now: telegram_links.unlink(conn, incoming.chat_id, now, "telegram.blocked")
            )

    def _say(self, locale: str, msgid: str, **params: Any) -> str:
        return self.app.catalogs.render(Msg.of(msgid, **params), locale)

    async def _turn(self, incoming: Incoming) -> None:
        inbound = incoming.inbound
        assert inbound is not None
        app, chat = self.app, incoming.chat_id
        started = time.perf_counter()
        # The reply as Telegram shows it is remembered under the update, in the turn's transaction:
        # Telegram delivers an update again only when our answer did not reach it, and then gets the
        # same one (a replay changes nothing, like a repeated MessageSid).
        answer = await app.conversation.answer_async(
            inbound, _nothing_to_remember, self.runner(), screen=self._remembered
        )
        metrics.observe_turn(
            "telegram",
            time.perf_counter() - started,
            failed=answer.failed,
            replayed=answer.replayed,
            actions=answer.actions,
        )
        if answer.enqueued and self.after_enqueue is not None:
            asyncio.get_running_loop().create_task(self.after_enqueue())
        if answer.replayed or answer.reply is None:
            await self._again_as_before(incoming, answer.texts)
            return
        reply = answer.reply
        # rendered once, in the turn (what a replay gets); rendered here only when nothing was kept
        screen = _kept_screen(answer.texts) or telegram.screen(
            reply, app.catalogs, answer.keyboard, yes_no=app.engine.asks_yes_no(reply.state)
        )
        if answer.stale:
            await self._toast(incoming, screen.text)
            return
        lines = []
        if incoming.note:
            lines.append(self._say(reply.locale, incoming.note))
        secret = answer.secret or (answer.failed and await self._at_secret_question(incoming))
        if secret and incoming.typed and incoming.message_id is not None:
            deleted = await self._delete(chat, incoming.message_id)
            lines.append(self._say(reply.locale, telegram.CODE_DELETED if deleted else telegram.CODE_NOT_DELETED))
        text = "\n".join([*lines, screen.text])[: telegram.MAX_TEXT]
        if incoming.callback_id and answer.failed:  # the question and its buttons stay: press again
            await self._toast(incoming, text)
            return
        if incoming.callback_id:
            if incoming.message_id is not None and await self._edit(chat, incoming.message_id, text, screen.markup):
                await self._toast(incoming, None)
                return
            await self._toast(incoming, None)
        if incoming.start:
            await self._send(chat, text, screen.markup)
            await self._offer_link(incoming, reply.locale)
            return
        await self._reply(incoming, text, screen.markup)

    def _remembered(self, reply: Reply, keyboard: Keyboard | None) -> list[str]:
        """What a replay of this update is answered with: the reply's screen (nothing for a stale press,
        which acted on nothing and was answered on its button)."""
        if reply.state == STALE_STATE:
            return []
        yes_no = self.app.engine.asks_yes_no(reply.state)
        shown = telegram.screen(reply, self.app.catalogs, keyboard, yes_no=yes_no)
        return [json.dumps({"text": shown.text, "reply_markup": shown.markup}, ensure_ascii=False)]

    async def _again_as_before(self, incoming: Incoming, texts: list[str]) -> None:
        """A replayed update: the remembered screen again, where the first answer may not have arrived
        (a new message in the webhook's response; the pressed message edited again, which changes
        nothing if it had been)."""
        shown = _kept_screen(texts)
        if shown is None:
            await self._toast(incoming, None)
            return
        if incoming.callback_id:
            if incoming.message_id is not None:
                await self._edit(incoming.chat_id, incoming.message_id, shown.text, shown.markup)
            await self._toast(incoming, None)
            return
        await self._reply(incoming, shown.text, shown.markup)

    async def _at_secret_question(self, incoming: Incoming) -> bool:
        """After a failed turn: whether the chat was at the access-code question (a read, which a busy
        writer does not block); when even that fails, whether the text could be a code."""
        chat = incoming.chat_id
        try:
            state = await self.runner().read(lambda conn: telegram_links.session_state(conn, chat))
        except Exception:
            text = incoming.inbound.text if incoming.inbound is not None else ""
            return any(ch.isdigit() for ch in text)
        found = self.app.engine.states.get(state or "")
        return found is not None and found.secret

    async def _offer_link(self, incoming: Incoming, locale: str) -> None:
        """After /start: how to get alerts in this chat, or that they already come here."""
        chat = incoming.chat_id
        phone = await self.runner().read(lambda conn: telegram_links.linked_phone(conn, chat))
        catalogs = self.app.catalogs
        if phone is None:
            text = self._say(locale, telegram.OFFER_LINK)
            await self._reply(incoming, text, telegram.share_phone_keyboard(catalogs, locale))
        else:
            text = self._say(locale, telegram.LINKED_ALREADY, phone=show_phone(phone))
            await self._reply(incoming, text, telegram.unlink_keyboard(catalogs, locale))

    async def _link_change(
        self, incoming: Incoming, change: Callable[[Connection, datetime], int]
    ) -> tuple[int, str] | None:
        """Apply a change of the chat's links once per update, in its own transaction (see
        :meth:`_durably`): how many contacts it touched and the chat's language, or None when the
        update was applied before or could not be now."""
        now = self.app.conversation.clock()

        def work(conn: Connection) -> tuple[int, str] | None:
            if not telegram_links.once(conn, incoming.external_id, now):
                return None
            locale = telegram_links.session_locale(conn, incoming.chat_id) or incoming.locale
            return change(conn, now), locale

        return await self._durably(incoming, work)

    async def _contact(self, incoming: Incoming) -> None:
        """A shared phone number: the sender's own links this chat to every contact with that number."""
        chat, phone, catalogs = incoming.chat_id, incoming.phone, self.app.catalogs
        if phone is None or not incoming.own:
            await self._reply(
                incoming,
                self._say(incoming.locale, telegram.NOT_YOURS),
                telegram.share_phone_keyboard(catalogs, incoming.locale),
            )
            return
        done = await self._link_change(incoming, lambda conn, now: telegram_links.link(conn, chat, phone, now))
        if done is None:
            return
        count, locale = done
        if count:
            log.info("Telegram chat %s linked to %d contacts of %s", mask(str(chat)), count, mask(phone))
            text = self._say(locale, telegram.LINKED, phone=show_phone(phone))
            await self._reply(incoming, text, telegram.unlink_keyboard(catalogs, locale))
        else:
            support = self.app.settings.support_phone
            text = self._say(locale, telegram.NOT_A_CONTACT, phone=show_phone(phone), support=support)
            await self._reply(incoming, text, telegram.REMOVE_KEYBOARD)

    async def _unlink(self, incoming: Incoming) -> None:
        chat = incoming.chat_id
        done = await self._link_change(incoming, lambda conn, now: telegram_links.unlink(conn, chat, now))
        if incoming.update_id in self._again:
            return
        await self._toast(incoming, None)
        if done is None:
            return
        count, locale = done
        text = self._say(locale, telegram.UNLINKED if count else telegram.NOT_LINKED)
        if incoming.message_id is None or not await self._edit(chat, incoming.message_id, text, None):
            await self._send(chat, text, None)

    # -- the Bot API -------------------------------------------------------------------------------

    async def _reply(self, incoming: Incoming, text: str, markup: telegram.Markup | None) -> None:
        """The last message answering ``incoming``: in the webhook's response when it can be."""
        params: dict[str, Any] = {"chat_id": incoming.chat_id, "text": text}
        if markup is not None:
            params["reply_markup"] = markup
        if not await self._last(incoming, "sendMessage", params):
            await self._send(incoming.chat_id, text, markup)

    async def _send(self, chat: int, text: str, markup: telegram.Markup | None) -> Message | None:
        try:
            message: Message = await self.bot.send_message(chat, text, reply_markup=_markup(markup))
        except Forbidden:
            log.warning("Telegram chat %s blocked the bot", mask(str(chat)))
            return None
        except TelegramError as exc:
            log.warning("Telegram reply to %s not sent: %s", mask(str(chat)), type(exc).__name__)
            return None
        return message

    async def _edit(self, chat: int, message_id: int, text: str, markup: telegram.Markup | None) -> bool:
        """Edit our message in place; False when it cannot be (too old, deleted): send a new one then."""
        try:
            await self.bot.edit_message_text(text, chat_id=chat, message_id=message_id, reply_markup=_markup(markup))
        except BadRequest as exc:
            return "not modified" in str(exc).lower()  # the same text and buttons: nothing to change
        except TelegramError as exc:
            log.warning("Telegram edit in %s failed: %s", mask(str(chat)), type(exc).__name__)
            return False
        return True

    async def _delete(self, chat: int, message_id: int) -> bool:
        try:
            return bool(await self.bot.delete_message(chat, message_id))
        except TelegramError:
            return False

    async def _toast(self, incoming: Incoming, text: str | None) -> None:
        """Answer the button press (stops the client's spinner), with a short notice if any."""
        if incoming.callback_id is None:
            return
        params: dict[str, Any] = {"callback_query_id": incoming.callback_id}
        if text:
            params["text"] = text[:200]
        if await self._last(incoming, "answerCallbackQuery", params):
            return
        try:
            await self.bot.answer_callback_query(incoming.callback_id, text=text[:200] if text else None)
        except TelegramError as exc:
            log.info("callback answer failed: %s", type(exc).__name__)


def _kept_screen(texts: list[str]) -> telegram.Screen | None:
    """The screen a turn kept for replays (``TelegramChannel._remembered``), if it kept one."""
    try:
        shown = json.loads(texts[0]) if texts else None
    except (ValueError, TypeError):
        return None
    if not isinstance(shown, dict) or not isinstance(shown.get("text"), str):
        return None
    markup = shown.get("reply_markup")
    return telegram.Screen(shown["text"], markup if isinstance(markup, dict) else None)


def _nothing_to_remember(reply: Reply) -> list[str]:
    return []


def _markup(markup: telegram.Markup | None) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None:
    """A reply markup as python-telegram-bot's object, for a call we make ourselves."""
    if markup is None:
        return None
    if "inline_keyboard" in markup:
        return InlineKeyboardMarkup.de_json(markup, None)
    if "keyboard" in markup:
        return ReplyKeyboardMarkup.de_json(markup, None)
    return ReplyKeyboardRemove()


async def announce(settings: Settings, catalogs: Catalogs, webhook_url: str | None) -> list[str]:
    """Set the command menus in both languages, and the webhook (or delete it, for polling).

    Run once by ``outagebot serve`` before the workers start. Returns what failed, each as a short
    line for the operator (never the token); nothing raises.
    """
    assert settings.telegram_token is not None
    problems: list[str] = []
    bot = Bot(settings.telegram_token.get_secret_value(), base_url=settings.telegram_api_url.rstrip("/") + "/bot")
    try:
        async with bot:
            for locale in ("en", "vi"):
                commands = [
                    BotCommand(name, catalogs.render(Msg.of(about), locale)) for name, about, _ in telegram.COMMANDS
                ]
                try:
                    await bot.set_my_commands(commands, language_code=None if locale == "en" else locale)
                except TelegramError as exc:
                    problems.append(f"setMyCommands ({locale}): {exc}")
            secret = settings.telegram_secret
            try:
                if webhook_url is not None and secret is not None:
                    await bot.set_webhook(
                        webhook_url,
                        secret_token=secret.get_secret_value(),
                        allowed_updates=list(telegram.ALLOWED_UPDATES),
                        max_connections=40,
                    )
                else:
                    await bot.delete_webhook()
            except TelegramError as exc:
                problems.append(f"{'setWebhook' if webhook_url else 'deleteWebhook'}: {exc}")
    except TelegramError as exc:  # the token is refused, or the Bot API is unreachable
        problems.append(f"getMe: {exc}")
    return problems
