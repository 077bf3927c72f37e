"""First contact, the main menu and the information answers (medical, cooling centers, programs)."""

from __future__ import annotations

from typing import Any

from dialogs import status, subscribe
from dialogs.engine import Choice, Invalid, State, Turn
from dialogs.fields import FIRST_LANGUAGE_CHOICES
from dialogs.text import N_, Msg
from dialogs.verify import CODE_STATE, parse_account

START = "start.language"
MENU = "menu"

_INFO = {
    "medical": (
        N_(
            "If someone in your home has a medical condition that puts them at risk in extreme heat, they "
            "may qualify for advance notice of rotating outages. To apply, call {support}."
        ),
    ),
    "cooling": (
        N_("During rotating outages in extreme heat, Cooling Centers are open. Call {support} for the nearest one."),
    ),
    "programs": (
        N_(
            "I-6, BIP, OBMC, CPP, DBP and other programs: please contact your account representative. "
            "Customer Support: {support}."
        ),
    ),
}
_NEXT = N_("Reply MENU to see the choices again.")
_ACCOUNT = "account:"


def _start_params(turn: Turn) -> dict[str, Any]:
    first, second = ("vi", "en") if turn.session.locale == "vi" else ("en", "vi")
    welcome = N_("{utility} rotating outage alerts. Choose a language:")
    utility = turn.settings.utility_name
    return {
        "first": Msg(welcome, {"utility": utility}, locale=first),
        "second": Msg(welcome, {"utility": utility}, locale=second),
    }


def _not_a_language(turn: Turn, text: str) -> Invalid:
    """At the first question nobody knows the reader's language yet: the hint comes in both."""
    first, second = ("vi", "en") if turn.session.locale == "vi" else ("en", "vi")
    hint = N_("Please type 1 or 2.")
    return Invalid(Msg.of(N_("{first}\n{second}"), first=Msg.native(hint, first), second=Msg.native(hint, second)))


def _choose_language(turn: Turn, locale: str) -> str:
    """The language; a first message that was a Customer Account Number is not asked for again."""
    turn.session.locale = locale
    number = parse_account(turn, str(turn.slots.pop("_first", "")))
    if not isinstance(number, Invalid):
        turn.slots["account"] = number
        return CODE_STATE
    return MENU


def _menu_options(turn: Turn) -> list[Choice]:
    options = [
        Choice("contacts", Msg.of(N_("Alert contacts")), ("CONTACTS", "LIEN LAC", "NGUOI LIEN LAC", "CANH BAO")),
        Choice("medical", Msg.of(N_("Medical conditions")), ("MEDICAL", "BENH", "BENH TRANG")),
        Choice("cooling", Msg.of(N_("Cooling Centers")), ("COOLING", "TRAM LAM MAT", "LAM MAT")),
        Choice("programs", Msg.of(N_("Other programs")), ("PROGRAMS", "SUPPORT", "HO TRO", "CHUONG TRINH")),
        Choice("status", Msg.of(N_("Outage status")), ("STATUS", "TINH TRANG", "TINH TRANG CAT DIEN")),
        Choice("groups", Msg.of(N_("Group alerts")), ("GROUPS", "GROUP ALERTS", "NHOM", "CANH BAO THEO NHOM")),
    ]
    if turn.session.verified:
        options.append(Choice("logout", Msg.of(N_("Sign out")), ("LOGOUT", "SIGN OUT", "DANG XUAT")))
    return options


def _account_typed(turn: Turn, text: str) -> str | Invalid:
    """A Customer Account Number typed at the main menu: the customer is on the way to verifying."""
    number = parse_account(turn, text) if not turn.session.verified else None
    if isinstance(number, str):
        return _ACCOUNT + number
    return Invalid(Msg.of(N_("Sorry, please type one of these numbers:")))


def _menu(turn: Turn, key: str) -> str:
    if key.startswith(_ACCOUNT):
        turn.slots["account"] = key.removeprefix(_ACCOUNT)
        return CODE_STATE
    if key == "contacts":
        return "contacts.menu" if turn.session.verified else "verify.account"
    if key == "status":
        return status.start(turn, "")
    if key == "groups":
        return subscribe.MENU if turn.ports.can_subscribe() else subscribe.not_here(turn)
    if key == "logout":
        turn.session.drop_verification()
        turn.say(Msg.of(N_("You are signed out.")))
        return MENU
    for msgid in _INFO[key]:
        turn.say(Msg.of(msgid, support=turn.settings.support_phone))
    turn.settle(Msg.of(_NEXT))
    return MENU


STATES = (
    State(
        name=START,
        prompt=N_("{first}\n{second}"),
        params=_start_params,
        choices=FIRST_LANGUAGE_CHOICES,
        act=_choose_language,
        goes_to=(MENU, CODE_STATE),
        back=START,
        parse=_not_a_language,
    ),
    State(
        name=MENU,
        prompt=N_("Main menu:"),
        options=_menu_options,
        parse=_account_typed,
        act=_menu,
        goes_to=(MENU, "contacts.menu", "verify.account", CODE_STATE, subscribe.MENU, *status.STARTS),
        back=MENU,
        paged=True,  # beside the first welcome, two Vietnamese SMS segments hold only part of it
    ),
)
