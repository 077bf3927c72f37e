"""Outbound SMS through the real twilio Client, against Prism (Twilio's spec) and our fault layer."""

from __future__ import annotations

import re

import pytest

from bot.channels.base import Outcome
from bot.channels.twilio_sender import TwilioSender
from bot.config import Settings

TWILIO = {
    "public_url": "https://bot.example.test",
    "twilio_account_sid": "AC" + "0" * 32,
    "twilio_auth_token": "test-auth-token",
    "twilio_from": "+16265550000",
}


def sender(api: str, **overrides: object) -> TwilioSender:
    return TwilioSender(Settings(**{**TWILIO, "twilio_api_url": api, **overrides}), timeout=1.0)  # type: ignore[arg-type]


def test_a_message_twilio_s_spec_accepts(twilio_api: str) -> None:
    result = sender(twilio_api).send("+16265550100", "Xin chào quý khách")
    assert result.outcome is Outcome.ACCEPTED
    assert result.provider_id is not None and re.fullmatch(r"(SM|MM)[0-9a-fA-F]{32}", result.provider_id)


def test_a_messaging_service_instead_of_a_number(twilio_api: str) -> None:
    result = sender(twilio_api, twilio_from=None, twilio_messaging_service_sid="MG" + "1" * 32).send(
        "+16265550100", "Hello"
    )
    assert result.outcome is Outcome.ACCEPTED


@pytest.mark.parametrize(
    ("to", "outcome", "code"),
    [
        ("+12135550101", Outcome.PERMANENT, 21211),
        ("+12135550106", Outcome.PERMANENT, 21614),
        ("+12135550102", Outcome.OPTED_OUT, 21610),
        ("+12135550103", Outcome.TRANSIENT, 20429),
        ("+12135550104", Outcome.TRANSIENT, 20500),
        ("+12135550105", Outcome.TRANSIENT, None),
    ],
)
def test_provider_errors_map_to_what_to_do_next(twilio_api: str, to: str, outcome: Outcome, code: int | None) -> None:
    result = sender(twilio_api).send(to, "Hello")
    assert (result.outcome, result.error_code) == (outcome, code)


def test_an_unreachable_twilio_is_transient() -> None:
    assert sender("http://127.0.0.1:9").send("+16265550100", "Hello").outcome is Outcome.TRANSIENT


def test_incomplete_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="incomplete"):
        TwilioSender(Settings(twilio_account_sid="AC1"))
