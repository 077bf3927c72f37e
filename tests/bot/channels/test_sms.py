"""SMS keywords, numbers and TwiML: pure functions, as tables."""

from __future__ import annotations

import pytest

from bot.channels.base import KeywordKind
from bot.channels.sms import classify, inbound_from_form, normalize_number, twiml


@pytest.mark.parametrize(("body", "kind", "locale", "provider_confirms"), [
    ("STOP", KeywordKind.OPT_OUT, None, True), (" stop ", KeywordKind.OPT_OUT, None, True),
    ("Unsubscribe", KeywordKind.OPT_OUT, None, True), ("cancel", KeywordKind.OPT_OUT, None, True),
    ("NGỪNG", KeywordKind.OPT_OUT, "vi", False), ("ngung", KeywordKind.OPT_OUT, "vi", False),
    ("dừng", KeywordKind.OPT_OUT, "vi", False), ("DUNG", KeywordKind.OPT_OUT, "vi", False),
    ("Hủy đăng ký", KeywordKind.OPT_OUT, "vi", False), ("huy dang ky", KeywordKind.OPT_OUT, "vi", False),
    ("START", KeywordKind.OPT_IN, None, True), ("unstop", KeywordKind.OPT_IN, None, True),
    ("Yes", KeywordKind.OPT_IN, None, True), ("BẮT ĐẦU", KeywordKind.OPT_IN, "vi", False),
    ("bat dau", KeywordKind.OPT_IN, "vi", False),
    ("HELP", KeywordKind.HELP, None, False), ("info", KeywordKind.HELP, None, False),
    ("GIÚP", KeywordKind.HELP, "vi", False), ("tro giup", KeywordKind.HELP, "vi", False),
])
def test_keywords_are_whole_messages_in_any_case_with_or_without_diacritics(
        body: str, kind: KeywordKind, locale: str | None, provider_confirms: bool) -> None:
    keyword = classify(body)
    assert keyword is not None
    assert (keyword.kind, keyword.locale, keyword.provider_confirms) == (kind, locale, provider_confirms)


@pytest.mark.parametrize("body", ["ĐÚNG", "đúng", "stop please", "please stop", "STOPP", "1", "", "MENU", "help me"])
def test_anything_else_is_not_a_keyword(body: str) -> None:
    assert classify(body) is None


def test_yes_is_an_ordinary_answer_when_there_is_nothing_to_opt_back_into() -> None:
    keyword = classify("YES")
    assert keyword is not None and keyword.passes_through
    start = classify("START")
    assert start is not None and not start.passes_through


@pytest.mark.parametrize(("raw", "e164"), [
    ("+16265550100", "+16265550100"), ("(626) 555-0100", "+16265550100"), ("+84912345678", "+84912345678"),
    ("12345", None), ("not a number", None), ("", None),
])
def test_numbers_are_normalized_to_e164(raw: str, e164: str | None) -> None:
    assert normalize_number(raw) == e164


def test_a_form_without_a_sender_or_message_id_is_not_a_message() -> None:
    assert inbound_from_form({"Body": "hi", "MessageSid": "SM1"}) is None
    assert inbound_from_form({"Body": "hi", "From": "+16265550100"}) is None
    message = inbound_from_form({"Body": "NGỪNG", "From": "+16265550100", "MessageSid": "SM1"})
    assert message is not None and message.address == "+16265550100" and message.external_id == "SM1"
    assert message.keyword is not None and message.keyword.kind is KeywordKind.OPT_OUT


def test_twiml_has_one_message_per_text_and_escapes_them() -> None:
    xml = twiml(["Xin chào <quý khách> & bạn", "Hai"])
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>')
    assert "Xin chào &lt;quý khách&gt; &amp; bạn</Message><Message>Hai</Message></Response>" in xml
    assert twiml([]).endswith("<Response />")
