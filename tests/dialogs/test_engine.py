"""The engine: graphs are checked when loaded, selections and folding understand what people type."""

from __future__ import annotations

import pytest

from dialogs.engine import DialogSettings, Engine, GraphError, State, parse_selection
from dialogs.graph import build_engine
from dialogs.text import clean, fold, tidy


def _state(name: str, goes_to: tuple[str, ...], back: str | None = None) -> State:
    return State(name=name, prompt="p", parse=lambda t, s: s, act=lambda t, v: goes_to[0], goes_to=goes_to, back=back)


def _engine(*states: State) -> Engine:
    return Engine(states, start="a", menu="m", verify="m", settings=DialogSettings())


def test_a_sound_graph_loads() -> None:
    engine = _engine(_state("a", ("m",)), _state("m", ("a",)))
    assert set(engine.states) == {"a", "m"}


def test_an_unreachable_state_is_refused() -> None:
    with pytest.raises(GraphError, match="unreachable states: orphan"):
        _engine(_state("a", ("m",)), _state("m", ("a",)), _state("orphan", ("m",)))


def test_a_transition_to_a_missing_state_is_refused() -> None:
    with pytest.raises(GraphError, match="undefined state 'nowhere'"):
        _engine(_state("a", ("m",)), _state("m", ("nowhere",)))


def test_a_dead_end_is_refused() -> None:
    with pytest.raises(GraphError, match="dead end"):
        _engine(_state("a", ("m",)), _state("m", ()))


def test_a_state_that_accepts_no_answer_is_refused() -> None:
    mute = State(name="m", prompt="p", act=lambda t, v: "a", goes_to=("a",))
    with pytest.raises(GraphError, match="accepts no answer"):
        _engine(_state("a", ("m",)), mute)


def test_a_state_defined_twice_is_refused() -> None:
    with pytest.raises(GraphError, match="defined twice"):
        _engine(_state("a", ("m",)), _state("m", ("a",)), _state("m", ("a",)))


def test_the_product_graph_is_sound_and_drawn_as_mermaid() -> None:
    engine = build_engine()
    assert len(engine.states) >= 25
    diagram = engine.mermaid()
    assert diagram.startswith("stateDiagram-v2\n    [*] --> start_language\n")
    for state in engine.states:
        assert state.replace(".", "_") in diagram
    assert "add_accounts --> add_confirm" in diagram and "add_confirm --> add_accounts: back" in diagram


def test_a_catalog_missing_a_prompt_is_refused() -> None:
    engine = build_engine()
    with pytest.raises(GraphError, match="missing from a catalog"):
        engine.check_catalog(lambda msgid: not msgid.startswith("Which contact"))


