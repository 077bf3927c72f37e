"""What every channel shares: the normalized inbound message and the rendering of a reply as text."""

from __future__ import annotations

from dataclasses import dataclass

from bot.i18n import Catalogs
from dialogs.engine import Reply


@dataclass(frozen=True, slots=True)
class Inbound:
    """One customer message, the same whatever channel brought it.

    Attributes:
        channel: "console", "sms", "telegram".
        address: who wrote, within the channel (phone number, chat id, terminal name). Never proof
            of identity.
        text: what they wrote, untrusted.
        locale_hint: the language the channel suggests for a new conversation, if any.
        external_id: the provider's message id, for dropping replays.
    """

    channel: str
    address: str
    text: str
    locale_hint: str | None = None
    external_id: str | None = None


def render_text(reply: Reply, catalogs: Catalogs) -> list[str]:
    """A reply as plain-text messages; the last one carries the numbered choices ("1 Tiếng Việt")."""
    texts = catalogs.render_all(reply.messages, reply.locale)
    if reply.choices and texts:
        lines = [f"{i} {catalogs.render(c.label, reply.locale)}" for i, c in enumerate(reply.choices, 1)]
        texts[-1] = "\n".join([texts[-1], *lines])
    return texts
