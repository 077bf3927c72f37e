"""First contact, the main menu and the information answers (medical, cooling centers, programs)."""

from __future__ import annotations

from typing import Any

from dialogs.engine import Choice, State, Turn
from dialogs.fields import LANGUAGE_CHOICES
from dialogs.text import N_, Msg

START = "start.language"
MENU = "menu"

_INFO = {
    "medical": (
        N_(
            "Medical conditions: if someone in your home is at risk in extreme heat, you may qualify "
            "for advance notice of rotating outages."
        ),
        N_("To apply for medical advance notice, call Customer Support at {support}."),
    ),
    "cooling": (
        N_(
            "During rotating outages in extreme heat, Cooling Centers are open. Call {support} to find the nearest one."
        ),
    ),
    "programs": (
        N_("This service updates contacts for rotating outage advance notice only."),
        N_("For I-6, BIP, OBMC, CPP, DBP and other programs, please contact your account representative."),
    ),
    "support": (N_("Customer Support: {support}. You may also contact your account representative."),),
}


def _start_params(turn: Turn) -> dict[str, Any]:
    first, second = ("vi", "en") if turn.session.locale == "vi" else ("en", "vi")
    welcome = N_("Rotating outage alerts. Please choose a language:")
    return {"first": Msg.native(welcome, first), "second": Msg.native(welcome, second)}


def _choose_language(turn: Turn, locale: str) -> str:
    turn.session.locale = locale
    return MENU


def _menu_options(turn: Turn) -> list[Choice]:
    options = [
        Choice("contacts", Msg.of(N_("Alert contacts"))),
        Choice("medical", Msg.of(N_("Medical conditions"))),
        Choice("cooling", Msg.of(N_("Cooling Centers"))),
        Choice("programs", Msg.of(N_("Other programs"))),
        Choice("support", Msg.of(N_("Customer Support"))),
    ]
    if turn.session.verified:
        options.append(Choice("logout", Msg.of(N_("Sign out"))))
    return options


def _menu(turn: Turn, key: str) -> str:
    if key == "contacts":
        return "contacts.menu" if turn.session.verified else "verify.account"
    if key == "logout":
        turn.session.drop_verification()
        turn.say(Msg.of(N_("You are signed out.")))
        return MENU
    for msgid in _INFO[key]:
        turn.say(Msg.of(msgid, support=turn.settings.support_phone))
    return MENU


STATES = (
    State(
        name=START,
        prompt=N_("{first}\n{second}"),
        params=_start_params,
        choices=LANGUAGE_CHOICES,
        act=_choose_language,
        goes_to=(MENU,),
        back=START,
        hint=N_("Please type 1 or 2."),
    ),
    State(
        name=MENU,
        prompt=N_("Main menu. Please choose:"),
        options=_menu_options,
        act=_menu,
        goes_to=(MENU, "contacts.menu", "verify.account"),
        back=MENU,
    ),
)
