"""Rotating outage status: what is planned or under way for the reader's groups, or for a group typed.

The status of a group is public, so nobody verifies here. An alert contact's number (or the Telegram
chat linked to it) and a subscriber see their own groups, with the last four digits of their own
service accounts in each; anyone else is asked for the group printed on the bill, sees group-level
facts only (never another customer's account or address), and is offered that group's alerts.
STATUS / TÌNH TRẠNG works in every state, also as "STATUS A012".
"""

from __future__ import annotations

from typing import Any

from dialogs import subscribe
from dialogs.engine import Choice, Shortcut, State, Turn
from dialogs.fields import GROUP_HINT, group_of, parse_group
from dialogs.ports import AlertView
from dialogs.text import N_, Literal, Msg, Window

GROUP = "status.group"
LIST = "status.list"
_MENU = "menu"
_ASKED = "_status_group"  # the group a reader typed (absent: the reader's own groups)
_NEXT = N_("Reply MENU to see the choices again.")
_KINDS = {"advance": N_("planned"), "started": N_("in progress")}
_OTHER = "other"
_NOTE_CHARS = 120


def alert_row(alert: AlertView) -> Msg:
    """One outage on one line: its groups, planned or in progress, the window, the reader's accounts."""
    params: dict[str, Any] = {
        "groups": [Literal(group) for group in alert.groups],
        "kind": Msg.of(_KINDS.get(alert.kind, _KINDS["advance"])),
        "window": Window(alert.starts_at, alert.ends_at),
    }
    if alert.accounts:
        accounts = [Literal("*" + number[-4:]) for number in alert.accounts]
        return Msg.of(N_("{groups} {kind}: {window}, {accounts}"), accounts=accounts, **params)
    return Msg.of(N_("{groups} {kind}: {window}"), **params)


def start(turn: Turn, rest: str) -> str:
    """STATUS (``rest`` empty) or "STATUS A012": the reader's own groups, else the question for one."""
    turn.slots.pop(_ASKED, None)
    if rest:
        group = group_of(rest)
        if group is None:
            turn.say(Msg.of(GROUP_HINT))
            return GROUP
        if not turn.ports.group_exists(group):
            turn.say(
                Msg.of(N_("There is no rotating outage group {group}. Please check your bill."), group=Literal(group))
            )
            return GROUP
        return _for_group(turn, group)
    mine = turn.ports.my_status()
    if not mine.groups:
        return GROUP
    if mine.alerts:
        return LIST
    turn.say(
        Msg.of(
            N_("There is no rotating outage planned for your groups ({groups}) now."),
            groups=[Literal(group) for group in mine.groups],
        )
    )
    turn.settle(Msg.of(_NEXT))
    return _MENU


def _for_group(turn: Turn, group: str) -> str:
    """A group typed by anyone: its outages, and its alerts offered."""
    if turn.ports.group_status(group):
        turn.slots[_ASKED] = group
        return LIST
    turn.say(Msg.of(N_("There is no rotating outage planned for group {group} now."), group=Literal(group)))
    return subscribe.offer(turn, group)


def _alerts(turn: Turn) -> tuple[AlertView, ...]:
    asked = turn.slots.get(_ASKED)
    if asked:
        return tuple(turn.ports.group_status(str(asked)))
    return turn.ports.my_status().alerts


def _list_params(turn: Turn) -> dict[str, Any]:
    asked = turn.slots.get(_ASKED)
    if asked:
        return {"what": Msg.of(N_("Rotating outages, group {group}:"), group=Literal(str(asked)))}
    return {"what": Msg.of(N_("Rotating outages in your groups:"))}


def _list_options(turn: Turn) -> list[Choice]:
    """The outages, one row each (a row shows the operator's note), then what else can be done."""
    rows = [Choice(f"alert:{alert.id}", alert_row(alert)) for alert in _alerts(turn)]
    asked = turn.slots.get(_ASKED)
    if asked and subscribe.may_offer(turn, str(asked)):
        rows.append(Choice(subscribe.JOIN_KEY, Msg.of(N_("Get alerts for group {group}"), group=Literal(str(asked)))))
    elif not asked:
        rows.append(Choice(_OTHER, Msg.of(N_("Another group"))))
    return rows


def _picked(turn: Turn, key: str) -> str:
    if key == _OTHER:
        return GROUP
    asked = turn.slots.get(_ASKED)
    if key == subscribe.JOIN_KEY and asked:
        return subscribe.offer(turn, str(asked))
    alert = next((a for a in _alerts(turn) if f"alert:{a.id}" == key), None)
    if alert is None:  # over meanwhile (restored, cancelled): the list as it is now
        turn.say(Msg.of(N_("That outage is over or was called off.")))
        return LIST
    note = (alert.note_vi if turn.session.locale == "vi" else alert.note_en) or alert.note_en or alert.note_vi
    if note:  # the operator's words, cut to what fits beside the list in a Vietnamese SMS
        shown = note if len(note) <= _NOTE_CHARS else note[: _NOTE_CHARS - 3].rsplit(" ", 1)[0] + "..."
        turn.say(Msg.of(N_("{what}"), what=Literal(shown)))
    else:
        turn.say(Msg.of(N_("No more details. Help: {support}"), support=turn.settings.support_phone))
    return LIST


STARTS = (GROUP, LIST, _MENU, subscribe.CONFIRM)  # where :func:`start` may go
_WORDS = {"STATUS": "en", "OUTAGE STATUS": "en", "TINH TRANG": "vi", "TINH TRANG CAT DIEN": "vi"}
SHORTCUTS = (Shortcut("STATUS", _WORDS, start, STARTS),)

STATES = (
    State(
        name=GROUP,
        prompt=N_("Which rotating outage group? It is printed on your bill, for example A012."),
        parse=parse_group,
        act=_for_group,
        goes_to=(LIST, _MENU, subscribe.CONFIRM),
        hint=GROUP_HINT,
        help=N_("The rotating outage group is printed on your electric bill, for example A012. MENU: main menu."),
    ),
    State(
        name=LIST,
        prompt=N_("{what}"),
        params=_list_params,
        options=_list_options,
        act=_picked,
        goes_to=(LIST, GROUP, _MENU, subscribe.CONFIRM),
        paged=True,
        help=N_("Type a number to read more about an outage. MENU: main menu. Help: {support}"),
    ),
)
