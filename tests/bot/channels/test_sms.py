"""SMS keywords, numbers and TwiML: pure functions, as tables."""

from __future__ import annotations

import logging

import pytest

from bot.channels.base import KeywordKind
from bot.channels.sms import (
    MAX_BODY,
    body,
    classify,
    error_code,
    inbound_from_form,
    message_sid,
    sms_address,
    twiml,
)


@pytest.mark.parametrize(
    ("body", "kind", "locale", "provider_confirms"),
    [
        ("STOP", KeywordKind.OPT_OUT, None, True),
        (" stop ", KeywordKind.OPT_OUT, None, True),
        ("Unsubscribe", KeywordKind.OPT_OUT, None, True),
        ("cancel", KeywordKind.OPT_OUT, None, True),
        ("NGỪNG", KeywordKind.OPT_OUT, "vi", False),
        ("ngung", KeywordKind.OPT_OUT, "vi", False),
        ("dừng", KeywordKind.OPT_OUT, "vi", False),
        ("DUNG", KeywordKind.OPT_OUT, "vi", False),
        ("Hủy đăng ký", KeywordKind.OPT_OUT, "vi", False),
        ("huy dang ky", KeywordKind.OPT_OUT, "vi", False),
        ("START", KeywordKind.OPT_IN, None, True),
        ("unstop", KeywordKind.OPT_IN, None, True),
        ("Yes", KeywordKind.OPT_IN, None, True),
        ("BẮT ĐẦU", KeywordKind.OPT_IN, "vi", False),
        ("bat dau", KeywordKind.OPT_IN, "vi", False),
        ("HELP", KeywordKind.HELP, None, False),
        ("info", KeywordKind.HELP, None, False),
        ("GIÚP", KeywordKind.HELP, "vi", False),
        ("tro giup", KeywordKind.HELP, "vi", False),
    ],
)
def test_keywords_are_whole_messages_in_any_case_with_or_without_diacritics(
    body: str, kind: KeywordKind, locale: str | None, provider_confirms: bool
) -> None:
    keyword = classify(body)
    assert keyword is not None
    assert (keyword.kind, keyword.locale, keyword.provider_confirms) == (kind, locale, provider_confirms)


@pytest.mark.parametrize("body", ["ĐÚNG", "đúng", "stop please", "please stop", "STOPP", "1", "", "MENU", "help me"])
def test_anything_else_is_not_a_keyword(body: str) -> None:
    assert classify(body) is None


@pytest.mark.parametrize(
    "body",
    [
        *("dung", "DUNG.", "dung!", "dung~", "Dừng.", "dừng ạ", "dạ dừng", "dừng nhé", "Dừng lại.", "dừng lại ạ"),
        *("dừng, ạ", "ngừng ạ", "dạ ngừng nhé", "Ngừng nhận tin ạ", "hủy đăng ký nhé", "dung lai"),
    ],
)
def test_stop_in_vietnamese_with_its_marks_or_bare_opts_out_whatever_particle_comes_with_it(body: str) -> None:
    keyword = classify(body)
    assert keyword is not None and keyword.kind is KeywordKind.OPT_OUT and keyword.locale == "vi"


@pytest.mark.parametrize(
    "body", ["dạ dung", "da dung", "dung a", "dung nhe", "vâng dung", "đúng ạ", "dung, ạ", "dung?"]
)
def test_dung_without_marks_beside_a_particle_is_an_answer_not_a_stop(body: str) -> None:
    """Typed plain with a particle it is "dạ đúng" (yes, right); DỪNG with its marks is always a stop."""
    assert classify(body) is None


def test_yes_is_an_ordinary_answer_when_there_is_nothing_to_opt_back_into() -> None:
    keyword = classify("YES")
    assert keyword is not None and keyword.passes_through
    start = classify("START")
    assert start is not None and not start.passes_through


