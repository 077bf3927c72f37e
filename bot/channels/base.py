"""What every channel shares: the normalized inbound message and the rendering of a reply as text."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from bot.channels.buttons import Press
from bot.channels.segments import count_segments
from bot.i18n import Catalogs
from dialogs.engine import Reply


class KeywordKind(enum.Enum):
    """Whole-message words that act on the subscription, not on the dialog."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


@dataclass(frozen=True, slots=True)
class Keyword:
    """A keyword a channel recognised in a message.

    Attributes:
        kind: what it asks for.
        word: the word as matched (folded), for the audit log.
        locale: the language the word is in, when it tells (NGỪNG is Vietnamese; STOP tells nothing).
        provider_confirms: the provider answers this word itself (Twilio confirms STOP and START),
            so we must not send a second confirmation. After an opt-out word of the provider's, the
            provider also blocks everything we send to the address until it opts in again.
        passes_through: when the keyword has nothing to do (START while not opted out), the dialog
            gets the message itself (YES is then an ordinary "yes"); otherwise an empty message, which
            shows the current question again.
    """

    kind: KeywordKind
    word: str
    locale: str | None = None
    provider_confirms: bool = False
    passes_through: bool = False


@dataclass(frozen=True, slots=True)
class Inbound:
    """One customer message, the same whatever channel brought it.

    Attributes:
        channel: "console", "sms", "telegram".
        address: who wrote, within the channel (phone number, chat id, terminal name). Never proof
            of identity.
        text: what they wrote, untrusted.
        locale_hint: the language the channel suggests for a new conversation, if any.
        external_id: the provider's message id: a replay is answered again and changes nothing.
        keyword: a subscription keyword the channel recognised in ``text``.
        locale_chosen: ``locale_hint`` was chosen by the person (``chat --lang``, Telegram's
            ``language_code``), not guessed: a new conversation starts in it without the language question.
        rich: the channel shows choices as buttons (``bot.channels.buttons``) and pages them itself.
        press: the button pressed, when the message is a press rather than typed ``text``.
    """

    channel: str
    address: str
    text: str
    locale_hint: str | None = None
    external_id: str | None = None
    keyword: Keyword | None = None
    locale_chosen: bool = False
    rich: bool = False
    press: Press | None = None


class Outcome(enum.Enum):
    """What a send attempt (not a reply) means for the message, on every channel."""

    ACCEPTED = "accepted"  # the provider took it; delivery reports may follow
    OPTED_OUT = "opted_out"  # the recipient said STOP, or blocked the bot: record it, never retry there
    PERMANENT = "permanent"  # invalid or not a mobile number, chat gone, ...: never retry
    TRANSIENT = "transient"  # rate limit, provider or network trouble: retry later


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one send, with the provider's message id or error code."""

    outcome: Outcome
    provider_id: str | None = None
    error_code: int | None = None
    retry_after: float | None = None


def render_text(reply: Reply, catalogs: Catalogs) -> list[str]:
    """A reply as plain-text messages; the last one carries the numbered choices ("1 Tiếng Việt") and
    the footer of a long list."""
    texts = catalogs.render_all(reply.messages, reply.locale)
    if reply.choices and texts:
        lines = [f"{c.number or i} {catalogs.render(c.label, reply.locale)}" for i, c in enumerate(reply.choices, 1)]
        if reply.footer is not None:
            lines.append(catalogs.render(reply.footer, reply.locale))
        texts[-1] = "\n".join([texts[-1], *lines])
    return texts


SMS_BUDGET = 2  # segments a reply may take: what one question with its choices is allowed to cost


def fits_budget(catalogs: Catalogs, segments: int = SMS_BUDGET) -> Callable[[Reply], bool]:
    """Whether a reply, as one SMS body, costs at most ``segments`` segments (how long lists are paged)."""

    def fits(reply: Reply) -> bool:
        return count_segments("\n".join(render_text(reply, catalogs))).count <= segments

    return fits
