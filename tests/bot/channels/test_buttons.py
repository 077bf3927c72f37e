"""Buttons: what a press may carry, and what it can and cannot do to a session."""

from __future__ import annotations

from typing import Any

import pytest

from bot.channels.buttons import Action, Keyboard, Press, current, issue, resolve


def session(*keys: str, multi_numbers: tuple[int, ...] | None = None) -> dict[str, Any]:
    numbers = multi_numbers or tuple(range(1, len(keys) + 1))
    slots: dict[str, Any] = {"_keys": [[n, k, ""] for n, k in zip(numbers, keys, strict=True)]}
    issue(slots, keep=False)
    return slots


def press(slots: dict[str, Any], action: Action, index: int = 0) -> Press:
    keyboard = current(slots)
    assert keyboard is not None
    return Press(keyboard.token, action, index)


def test_callback_data_is_short_ascii_and_reads_back() -> None:
    slots = session("11", "12")
    for action in Action:
        data = press(slots, action, 9999).data
        assert len(data.encode()) <= 64 and data.isascii()
        assert Press.parse(data) == press(slots, action, 9999)


@pytest.mark.parametrize(
    "data",
    [
        "",
        "x",
        "abc:c1",
        "AAAAAAAA:z1",
        "AAAAAAAA:c",
        "AAAAAAAA:c99999",
        "AAAAAAAA:c-1",
        "A" * 40 + ":c1",
        "é" * 6 + ":c1",
    ],
)
def test_anything_we_never_put_on_a_button_is_not_a_press(data: str) -> None:
    assert Press.parse(data) is None


def test_a_press_of_another_keyboard_is_stale_and_changes_nothing() -> None:
    slots = session("11", "12")
    before = dict(slots)
    assert resolve(slots, Press("someoneelse", Action.PICK, 0)).stale
    assert resolve(slots, Press(current(slots).token, Action.PICK, 5)).stale  # type: ignore[union-attr]
    assert slots == before
    assert resolve({}, Press("AAAAAAAA", Action.PICK, 0)).stale  # a session that never showed buttons


def test_a_pick_is_the_number_the_row_is_shown_with() -> None:
    slots = session("40", "41", multi_numbers=(3, 7))
    assert resolve(slots, press(slots, Action.PICK, 1)).text == "7"


def test_toggles_and_pages_keep_the_keyboard_and_done_answers_with_their_numbers() -> None:
    slots = session("a", "b", "c", multi_numbers=(2, 5, 9))
    token = current(slots).token  # type: ignore[union-attr]
    assert resolve(slots, press(slots, Action.DONE)).nothing_picked
    for index in (2, 0, 2, 1):  # c on, a on, c off, b on
        outcome = resolve(slots, press(slots, Action.TOGGLE, index))
        assert outcome.text is None and not outcome.stale
    resolve(slots, press(slots, Action.PAGE, 3))
    assert current(slots) == Keyboard(token, ("a", "b"), 3)
    assert resolve(slots, press(slots, Action.DONE)).text == "2 5"
    assert resolve(slots, press(slots, Action.ALL)).text == "ALL"
    assert (resolve(slots, press(slots, Action.YES)).text, resolve(slots, press(slots, Action.NO)).text) == ("Y", "N")


def test_a_new_keyboard_makes_every_earlier_button_stale() -> None:
    slots = session("a", "b")
    old = press(slots, Action.PICK, 0)
    kept = issue(slots, keep=True)
    assert kept.token == old.token
    fresh = issue(slots, keep=False)
    assert fresh.token != old.token and fresh.picked == ()
    assert resolve(slots, old).stale
