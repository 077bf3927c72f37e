"""SMS over Twilio: from a signed webhook form to an :class:`Inbound`, and a reply as TwiML.

Keywords are matched on the whole trimmed message, any case, with or without diacritics. Twilio
itself handles STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT (opt-out), START, YES,
UNSTOP (opt-in), HELP and INFO, and still forwards them: for the opt-out and opt-in words Twilio's
own confirmation is the one the customer gets, so we record the change and send nothing. Vietnamese
words (NGỪNG, DỪNG, HỦY ĐĂNG KÝ; BẮT ĐẦU) are ours alone, so we confirm them, in Vietnamese, and keep
them ourselves (``bot.storage.optouts``).

A turn's reply is one SMS body (:func:`body`): several ``<Message>`` verbs would be several SMS,
which carriers may deliver out of order.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping

import phonenumbers
from twilio.twiml.messaging_response import MessagingResponse

from bot.channels.base import Inbound, Keyword, KeywordKind
from dialogs.text import fold, tidy

log = logging.getLogger(__name__)

CHANNEL = "sms"
MAX_BODY = 1600  # characters Twilio accepts in one message body (it refuses more: error 21617)

_TWILIO_OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
_TWILIO_OPT_IN = {"START", "UNSTOP", "YES"}
_VI_OPT_OUT = {"NGUNG", "NGUNG NHAN TIN", "NGUNG LAI", "HUY DANG KY", "DUNG NHAN TIN"}
_VI_OPT_IN = {"BAT DAU", "TIEP TUC NHAN TIN", "DANG KY LAI"}
_HELP = {"HELP", "INFO"}
_VI_HELP = {"GIUP", "TRO GIUP", "GIUP DO"}


def classify(body: str) -> Keyword | None:
    """The subscription keyword ``body`` is, if it is one (the whole message, trimmed).

    "DỪNG" (stop) and "ĐÚNG" (right) fold to the same letters, so the bare word counts as an opt-out
    only when typed as DỪNG (with any particle: "dừng ạ", "Dừng.") or as a bare plain ASCII "dung"
    (at a yes/no question too: without marks it may be either, and a request to stop is honoured),
    never when typed with other marks, nor plain with a particle ("dạ dung" is "dạ đúng"). Our other
    words may carry a politeness particle ("ngừng ạ", "dạ ngừng nhé"); Twilio's are matched as Twilio
    does.
    """
    stripped = " ".join(body.split()).upper()
    word = fold(stripped)
    if word in _TWILIO_OPT_OUT:
        return Keyword(KeywordKind.OPT_OUT, word, None, provider_confirms=True)
    ours = tidy(word)
    if ours in _VI_OPT_OUT or (ours in ("DUNG", "DUNG LAI") and _means_stop(stripped)):
        return Keyword(KeywordKind.OPT_OUT, ours, "vi")
    if word in _TWILIO_OPT_IN:
        return Keyword(KeywordKind.OPT_IN, word, None, provider_confirms=True, passes_through=word == "YES")
    if ours in _VI_OPT_IN:
        return Keyword(KeywordKind.OPT_IN, ours, "vi")
    if word in _HELP:
        return Keyword(KeywordKind.HELP, word)
    if word in _VI_HELP:
        return Keyword(KeywordKind.HELP, word, "vi")
    return None


def _means_stop(stripped: str) -> bool:
    """Whether a message that folds to DỪNG / DỪNG LẠI (with particles) is "stop", not "đúng" (right)."""
    words = [word.strip(".!,;:~?") for word in stripped.split()]
    said = next((word for word in words if fold(word) == "DUNG"), None)
    return said == "DỪNG" or (said == "DUNG" and fold(" ".join(words)) in ("DUNG", "DUNG LAI"))


_E164 = re.compile(r"\+[1-9][0-9]{7,14}")  # ASCII digits only: re's \d would match every script's
_MESSAGE_SID = re.compile(r"[A-Za-z0-9]{1,64}")
_ERROR_CODE = re.compile(r"[1-9][0-9]{0,9}")
INT32_MAX = 2**31 - 1  # outbound_messages.error_code is an INTEGER (32 bits on PostgreSQL)


@functools.lru_cache(maxsize=8192)  # a conversation's turns come from one number: parse it once
def sms_address(sender: str) -> str | None:
    """The address of an SMS sender: its number exactly as Twilio sends it (E.164), or None.

    Twilio posts other channels to the same webhook with the sender in another form
    (``whatsapp:+16265550100``, ``viber:...``, ``messenger:...``), and short codes or alphanumeric
    senders are not a customer's number. None of those may reach the session of the SMS number they
    contain, so only a plain, canonical E.164 number is an address: no prefix, no spaces, no other
    script's digits, no national trunk prefix kept inside it.
    """
    if not _E164.fullmatch(sender):
        return None
    try:
        number = phonenumbers.parse(sender, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    if phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) != sender:
        return None
    return sender


def message_sid(raw: str) -> str | None:
    """A provider message id (``SM...``, ``MM...``): 1 to 64 ASCII letters and digits, or None."""
    return raw if _MESSAGE_SID.fullmatch(raw) else None


def error_code(raw: str) -> int | None:
    """A status callback's ``ErrorCode`` as a number, or None when absent, zero or not a 32-bit one.

    Twilio's codes are positive numbers of a few digits; anything else (``²``, ``-1``, a code beyond a
    32-bit integer) is stored as unknown rather than refused, since the status itself still counts.
    """
    if not _ERROR_CODE.fullmatch(raw):
        return None
    code = int(raw)
    return code if code <= INT32_MAX else None


def inbound_from_form(form: Mapping[str, str], region: str = "US") -> Inbound | None:
    """The customer message in a Twilio incoming-message webhook, or None if it is not one we take.

    The sender must be a plain E.164 number (:func:`sms_address`); ``region`` is not needed for that
    and is kept for callers. The number is an address, never proof of identity: verification still
    asks for the access code.
    """
    sid, address = message_sid(form.get("MessageSid", "")), sms_address(form.get("From", ""))
    if sid is None or address is None:
        return None
    body = form.get("Body", "")
    return Inbound(CHANNEL, address, body, external_id=sid, keyword=classify(body))


def _units(text: str) -> int:
    """Characters as Twilio may count them: UTF-16 code units (an emoji counts twice), never fewer."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _cut(text: str, limit: int) -> str:
    """The longest start of ``text`` within ``limit`` units that ends where a line ends.

    A first line longer than ``limit`` on its own is cut after its last whole word that fits.
    """
    kept: list[str] = []
    used = 0
    for line in text.split("\n"):
        cost = _units(line) + (1 if kept else 0)
        if used + cost > limit:
            break
        kept.append(line)
        used += cost
    if kept:
        return "\n".join(kept)
    first: list[str] = []
    used = 0
    for ch in text:
        used += _units(ch)
        if used > limit:
            break
        first.append(ch)
    start = "".join(first)
    return start.rsplit(" ", 1)[0] if " " in start.strip() else start


def body(texts: list[str], state: str = "") -> str | None:
    """A turn's texts as one SMS body, each on its own line(s); None when there is nothing to send.

    The whole body stays within Twilio's :data:`MAX_BODY` characters. A longer reply is a dialog's bug:
    it is logged with ``state`` (the dialog state that answered) and cut after the last whole line
    that fits, rather than refused, so the customer still gets the start of it.
    """
    text = "\n".join(t for t in texts if t)
    if not text.strip():
        return None
    if _units(text) > MAX_BODY:
        log.warning(
            "SMS reply at state %s is %d characters, over the %d one message may hold: cut at a line's end",
            state or "?",
            _units(text),
            MAX_BODY,
        )
        text = _cut(text, MAX_BODY)
    return text


def twiml(texts: list[str], state: str = "") -> str:
    """The reply as TwiML: one ``<Message>`` with every text of the turn (:func:`body`), or none."""
    response = MessagingResponse()
    text = body(texts, state)
    if text is not None:
        response.message(text)
    return str(response.to_xml(xml_declaration=True))
