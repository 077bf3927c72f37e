"""Telegram: from a python-telegram-bot :class:`~telegram.Update` to what we do with it, and a reply as
a message with inline buttons.

Pure: nothing here calls the Bot API or the database (``bot.telegram`` does). The bot answers only in
private chats; a group, a channel post or an update of a kind we do not take is :data:`IGNORE`.
Typed text, commands and button presses all become an :class:`Inbound` for the same dialog engine as
SMS; the buttons only stand for what could be typed (``bot.channels.buttons``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import phonenumbers
from telegram import Update
from telegram.constants import ChatMemberStatus, ChatType

from bot.channels.base import Inbound
from bot.channels.buttons import Action, Keyboard, Press
from bot.i18n import Catalogs
from dialogs.engine import Choice, Reply
from dialogs.fields import FIRST_LANGUAGE_CHOICES
from dialogs.text import N_, Msg

CHANNEL = "telegram"
PAGE_ROWS = 8  # rows of a long list on one page of buttons
MAX_TEXT = 4096  # characters in one Telegram message
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member")
UNLINK = "unlink"  # callback_data of "stop alerts in this chat": it acts on the pressing chat only
# callback_data of the /language buttons: the words that switch the language anywhere in a dialog
LANGUAGE_PRESSES = {"lang:vi": "TIENG VIET", "lang:en": "ENGLISH"}

# Commands in the menu Telegram shows beside the text box; each stands for what could be typed.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("start", N_("Start, or see the main menu"), ""),
    ("menu", N_("Main menu"), "MENU"),
    ("help", N_("How to answer this question"), "?"),
    ("language", N_("Language: Tiếng Việt / English"), ""),
    ("cancel", N_("Cancel this step; nothing is saved"), "X"),
    ("status", N_("Rotating outages in your groups"), "STATUS"),
)

# Words of the Telegram channel alone (the dialogs' own are in their modules).
YES = N_("Yes")
NO = N_("No")
DONE = N_("Done")
ALL = N_("All")
PREVIOUS = N_("◀ Previous")
NEXT = N_("More ▶")
SHARE_PHONE = N_("Share my phone number")
STOP_ALERTS_HERE = N_("Turn off alerts in this chat")
NOT_TEXT = N_("Sorry, I can read only typed messages and the buttons.")
EDITED = N_("Changes to a sent message are not read. Please send a new message.")
CODE_DELETED = N_("For your safety, the message with your access code was deleted from this chat.")
CODE_NOT_DELETED = N_("For your safety, please delete the message with your access code from this chat.")
CHOOSE_LANGUAGE = N_("Please choose a language:")
OFFER_LINK = N_("To get rotating outage alerts in this chat, tap the button below to share your phone number.")
LINKED = N_("Thank you. Rotating outage alerts for {phone} will come to this chat, and by SMS if Telegram fails.")
LINKED_ALREADY = N_("Rotating outage alerts for {phone} already come to this chat.")
NOT_A_CONTACT = N_(
    "{phone} is not the number of any alert contact. The account holder can add it in the menu "
    "(Alert contacts), or call {support}."
)
NOT_YOURS = N_("Please share your own number with the button below.")
UNLINKED = N_("Alerts will no longer come to this chat. They still come by SMS to the alert contact's number.")
NOT_LINKED = N_("No alerts come to this chat.")


class Kind(enum.Enum):
    """What an update is, for us."""

    IGNORE = "ignore"  # a group, a channel, a service update: nothing to answer
    TURN = "turn"  # a dialog turn (typed text, a command, a button)
    LANGUAGE = "language"  # /language: the choice of language, as buttons
    CONTACT = "contact"  # a shared phone number (request_contact)
    UNLINK = "unlink"  # "stop alerts in this chat" pressed
    BLOCKED = "blocked"  # the user blocked the bot: unlink the chat
    UNKNOWN_PRESS = "unknown_press"  # callback data we never sent


@dataclass(frozen=True, slots=True)
class Incoming:
    """An update, understood.

    ``inbound`` is the dialog turn to run (kinds TURN, LANGUAGE); ``note`` a line said before the
    reply (a sticker: "I can read only typed messages"); ``phone`` the E.164 number of a shared
    contact, ``own`` whether it is the sender's own; ``start`` that it was /start.
    """

    kind: Kind
    chat_id: int = 0
    locale: str = "en"
    inbound: Inbound | None = None
    message_id: int | None = None
    callback_id: str | None = None
    note: str | None = None
    phone: str | None = None
    own: bool = False
    start: bool = False
    update_id: int = 0
    typed: bool = False  # plain text the person typed (not a command, a button, a sticker): it may hold a code

    @property
    def external_id(self) -> str:
        """The update's id as the replay guard keeps it: within its chat, so that update ids of another
        bot once served from the same database can never pass for replays of this one's."""
        return external_id(self.chat_id, self.update_id)


