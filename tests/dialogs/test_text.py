"""What counts as a digit: a decimal digit of any script counts, and is read as its ASCII digit.

People type numbers on phones set to other scripts: full-width digits from Chinese and Japanese
keyboards, Arabic-Indic and Persian digits, Devanagari. Those are digits (Unicode category Nd) and count
everywhere a number is typed: menu numbers, lists, account numbers, access codes, phone numbers.
Characters that merely look like digits (superscripts, circled or parenthesized numbers, fractions,
Roman numerals) are not digits: they are refused with the usual hint, never half-read.
"""

from __future__ import annotations

import pytest

from dialogs.text import fold, fold_digits


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("482913", "482913"),
        ("４８２９１３", "482913"),  # full-width
        ("٤٨٢٩١٣", "482913"),  # Arabic-Indic
        ("۴۸۲۹۱۳", "482913"),  # Extended Arabic-Indic (Persian, Urdu)
        ("४८२९१३", "482913"),  # Devanagari
        ("𝟒𝟖𝟐𝟗𝟏𝟑", "482913"),  # mathematical bold (still decimal digits)
        ("４8٢9१3", "482913"),  # mixed scripts
        ("aB-４", "aB-4"),  # only digits change: letters and signs are left alone
        ("²³¹", "²³¹"),  # superscripts are not decimal digits
        ("①⑵⒊", "①⑵⒊"),  # circled, parenthesized, with full stop
        ("½Ⅳⅳ", "½Ⅳⅳ"),  # fractions and Roman numerals
    ],
)
def test_decimal_digits_of_every_script_become_ascii_digits(typed: str, expected: str) -> None:
    assert fold_digits(typed) == expected


@pytest.mark.parametrize(
    ("typed", "folded"),
    [
        ("１，３", "1,3"),
        ("1、3", "1,3"),
        ("1،3", "1,3"),
        ("1﹐3", "1,3"),  # commas of other scripts
        ("1；3", "1;3"),
        ("1؛3", "1;3"),  # semicolons
        ("1–3", "1-3"),
        ("1—3", "1-3"),
        ("1－3", "1-3"),
        ("1‐3", "1-3"),
        ("1‑3", "1-3"),
        ("1−3", "1-3"),  # dashes
        ("٠", "0"),
        ("０", "0"),
        ("²", "²"),
        ("①", "①"),
        ("tất　cả", "TAT CA"),  # an ideographic space is a space
    ],
)
def test_folding_reads_digits_and_list_signs_of_other_keyboards_as_ascii(typed: str, folded: str) -> None:
    assert fold(typed) == folded
