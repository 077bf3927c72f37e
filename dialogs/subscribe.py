"""Alerts for a rotating outage group without an account: this SMS number or Telegram chat subscribes
to a group, or leaves it, each read back once and confirmed.

JOIN A012 / THEO DÕI A012 and LEAVE A012 / BỎ THEO DÕI A012 work in every state; the main menu has
"Group alerts". A group must exist (some service account is in it); an address has at most
``DialogSettings.max_subscriptions`` groups. The subscription's language is the conversation's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dialogs.engine import Choice, Invalid, Shortcut, State, Turn
from dialogs.fields import GROUP_HINT, group_of, parse_group, parse_yes_no
from dialogs.ports import Subscribed
from dialogs.text import N_, Literal, Msg

MENU = "subs.menu"
ADD = "subs.add"
REMOVE = "subs.remove"
CONFIRM = "subs.confirm"
JOIN_KEY = "join"
_MAIN = "menu"
_NEXT = N_("Reply MENU to see the choices again.")
_UNKNOWN = N_("There is no rotating outage group {group}. Please check your bill.")
_NOT_HERE = N_("Group alerts come by SMS or Telegram. Please write to us from your phone or Telegram.")
_TOO_MANY = N_("You already get alerts for {n} groups, the most allowed. Please leave a group first.")


def _where(turn: Turn) -> Msg:
    """Where alerts would go, as the reader sees it: a Telegram chat (buttons) or an SMS number."""
    return Msg.of(N_("in this chat") if turn.rich else N_("on this number"))


def _groups(turn: Turn) -> list[str]:
    return [str(group) for group in turn.ports.subscribed_groups()]


def _done(turn: Turn, msg: Msg) -> str:
    turn.slots.clear()
    turn.say(msg)
    turn.settle(Msg.of(_NEXT))
    return _MAIN


def _too_many(turn: Turn) -> Msg:
    return Msg.of(_TOO_MANY, n=turn.settings.max_subscriptions)


def not_here(turn: Turn) -> str:
    """Group alerts asked for where no alert can go (the terminal)."""
    return _done(turn, Msg.of(_NOT_HERE))


def may_offer(turn: Turn, group: str) -> bool:
    """Whether ``group``'s alerts can be offered here: alerts reach this address, and it has not got them."""
    return turn.ports.can_subscribe() and group not in _groups(turn)


def offer(turn: Turn, group: str) -> str:
    """Offer ``group``'s alerts (the read-back question), or end here when there is nothing to offer."""
    if not may_offer(turn, group):
        turn.settle(Msg.of(_NEXT))
        return _MAIN
    return _ask(turn, "add", group)


def _ask(turn: Turn, op: str, group: str) -> str:
    """The read-back of subscribing (``add``) or leaving (``remove``) ``group``, or why not."""
    if op == "add":
        if group in _groups(turn):
            return _done(
                turn,
                Msg.of(
                    N_("You already get alerts for group {group} {where}."), group=Literal(group), where=_where(turn)
                ),
            )
        if len(_groups(turn)) >= turn.settings.max_subscriptions:
            return _done(turn, _too_many(turn))
    elif group not in _groups(turn):
        return _done(
            turn, Msg.of(N_("You get no alerts for group {group} {where}."), group=Literal(group), where=_where(turn))
        )
    turn.slots.update(op=op, group=group)
    return CONFIRM


def _begin(op: str) -> Callable[[Turn, str], str]:
    """JOIN / LEAVE, with or without the group after it."""

    def act(turn: Turn, rest: str) -> str:
        if not turn.ports.can_subscribe():
            return not_here(turn)
        if op == "remove" and not _groups(turn):
            return _done(turn, Msg.of(N_("You get no group alerts {where}."), where=_where(turn)))
        state = ADD if op == "add" else REMOVE
        if not rest:
            return state
        group = group_of(rest)
        if group is None:
            turn.say(Msg.of(GROUP_HINT))
            return state
        if op == "add" and not turn.ports.group_exists(group):
            turn.say(Msg.of(_UNKNOWN, group=Literal(group)))
            return state
        return _ask(turn, op, group)

    return act