def external_id(chat_id: int, update_id: int) -> str:
    """``chat:update``: at most 42 characters, within ``processed_messages.external_id``'s 64."""
    return f"{chat_id}:{update_id}"


IGNORE = Incoming(Kind.IGNORE)


def locale_of(language_code: str | None) -> str:
    """Vietnamese for a Telegram user whose app speaks it (``vi``, ``vi-VN``), English otherwise."""
    return "vi" if (language_code or "").lower().startswith("vi") else "en"


def e164(raw: str) -> str | None:
    """A shared contact's number as E.164 (Telegram sends it with or without the "+"), or None."""
    digits = "".join(ch for ch in raw if ch.isascii() and ch.isdigit())
    if not 8 <= len(digits) <= 15:
        return None
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _command(text: str) -> str | None:
    """The command a message starts with ("/menu@OutageBot" is "menu"), or None."""
    if not text.startswith("/"):
        return None
    words = text[1:].split(maxsplit=1)
    return words[0].split("@", 1)[0].lower() if words else ""


def classify(update: Update) -> Incoming:
    """What ``update`` asks of us. Never raises: anything unexpected is :data:`IGNORE` or a note."""
    incoming = _classify(update)
    return incoming if incoming is IGNORE else replace(incoming, update_id=update.update_id)


def _classify(update: Update) -> Incoming:
    member = update.my_chat_member
    if member is not None:
        if member.chat.type == ChatType.PRIVATE and member.new_chat_member.status == ChatMemberStatus.BANNED:
            return Incoming(Kind.BLOCKED, member.chat.id)
        return IGNORE
    query = update.callback_query
    if query is not None:
        message = query.message
        chat = message.chat if message is not None else None
        if chat is not None and chat.type != ChatType.PRIVATE:
            return IGNORE
        chat_id = chat.id if chat is not None else query.from_user.id
        locale = locale_of(query.from_user.language_code)
        message_id = message.message_id if message is not None else None
        uid = external_id(chat_id, update.update_id)

        def pressed(kind: Kind, inbound: Inbound | None = None) -> Incoming:
            return Incoming(kind, chat_id, locale, inbound, message_id, callback_id=query.id)

        if query.data in LANGUAGE_PRESSES:
            said = LANGUAGE_PRESSES[query.data]
            return pressed(Kind.TURN, Inbound(CHANNEL, str(chat_id), said, locale, uid, locale_chosen=True, rich=True))
        if query.data == UNLINK:
            return pressed(Kind.UNLINK)
        press = Press.parse(query.data or "")
        if press is None:
            return pressed(Kind.UNKNOWN_PRESS)
        return pressed(
            Kind.TURN, Inbound(CHANNEL, str(chat_id), "", locale, uid, locale_chosen=True, rich=True, press=press)
        )
    edited = update.edited_message
    message = update.message
    if message is None and edited is None:
        return IGNORE  # channel posts, inline queries, polls, ...: nobody to answer in a private chat
    current = message or edited
    assert current is not None
    sender = current.from_user
    if current.chat.type != ChatType.PRIVATE or sender is None or sender.is_bot:
        return IGNORE
    chat_id, locale, message_id = current.chat.id, locale_of(sender.language_code), current.message_id
    uid = external_id(chat_id, update.update_id)

    def turn(text: str, note: str | None = None, start: bool = False, typed: bool = False) -> Incoming:
        inbound = Inbound(CHANNEL, str(chat_id), text, locale, uid, locale_chosen=True, rich=True)
        return Incoming(Kind.TURN, chat_id, locale, inbound, message_id, note=note, start=start, typed=typed)

    if message is None:
        return turn("", EDITED)
    if message.contact is not None:
        contact = message.contact
        own = contact.user_id is not None and contact.user_id == sender.id
        return Incoming(Kind.CONTACT, chat_id, locale, message_id=message_id, phone=e164(contact.phone_number), own=own)
    text = message.text
    if text is None:
        return turn("", NOT_TEXT)  # stickers, photos, voice, files, locations, ...
    command = _command(text)
    if command is None:
        return turn(text, typed=True)
    if command == "language":
        return Incoming(Kind.LANGUAGE, chat_id, locale, message_id=message_id)
    typed = {name: said for name, _, said in COMMANDS}
    if command == "start":
        return turn("MENU", start=True)
    return turn(typed.get(command, text))


