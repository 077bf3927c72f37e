"""What the value parsers accept and refuse."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialogs.engine import DialogSettings, Invalid, Session, Turn
from dialogs.fields import group_of, parse_email, parse_name, parse_phone, parse_yes_no

TURN = Turn(Session(), None, datetime.now(UTC), DialogSettings())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("(626) 555-0100", "+16265550100"),
        ("626.555.0100", "+16265550100"),
        ("+1 626 555 0100", "+16265550100"),
        ("6265550100", "+16265550100"),
        ("1-626-555-0100", "+16265550100"),
        ("(416) 555-0123", "+14165550123"),
        ("(６２６) ５５５-０１００", "+16265550100"),
        ("６２６－５５５－０１００", "+16265550100"),
        ("٦٢٦٥٥٥٠١٠٠", "+16265550100"),
        ("+١ ٤١٦ ٥٥٥ ٠١٢٣", "+14165550123"),
    ],
)
def test_phone_numbers_in_common_formats(typed: str, e164: str) -> None:
    assert parse_phone(TURN, typed) == e164


@pytest.mark.parametrize(
    "typed",
    [
        "+1 268 464 1234",  # Antigua and Barbuda: inside +1, billed as international (SMS pumping)
        "+1 876 210 1234",  # Jamaica
        "+1 473 403 1234",  # Grenada
        "+44 7911 123456",  # United Kingdom
        "+84 912 345 678",  # Viet Nam
        "+234 803 123 4567",  # Nigeria
    ],
)
def test_numbers_outside_the_allowed_regions_are_refused_with_the_reason(typed: str) -> None:
    refused = parse_phone(TURN, typed)
    assert isinstance(refused, Invalid)
    assert refused.hint.id.startswith("Alerts can go only to mobile numbers in {regions}")
    assert refused.hint.params["regions"].codes == ("US", "CA")


def test_the_allowed_regions_are_a_setting() -> None:
    vietnam = Turn(
        Session(),
        None,
        datetime.now(UTC),  # type: ignore[arg-type]
        DialogSettings(phone_regions=("US", "CA", "VN")),
    )
    assert parse_phone(vietnam, "+84 912 345 678") == "+84912345678"


@pytest.mark.parametrize(
    "typed",
    [
        "555-0100",
        "12345",
        "(800) 555-0100x",
        "+1 999 555 0100",
        "phone",
        "9" * 40,
        "(626) 555-010⁰",
        "⑥②⑥ 555 0100",
        "(626) 555-0100 ²",
        "¹ 626 555 0100",
    ],
)
def test_phone_numbers_that_are_not_mobile_numbers(typed: str) -> None:
    assert isinstance(parse_phone(TURN, typed), Invalid)


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("Nguyễn Văn An", "Nguyễn Văn An"),
        ("Mary-Jane O'Neil", "Mary-Jane O'Neil"),
        ("Dr. Lê", "Dr. Lê"),
    ],
)
def test_names(typed: str, name: str) -> None:
    assert parse_name(TURN, typed) == name


@pytest.mark.parametrize("typed", ["A", "123", "Ana 2", "王小明", "Анна", "😀 Ann", "a" * 61, "<script>"])
def test_not_names(typed: str) -> None:
    assert isinstance(parse_name(TURN, typed), Invalid)


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("An@PhoBolsa.example", "an@phobolsa.example"),
        ("n", ""),
        ("K", ""),
        ("khong", ""),
        ("-", ""),
        ("dont have one", ""),
        ("hok có", ""),
        ("lan@gmail.com.", "lan@gmail.com"),
    ],
)
def test_emails_and_skipping_them(typed: str, value: str) -> None:
    assert parse_email(TURN, typed) == value


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("y", True),
        ("Y", True),
        ("c", True),
        ("Có", True),
        ("co", True),
        ("yes", True),
        ("đồng ý", True),
        ("n", False),
        ("K", False),
        ("Không", False),
        ("khong", False),
        ("no", False),
    ],
)
def test_yes_and_no_in_both_languages(typed: str, value: bool) -> None:
    assert parse_yes_no(TURN, typed) is value


@pytest.mark.parametrize("typed", ["1", "2", "maybe", "STOP", "yess"])
def test_anything_else_is_not_an_answer_to_a_confirmation(typed: str) -> None:
    assert isinstance(parse_yes_no(TURN, typed), Invalid)


@pytest.mark.parametrize("typed", ["A012", "a 012", "nhóm A012", "A012 ạ", "dạ A012 nhé", "group a-012 please"])
def test_a_group_as_typed_with_particles_around_it(typed: str) -> None:
    assert group_of(typed) == "A012"