def _menu_params(turn: Turn) -> dict[str, Any]:
    groups = _groups(turn)
    if groups:
        return {
            "what": Msg.of(
                N_("Alerts {where} for groups: {groups}"), where=_where(turn), groups=[Literal(g) for g in groups]
            )
        }
    return {"what": Msg.of(N_("No group alerts {where} yet."), where=_where(turn))}


def _menu(turn: Turn, key: str) -> str:
    return _begin("add" if key == "add" else "remove")(turn, "")


def _remove_options(turn: Turn) -> list[Choice]:
    return [Choice(group, Literal(group)) for group in _groups(turn)]


def _typed_group(turn: Turn, text: str) -> str | Invalid:
    """A group typed rather than picked by its number."""
    group = group_of(text)
    if group is None or group not in _groups(turn):
        return Invalid(Msg.of(N_("Please type one of these numbers or groups:")))
    return group


def _confirm_params(turn: Turn) -> dict[str, Any]:
    question = (
        N_("Get rotating outage alerts for group {group} {where}? Y/N")
        if turn.slots.get("op") == "add"
        else N_("Stop rotating outage alerts for group {group} {where}? Y/N")
    )
    return {"what": Msg.of(question, group=Literal(str(turn.slots.get("group", ""))), where=_where(turn))}


def _confirm(turn: Turn, yes: bool) -> str:
    op, group = str(turn.slots.get("op", "")), str(turn.slots.get("group", ""))
    if not yes:
        return _done(turn, Msg.of(N_("OK, nothing was changed.")))
    where = _where(turn)
    if op == "add":
        result = turn.ports.subscribe(group, turn.session.locale)
        if result is Subscribed.UNKNOWN_GROUP:
            turn.slots.clear()
            turn.slots["op"] = "add"
            turn.say(Msg.of(_UNKNOWN, group=Literal(group)))
            return ADD
        if result is Subscribed.TOO_MANY:
            return _done(turn, _too_many(turn))
        return _done(
            turn,
            Msg.of(
                N_("Saved. Alerts for group {group} will come {where}. To stop them: {leave}"),
                group=Literal(group),
                where=where,
                leave=Msg.of(N_("LEAVE {group}"), group=Literal(group)),
            ),
        )
    turn.ports.unsubscribe(group)  # not subscribed (any more) ends the same: no alerts for it here
    return _done(turn, Msg.of(N_("Done. No more alerts for group {group} {where}."), group=Literal(group), where=where))


SHORTCUTS = (
    Shortcut("JOIN", {"JOIN": "en", "THEO DOI": "vi"}, _begin("add"), (ADD, CONFIRM, _MAIN)),
    Shortcut("LEAVE", {"LEAVE": "en", "BO THEO DOI": "vi"}, _begin("remove"), (REMOVE, CONFIRM, _MAIN)),
)

STATES = (
    State(
        name=MENU,
        prompt=N_("{what}"),
        params=_menu_params,
        choices=(
            Choice("add", Msg.of(N_("Get alerts for a group")), ("JOIN", "THEO DOI", "THEM")),
            Choice("remove", Msg.of(N_("Stop alerts for a group")), ("LEAVE", "BO THEO DOI", "BO")),
        ),
        act=_menu,
        goes_to=(ADD, REMOVE, CONFIRM, _MAIN),
    ),
    State(
        name=ADD,
        prompt=N_("Which rotating outage group? It is printed on your bill, for example A012."),
        parse=parse_group,
        act=lambda turn, group: _ask(turn, "add", group),
        goes_to=(CONFIRM, _MAIN),
        back=MENU,
        hint=GROUP_HINT,
        help=N_("The rotating outage group is printed on your electric bill, for example A012. MENU: main menu."),
    ),
    State(
        name=REMOVE,
        prompt=N_("Stop alerts for which group?"),
        options=_remove_options,
        parse=_typed_group,
        act=lambda turn, group: _ask(turn, "remove", group),
        goes_to=(CONFIRM, _MAIN),
        back=MENU,
        paged=True,
    ),
    State(
        name=CONFIRM,
        prompt=N_("{what}"),
        params=_confirm_params,
        parse=parse_yes_no,
        act=_confirm,
        goes_to=(_MAIN, ADD),
        back=MENU,
        hint=N_("Please answer Y (yes) or N (no)."),
        yes_no=True,
    ),
)