@pytest.mark.parametrize(
    ("text", "count", "multi", "expected"),
    [
        ("2", 3, False, [1]),
        ("1,3", 3, True, [0, 2]),
        ("1, 3", 3, True, [0, 2]),
        ("1 3", 3, True, [0, 2]),
        ("1-3", 3, True, [0, 1, 2]),
        ("3-1", 3, True, [0, 1, 2]),
        ("1 - 2", 3, True, [0, 1]),
        ("1;2", 3, True, [0, 1]),
        ("1 VA 2", 3, True, [0, 1]),
        ("3,3,1", 3, True, [0, 2]),
        ("ALL", 4, True, [0, 1, 2, 3]),
        ("TAT CA", 2, True, [0, 1]),
        ("ALL", 4, False, None),
        ("1,2", 3, False, None),
        ("0", 3, True, None),
        ("4", 3, False, None),
        ("1-9", 3, True, None),
        ("99999", 3, True, None),
        ("1.5", 3, False, None),
        ("one", 3, False, None),
        ("", 3, False, None),
        ("1", 0, False, None),
        # digits and signs from other keyboards (see tests/dialogs/test_text.py)
        ("３", 3, False, [2]),
        ("٢", 3, False, [1]),
        ("１，３", 3, True, [0, 2]),
        ("1、3", 3, True, [0, 2]),
        ("1–3", 3, True, [0, 1, 2]),
        ("1 — 3", 3, True, [0, 1, 2]),
        ("1－3", 3, True, [0, 1, 2]),
        ("1 -3", 3, True, [0, 1, 2]),
        ("1- 3", 3, True, [0, 1, 2]),
        ("٣-١", 3, True, [0, 1, 2]),
        # things that look like digits are not numbers, and never crash the turn
        ("²", 3, False, None),
        ("①", 3, False, None),
        ("⑵", 3, False, None),
        ("Ⅱ", 3, False, None),
        ("1,²", 3, True, None),
        ("¹-³", 3, True, None),
        ("1-③", 3, True, None),
        ("2²", 3, False, None),
        ("9" * 40, 3, True, None),
        ("1-" + "9" * 40, 3, True, None),
        ("-1", 3, False, None),
        ("+1", 3, False, None),
        # as people say it
        ("1 DEN 3", 3, True, [0, 1, 2]),
        ("từ 1 đến 3", 3, True, [0, 1, 2]),
        ("1 to 2", 3, True, [0, 1]),
        ("1 và 3", 3, True, [0, 2]),
        ("1 & 3", 3, True, [0, 2]),
        ("hết", 3, True, [0, 1, 2]),
        ("tất cả các tài khoản", 3, True, [0, 1, 2]),
        ("toàn bộ", 3, True, [0, 1, 2]),
        ("cả hai", 2, True, [0, 1]),
        ("cả hai", 3, True, None),  # "both" of three is not all three
        ("both", 3, True, None),
        # the last digits shown on a row ("*1002") pick it, with or without the star
        ("*1002", 3, False, [1]),
        ("1002", 3, False, [1]),
        ("#1003", 3, True, [2]),
        ("1001, *1003", 3, True, [0, 2]),
        ("*1009", 3, True, None),
        ("*2", 3, False, None),
        ("002", 3, False, None),
    ],
)
def test_selections(text: str, count: int, multi: bool, expected: list[int] | None) -> None:
    options = [(i, f"key{i}", f"3-001-100{i}"[-4:]) for i in range(1, count + 1)]
    picked = parse_selection(tidy(fold(text)), options, multi)
    assert picked == (None if expected is None else [f"key{i + 1}" for i in expected])


def test_a_list_keeps_its_numbers_when_rows_are_left_out() -> None:
    """The accounts a contact is not yet on keep the numbers they have in the full list."""
    options = [(2, "b", "1002"), (3, "c", "1003")]
    assert parse_selection("3", options, False) == ["c"]
    assert parse_selection("1", options, False) is None  # account 1 is not offered here
    assert parse_selection("2-3", options, True) == ["b", "c"]
    assert parse_selection("1-3", options, True) is None
    assert parse_selection("ALL", options, True) == ["b", "c"]


def test_the_same_last_digits_on_two_rows_pick_neither() -> None:
    options = [(1, "a", "1001"), (2, "b", "1001")]
    assert parse_selection("*1001", options, False) is None


@pytest.mark.parametrize(
    ("typed", "folded"),
    [
        ("Không", "KHONG"),
        ("khong", "KHONG"),
        ("  KHONG  ", "KHONG"),
        ("tất  cả", "TAT CA"),
        ("TẤT CẢ", "TAT CA"),
        ("Đồng ý", "DONG Y"),
        ("Tiếng Việt", "TIENG VIET"),
        ("Hủy bỏ", "HUY BO"),
        ("Quay lại", "QUAY LAI"),
    ],
)
def test_folding_ignores_diacritics_case_and_spacing(typed: str, folded: str) -> None:
    assert fold(typed) == folded


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Lê   Thị\tCúc ", "Lê Thị Cúc"),
        ("Le\u0302", "Lê"),  # decomposed input is composed
        ("a\x00b", "a b"),
        ("", None),
        ("\x00\x01", None),
        ("x" * 11, None),
        ("a\u202eb", None),
    ],
)
def test_cleaning_free_text(text: str, expected: str | None) -> None:
    assert clean(text, 10) == expected


def test_the_diagram_in_the_docs_is_the_graph_as_built() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "dialogs.md").read_text(encoding="utf-8")
    assert build_engine().mermaid() in page, "run: outagebot dialogs --mermaid, and paste it into docs/dialogs.md"