@pytest.mark.parametrize(
    ("sender", "address"),
    [
        ("+16265550100", "+16265550100"),
        ("+84912345678", "+84912345678"),
        ("+442071838750", "+442071838750"),
        # other channels Twilio routes to the same webhook: never the session of an SMS number
        ("whatsapp:+16265550100", None),
        ("viber:+16265550100", None),
        ("messenger:2345678901", None),
        ("rcs:+16265550100", None),
        ("sms:+16265550100", None),
        # short codes, alphanumeric senders, national forms: not a customer's E.164 number
        ("12345", None),
        ("+12345", None),
        ("OUTAGES", None),
        ("2345678901", None),
        ("(626) 555-0100", None),
        ("+1800FLOWERS", None),
        ("+1626555O100", None),
        # the same number written any other way
        ("+1 626 555 0100", None),
        (" +16265550100", None),
        ("+16265550100 ", None),
        ("+16265550100\n", None),
        ("+1(626)5550100", None),
        ("+1-626-555-0100", None),
        ("++16265550100", None),
        ("+016265550100", None),
        ("+440201838750", None),  # a national trunk 0 kept inside an international number
        ("+１６２６５５５０１００", None),
        ("+1٦٢٦٥٥٥٠١٠٠", None),  # not what Twilio sends
        ("+16265550100²", None),
        ("", None),
        ("+", None),
        ("+1" + "9" * 20, None),
    ],
)
def test_only_a_plain_e164_number_is_an_sms_address(sender: str, address: str | None) -> None:
    assert sms_address(sender) == address


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("30003", 30003),
        ("21610", 21610),
        ("1", 1),
        ("2147483647", 2**31 - 1),
        ("", None),
        ("0", None),  # no error
        ("2147483648", None),
        ("9" * 400, None),  # beyond the column (a 32-bit integer on PostgreSQL)
        ("²", None),
        ("①", None),
        ("３０００３", None),
        ("٣٠٠٠٣", None),  # Twilio sends ASCII digits
        ("-1", None),
        ("+5", None),
        (" 30003", None),
        ("30003\n", None),
        ("3e4", None),
        ("30003.0", None),
        ("0x7530", None),
        ("30_003", None),
    ],
)
def test_an_error_code_is_a_positive_32_bit_number_or_unknown(raw: str, code: int | None) -> None:
    assert error_code(raw) == code


@pytest.mark.parametrize(
    ("raw", "sid"),
    [
        ("SM" + "0123456789abcdef" * 2, "SM" + "0123456789abcdef" * 2),
        ("MM5f1a", "MM5f1a"),
        ("SM1", "SM1"),
        ("", None),
        ("SM\x001", None),
        ("SM 1", None),
        ("SM-1", None),
        ("SM١", None),
        ("SMé", None),
        ("S" * 64, "S" * 64),
        ("S" * 65, None),
    ],
)
def test_a_message_id_is_short_ascii_letters_and_digits(raw: str, sid: str | None) -> None:
    assert message_sid(raw) == sid


def test_a_form_without_a_sender_or_message_id_is_not_a_message() -> None:
    assert inbound_from_form({"Body": "hi", "MessageSid": "SM1"}) is None
    assert inbound_from_form({"Body": "hi", "From": "+16265550100"}) is None
    assert inbound_from_form({"Body": "hi", "From": "whatsapp:+16265550100", "MessageSid": "SM1"}) is None
    assert inbound_from_form({"Body": "hi", "From": "+16265550100", "MessageSid": "SM\x00"}) is None
    message = inbound_from_form({"Body": "NGỪNG", "From": "+16265550100", "MessageSid": "SM1"})
    assert message is not None and message.address == "+16265550100" and message.external_id == "SM1"
    assert message.keyword is not None and message.keyword.kind is KeywordKind.OPT_OUT


def test_a_turn_is_one_message_its_texts_on_their_own_lines_escaped() -> None:
    xml = twiml(["Xin chào <quý khách> & bạn", "Hai\n1 Một"])
    assert xml == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        "<Message>Xin chào &lt;quý khách&gt; &amp; bạn\nHai\n1 Một</Message></Response>"
    )


@pytest.mark.parametrize("texts", [[], [""], ["", ""]])
def test_a_turn_with_nothing_to_say_sends_nothing(texts: list[str]) -> None:
    assert twiml(texts).endswith("<Response />")
    assert body(texts) is None


def test_a_body_within_the_limit_is_sent_whole() -> None:
    texts = ["a" * 799, "b" * 800]  # 1,600 with the newline
    assert body(texts) == "\n".join(texts)


def test_a_body_over_the_limit_is_cut_at_a_line_end_and_logged_with_its_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lines = [f"{i:02d} " + "x" * 97 for i in range(1, 21)]  # 20 lines of 100 characters
    with caplog.at_level(logging.WARNING, logger="bot.channels.sms"):
        sent = body(["Chọn:", "\n".join(lines)], state="contacts.pick")
    assert sent is not None and len(sent) <= MAX_BODY
    assert sent.split("\n") == ["Chọn:", *lines[:15]]  # whole lines only: 5 + 15 * 101 characters
    [record] = caplog.records
    assert "contacts.pick" in record.getMessage() and "2025" in record.getMessage()


def test_a_single_line_over_the_limit_is_cut_after_a_whole_word() -> None:
    sent = body(["word " * 400])
    assert sent is not None and len(sent) <= MAX_BODY and sent.endswith("word")
    assert body(["x" * 2000]) == "x" * MAX_BODY


def test_characters_outside_the_bmp_count_twice_toward_the_limit() -> None:
    sent = body(["🔥" * 1000])  # 2,000 UTF-16 units
    assert sent == "🔥" * 800
