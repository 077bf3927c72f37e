"""Verify: Customer Account Number, then the access code the utility assigned.

Unknown account, wrong code and locked account get the same words; the port decides, counts failures
and locks out. The access code is used in its one turn and never stored in the session.
"""

from __future__ import annotations

import re

from dialogs.engine import Invalid, State, Turn
from dialogs.text import N_, Literal, Msg, fold, fold_digits

_SEPARATORS = re.compile(r"[\s.-]")
_ACCOUNT_NUMBER = re.compile(r"[0-9]{6,20}")
CODE_STATE = "verify.code"


def _parse_account(turn: Turn, text: str) -> str | Invalid:
    """6 to 20 digits, of any script, with spaces, dots or dashes between them (stored as ASCII)."""
    digits = _SEPARATORS.sub("", fold(text))
    if not _ACCOUNT_NUMBER.fullmatch(digits):
        return Invalid(Msg.of(N_("The Customer Account Number has only digits. Please check your bill.")))
    return digits


def _account(turn: Turn, number: str) -> str:
    turn.slots["account"] = number
    return "verify.code"


def _parse_code(turn: Turn, text: str) -> str | Invalid:
    """The code as typed, its digits as ASCII digits (the importer stores codes the same way)."""
    code = fold_digits(text.strip())
    if not 1 <= len(code) <= 64 or " " in code:
        return Invalid(Msg.of(N_("Please type the access code exactly as you received it.")))
    return code


def _code(turn: Turn, code: str) -> str:
    number = str(turn.slots.pop("account", ""))
    result = turn.ports.verify(number, code)
    support = turn.settings.support_phone
    if result.throttled:
        turn.say(
            Msg.of(
                N_("Too many attempts. Please wait {minutes} minutes, or call {support}."),
                minutes=result.retry_minutes,
                support=support,
            )
        )
        return "menu"
    if result.customer_id is None:
        turn.say(
            Msg.of(
                N_("We could not verify that account number and access code. Please try again, or call {support}."),
                support=support,
            )
        )
        return "verify.account"
    turn.session.customer_id = result.customer_id
    turn.session.verified_at = turn.now
    turn.say(Msg.of(N_("Verified. Customer: {name}"), name=Literal(result.customer_name or "")))
    return "contacts.menu"


STATES = (
    State(
        name="verify.account",
        prompt=N_("Please type your Customer Account Number. It is on your bill."),
        parse=_parse_account,
        act=_account,
        goes_to=("verify.code",),
        hint=N_("The Customer Account Number has only digits. Please check your bill."),
    ),
    State(
        name=CODE_STATE,
        prompt=N_("Please type the access code the utility assigned to you."),
        parse=_parse_code,
        act=_code,
        goes_to=("contacts.menu", "verify.account", "menu"),
        back="verify.account",
        free_text=True,
        secret=True,
    ),
)
