"""Verify: Customer Account Number, then the access code the utility assigned.

Unknown account, wrong code and locked account get the same words; the port decides, counts failures
and locks out. The access code is used in its one turn and never stored in the session.
"""

from __future__ import annotations

import re

from dialogs.engine import Invalid, State, Turn
from dialogs.text import N_, NP_, Literal, Msg, fold, fold_digits, tidy, trimmed, unmarked

_SEPARATORS = re.compile(r"[\s.-]")
_VERIFIED = N_("Verified. Please choose:")  # the Vietnamese heading without the name: "Đã xác minh."
_ACCOUNT_NUMBER = re.compile(r"[0-9]{6,20}")
CODE_STATE = "verify.code"
_CODE_HELP = N_(
    "The access code is sent to the primary contact named on the account. Please ask that person, or call {support}."
)
# a word of any of these in the answer makes it a sentence about the code, not a code ("tôi quên rồi",
# "em không nhớ mã", "I forgot my code"): a stored code never has a space, so no code has such a word
_NO_CODE_STEMS = frozenset(
    {"QUEN", "NHO", "KHONG", "CHUA", "BIET", "MAT", "MA", "FORGOT", "FORGET", "FORGOTTEN", "LOST", "DONT"}
    | {"DON'T", "KNOW", "HAVE", "CODE", "NO", "NONE", "WHAT", "HELP", "DUNNO", "HOK", "KO", "WHERE", "NEVER"}
    | {"FIND", "GOT", "GET", "RECEIVE", "RECEIVED", "NHAN", "DAU", "TIM", "THAY", "SEND", "SENT"}
)
_WORD = re.compile(r"[^\W\d_]{3,}")  # a word of three letters or more (of any script): not a code group


def parse_account(turn: Turn, text: str) -> str | Invalid:
    """6 to 20 digits, of any script, with spaces, dots or dashes between them (stored as ASCII)."""
    digits = _SEPARATORS.sub("", fold(trimmed(text)))
    if _ACCOUNT_NUMBER.fullmatch(digits):
        return digits
    if digits.isascii() and digits.isdigit():
        return Invalid(Msg.of(N_("A Customer Account Number has 6 to 20 digits. Please check your bill.")))
    return Invalid(Msg.of(N_("The Customer Account Number has only digits. Please check your bill.")))


def _account(turn: Turn, number: str) -> str:
    turn.slots["account"] = number
    return "verify.code"


def _parse_code(turn: Turn, text: str) -> tuple[str, ...] | Invalid:
    """The code as typed, without spaces ("482 913"), its digits as ASCII digits (the importer stores
    codes the same way, and a stored code never has a space); and, when it differs, the same without
    the particles or the end of sentence around it ("482913 ạ", "dạ 482 913 nhé", "482913."). Either
    may be the code ("DA 1234" may be the code DA1234, "482913 a" the code 482913): both are checked,
    as one attempt.

    Words that say there is no code ("quên", "không có", "forgot"), and sentences, are not checked as
    codes: they get the help on where the code comes from, and never count toward the lockout.
    """
    words = [word.strip(":,.;!?-") for word in tidy(fold(text)).split()]  # "mã: 482913" is about the code
    # a sentence (three words or more, two of them words of three letters or more) is about the code
    sentence = len(words) >= 3 and sum(1 for word in words if _WORD.fullmatch(word)) >= 2
    if sentence or any(word in _NO_CODE_STEMS for word in words):
        return Invalid(Msg.of(_CODE_HELP, support=turn.settings.support_phone), mistake=False)
    typed = "".join(fold_digits(text).split())
    bare = "".join(fold_digits(trimmed(text)).split()).rstrip(".!,;:~")
    if not 1 <= len(typed) <= 64:
        return Invalid(Msg.of(N_("Please type the access code exactly as you received it.")))
    return (typed, bare) if bare and bare != typed else (typed,)


def _code(turn: Turn, codes: tuple[str, ...]) -> str:
    number = str(turn.slots.pop("account", ""))
    result = turn.ports.verify(number, *codes)
    support = turn.settings.support_phone
    if result.throttled:
        turn.say(
            Msg.count(
                NP_(
                    "Too many attempts. Please wait {n} minute, or call {support}.",
                    "Too many attempts. Please wait {n} minutes, or call {support}.",
                ),
                result.retry_minutes,
                support=support,
            )
        )
        return "verify.account"
    if result.customer_id is None:  # one text for every failure: it must be true for each of them
        turn.say(
            Msg.of(
                N_(
                    "We could not verify that account number and access code. Please check both; "
                    "if they are right, call {support}."
                ),
                support=support,
            )
        )
        turn.settle(Msg.of(N_("Please type the Customer Account Number again.")))
        return "verify.account"
    turn.session.customer_id = result.customer_id
    turn.session.verified_at = turn.now
    name = (result.customer_name or "").rstrip(".")
    verified = N_("Verified: {name}. Please choose:")
    # where the name would push the reply past two SMS segments: in English the name without its marks
    # (GSM-7 then: one segment), in Vietnamese (UCS-2 anyway) or for a name of other signs no name
    plain = unmarked(name)  # only where that leaves plain letters: other scripts lose more than marks
    english = turn.session.locale == "en" and plain.isascii()
    short = Msg.of(verified, name=Literal(plain)) if english else Msg.of(_VERIFIED)
    turn.head(Msg.of(verified, name=Literal(name)), short=short)
    return "contacts.menu"


STATES = (
    State(
        name="verify.account",
        prompt=N_("Please type your Customer Account Number (it is on your bill)."),
        parse=parse_account,
        act=_account,
        goes_to=("verify.code",),
        hint=N_("The Customer Account Number has only digits. Please check your bill."),
        help=N_("Your Customer Account Number is printed on your bill. Type it here. MENU: main menu. Help: {support}"),
    ),
    State(
        name=CODE_STATE,
        prompt=N_("Please type the access code {utility} assigned to you."),
        params=lambda turn: {"utility": turn.settings.utility_name},
        parse=_parse_code,
        act=_code,
        goes_to=("contacts.menu", "verify.account"),
        back="verify.account",
        free_text=True,
        secret=True,
        help=_CODE_HELP,
    ),
)
