"""SMS over Twilio: from a signed webhook form to an :class:`Inbound`, and a reply as TwiML.

Keywords are matched on the whole trimmed message, any case, with or without diacritics. Twilio
itself handles STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT (opt-out), START, YES,
UNSTOP (opt-in), HELP and INFO, and still forwards them: for the opt-out and opt-in words Twilio's
own confirmation is the one the customer gets, so we record the change and send nothing. Vietnamese
words (NGỪNG, DỪNG, HỦY ĐĂNG KÝ; BẮT ĐẦU) are ours alone, so we confirm them, in Vietnamese.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import phonenumbers
from twilio.twiml.messaging_response import MessagingResponse

from bot.channels.base import Inbound, Keyword, KeywordKind
from dialogs.text import fold

CHANNEL = "sms"

_TWILIO_OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
_TWILIO_OPT_IN = {"START", "UNSTOP", "YES"}
_VI_OPT_OUT = {"NGUNG", "NGUNG NHAN TIN", "NGUNG LAI", "HUY DANG KY", "DUNG NHAN TIN"}
_VI_OPT_IN = {"BAT DAU", "TIEP TUC NHAN TIN", "DANG KY LAI"}
_HELP = {"HELP", "INFO"}
_VI_HELP = {"GIUP", "TRO GIUP", "GIUP DO"}


def classify(body: str) -> Keyword | None:
    """The subscription keyword ``body`` is, if it is one (the whole message, trimmed).

    "DỪNG" (stop) and "ĐÚNG" (right) fold to the same letters, so the bare word counts as an opt-out
    only when typed as DỪNG or as plain ASCII "dung", never when typed with other marks.
    """
    stripped = " ".join(body.split()).upper()
    word = fold(stripped)
    if word in _TWILIO_OPT_OUT:
        return Keyword(KeywordKind.OPT_OUT, word, None, provider_confirms=True)
    if word in _VI_OPT_OUT or (word == "DUNG" and stripped in ("DỪNG", "DUNG")) or stripped == "DỪNG LẠI":
        return Keyword(KeywordKind.OPT_OUT, word, "vi")
    if word in _TWILIO_OPT_IN:
        return Keyword(KeywordKind.OPT_IN, word, None, provider_confirms=True, passes_through=word == "YES")
    if word in _VI_OPT_IN:
        return Keyword(KeywordKind.OPT_IN, word, "vi")
    if word in _HELP:
        return Keyword(KeywordKind.HELP, word)
    if word in _VI_HELP:
        return Keyword(KeywordKind.HELP, word, "vi")
    return None


_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


def normalize_number(raw: str, region: str = "US") -> str | None:
    """A phone number as E.164, or None when it is not one (short codes, garbage)."""
    if _E164.match(raw):  # what Twilio sends: already E.164
        return raw
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def inbound_from_form(form: Mapping[str, str], region: str = "US") -> Inbound | None:
    """The customer message in a Twilio incoming-message webhook, or None if it lacks what we need.

    The number is an address, never proof of identity: verification still asks for the access code.
    """
    sid, sender = form.get("MessageSid", "").strip(), form.get("From", "")
    address = normalize_number(sender, region) if sender else None
    if not sid or len(sid) > 64 or address is None:
        return None
    body = form.get("Body", "")
    return Inbound(CHANNEL, address, body, external_id=sid, keyword=classify(body))


def twiml(texts: list[str]) -> str:
    """The reply as TwiML: one ``<Message>`` per text (none at all sends nothing)."""
    response = MessagingResponse()
    for text in texts:
        response.message(text)
    return str(response.to_xml(xml_declaration=True))
