"""Buttons under a reply, for channels that have them (Telegram's inline keyboards).

A keyboard belongs to one question. When a reply shows one, the session remembers a fresh random
token for it (slot ``_kb``), with the toggled rows of a multi-select and the page shown. A press
carries only that token, what the button does and a row's place in the list the session itself
remembers (``_keys``): nothing in it names a customer, an account or a contact, so a forged press can
at most press one of the sender's own buttons. A press whose token is not the session's current one
comes from a question that has passed: it is answered as such and acts on nothing.

Pure functions over the session's slots: ``bot.conversation`` calls them inside the turn's
transaction, so toggles and pages are saved, replayed and serialized like any other turn.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from typing import Any

from dialogs.text import N_

SLOT = "_kb"
PASSED = N_("That button belongs to an earlier question. Please use the latest message.")
NOTHING_PICKED = N_("Please tap at least one service account, then Done.")


class Action(enum.Enum):
    """What a button does; the value is its letter in ``callback_data``."""

    PICK = "c"  # choose one row (a menu, a single-choice list)
    TOGGLE = "t"  # add a row to, or take it from, a multi-select
    ALL = "a"  # every row of a multi-select, at once
    DONE = "d"  # the rows toggled on, as the answer
    PAGE = "p"  # show another page of a long list
    YES = "y"
    NO = "n"


_DATA = re.compile(r"([A-Za-z0-9_-]{4,16}):([a-z])([0-9]{1,4})")


@dataclass(frozen=True, slots=True)
class Press:
    """A button pressed: the keyboard's token, the action and a row's place (or a page)."""

    token: str
    action: Action
    index: int = 0

    @property
    def data(self) -> str:
        """As ``callback_data``: at most 22 ASCII bytes, far within Telegram's 64."""
        return f"{self.token}:{self.action.value}{self.index}"

    @classmethod
    def parse(cls, data: str) -> Press | None:
        """The press ``data`` stands for, or None for anything we never put on a button."""
        found = _DATA.fullmatch(data)
        if found is None:
            return None
        try:
            action = Action(found.group(2))
        except ValueError:
            return None
        return cls(found.group(1), action, int(found.group(3)))


@dataclass(frozen=True, slots=True)
class Keyboard:
    """The keyboard a reply shows: its token, the rows toggled on (keys) and the page shown."""

    token: str
    picked: tuple[str, ...] = ()
    page: int = 0


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a press means for the dialog.

    ``text`` goes to the dialog engine as if typed ("3", "1 4 7", "ALL", "Y"); None with ``stale``
    False means the press changed only the keyboard (a toggle, a page), and the same question is
    shown again; ``stale`` means it belongs to a question that has passed.
    """

    text: str | None = None
    stale: bool = False
    nothing_picked: bool = False


STALE = Resolved(stale=True)


def current(slots: dict[str, Any]) -> Keyboard | None:
    """The keyboard the session's latest reply showed, if any."""
    raw = slots.get(SLOT)
    if not isinstance(raw, dict) or not isinstance(raw.get("t"), str):
        return None
    picked = tuple(str(k) for k in raw.get("on", ()) if isinstance(k, str | int))
    page = raw.get("p", 0)
    return Keyboard(raw["t"], picked, page if isinstance(page, int) else 0)


def _store(slots: dict[str, Any], keyboard: Keyboard) -> None:
    slots[SLOT] = {"t": keyboard.token, "on": list(keyboard.picked), "p": keyboard.page}


def _rows(slots: dict[str, Any]) -> list[tuple[int, str]]:
    """The rows the session shows now, as (number shown, key), in order."""
    rows: list[tuple[int, str]] = []
    for i, row in enumerate(slots.get("_keys", ()), 1):
        if isinstance(row, list | tuple) and len(row) >= 2:
            rows.append((int(row[0]), str(row[1])))
        else:  # a session saved by an older version holds bare keys
            rows.append((i, str(row)))
    return rows


def resolve(slots: dict[str, Any], press: Press) -> Resolved:
    """What ``press`` means in the session whose slots are ``slots``; toggles and pages are applied."""
    keyboard = current(slots)
    if keyboard is None or not secrets.compare_digest(keyboard.token, press.token):
        return STALE
    rows = _rows(slots)
    if press.action is Action.YES:
        return Resolved("Y")
    if press.action is Action.NO:
        return Resolved("N")
    if press.action is Action.PAGE:
        _store(slots, Keyboard(keyboard.token, keyboard.picked, press.index))
        return Resolved()
    if press.action is Action.ALL:
        return Resolved("ALL") if rows else STALE
    if press.action is Action.DONE:
        chosen = {*keyboard.picked}
        numbers = [str(number) for number, key in rows if key in chosen]
        return Resolved(" ".join(numbers)) if numbers else Resolved(nothing_picked=True)
    if not 0 <= press.index < len(rows):
        return STALE
    number, key = rows[press.index]
    if press.action is Action.PICK:
        return Resolved(str(number))
    picked = tuple(k for k in keyboard.picked if k != key) if key in keyboard.picked else (*keyboard.picked, key)
    _store(slots, Keyboard(keyboard.token, picked, keyboard.page))
    return Resolved()


def issue(slots: dict[str, Any], *, keep: bool) -> Keyboard:
    """The keyboard for the reply about to be shown: the current one when ``keep`` (a toggle or a page
    on the same question), otherwise a new one with a new random token, so that every button shown
    before it is stale."""
    keyboard = (current(slots) if keep else None) or Keyboard(secrets.token_urlsafe(6))
    _store(slots, keyboard)
    return keyboard