Markup = dict[str, Any]  # a reply_markup as the Bot API's JSON (built as plain data: it is on the hot path)


def _button(text: str, data: str) -> dict[str, str]:
    return {"text": text, "callback_data": data}


@dataclass(frozen=True, slots=True)
class Screen:
    """A reply as Telegram shows it: the text and its buttons."""

    text: str
    markup: Markup | None


def _label(catalogs: Catalogs, choice: Choice, number: int, locale: str) -> str:
    return f"{number}. {catalogs.render(choice.label, locale)}"


def _nav(catalogs: Catalogs, token: str, page: int, pages: int, locale: str) -> list[dict[str, str]]:
    row = []
    if page > 0:
        row.append(_button(catalogs.render(Msg.of(PREVIOUS), locale), _data(token, Action.PAGE, page - 1)))
    row.append(_button(f"{page + 1}/{pages}", _data(token, Action.PAGE, page)))
    if page + 1 < pages:
        row.append(_button(catalogs.render(Msg.of(NEXT), locale), _data(token, Action.PAGE, page + 1)))
    return row


def _data(token: str, action: Action, index: int = 0) -> str:
    return Press(token, action, index).data


def screen(reply: Reply, catalogs: Catalogs, keyboard: Keyboard | None, *, yes_no: bool = False) -> Screen:
    """``reply`` as a Telegram message: its text, and its choices as inline buttons.

    A long list is shown :data:`PAGE_ROWS` rows a page, with back and more buttons. A multi-select
    shows a box on each row (ticked when chosen), then All and Done. A yes/no question gets Yes and
    No. Every button carries only ``keyboard.token``, an action and a row's place.
    """
    locale = reply.locale
    text = "\n".join(t for t in catalogs.render_all(reply.messages, locale) if t)[:MAX_TEXT]
    if keyboard is None:
        return Screen(text, None)
    token = keyboard.token
    rows: list[list[dict[str, str]]] = []
    choices: Sequence[Choice] = reply.choices
    if choices:
        pages = max(1, math.ceil(len(choices) / PAGE_ROWS))
        page = min(max(keyboard.page, 0), pages - 1)
        start = page * PAGE_ROWS
        picked = set(keyboard.picked)
        for index in range(start, min(start + PAGE_ROWS, len(choices))):
            choice = choices[index]
            label = _label(catalogs, choice, choice.number or index + 1, locale)
            if reply.multi:
                mark = "\N{WHITE HEAVY CHECK MARK}" if choice.key in picked else "\N{WHITE LARGE SQUARE}"
                rows.append([_button(f"{mark} {label}", _data(token, Action.TOGGLE, index))])
            else:
                rows.append([_button(label, _data(token, Action.PICK, index))])
        if pages > 1:
            rows.append(_nav(catalogs, token, page, pages, locale))
        if reply.multi:
            rows.append(
                [
                    _button(catalogs.render(Msg.of(ALL), locale), _data(token, Action.ALL)),
                    _button(
                        f"{catalogs.render(Msg.of(DONE), locale)} ({len(picked)})",
                        _data(token, Action.DONE),
                    ),
                ]
            )
    elif yes_no:
        rows.append(
            [
                _button(catalogs.render(Msg.of(YES), locale), _data(token, Action.YES)),
                _button(catalogs.render(Msg.of(NO), locale), _data(token, Action.NO)),
            ]
        )
    return Screen(text or "…", {"inline_keyboard": rows} if rows else None)


def share_phone_keyboard(catalogs: Catalogs, locale: str) -> Markup:
    """The keyboard with the one button that shares the user's own phone number."""
    button = {"text": catalogs.render(Msg.of(SHARE_PHONE), locale), "request_contact": True}
    return {"keyboard": [[button]], "resize_keyboard": True, "one_time_keyboard": True}


REMOVE_KEYBOARD: Markup = {"remove_keyboard": True}


def language_keyboard(catalogs: Catalogs) -> Markup:
    """Tiếng Việt and English, each in its own language."""
    return {
        "inline_keyboard": [[_button(catalogs.render(c.label, c.key), f"lang:{c.key}")] for c in FIRST_LANGUAGE_CHOICES]
    }


def unlink_keyboard(catalogs: Catalogs, locale: str) -> Markup:
    """The button that stops alerts in this chat."""
    return {"inline_keyboard": [[_button(catalogs.render(Msg.of(STOP_ALERTS_HERE), locale), UNLINK)]]}
