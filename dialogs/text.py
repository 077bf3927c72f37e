"""Messages as data: catalog ids with parameters, and the folding of what customers type.

Dialogs never hold user-facing text. They name a catalog message (its English source text, marked
with :func:`N_` so Babel extracts it) and the parameters to fill in; the channel renders it in the
session's language. Parameters may themselves be :class:`Msg` (rendered in the same language).
"""

from __future__ import annotations

import typing
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def N_(message: str) -> str:
    """Mark a string for extraction without translating it (it is translated when rendered)."""
    return message


def NP_(singular: str, plural: str) -> tuple[str, str]:
    """Mark a singular/plural pair for extraction; rendered with ``ngettext``."""
    return singular, plural


@dataclass(frozen=True, slots=True)
class Msg:
    """One catalog message with its parameters.

    Attributes:
        id: the msgid (English source text) in the catalogs.
        params: values for the ``{name}`` placeholders; a value may be another ``Msg``.
        plural: the plural msgid when the message depends on ``n``.
        n: the count that picks the plural form.
        locale: render in this language whatever the session's (a language's own name).
    """

    id: str
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    plural: str | None = None
    n: int = 1
    locale: str | None = None

    @classmethod
    def of(cls, msgid: str, **params: Any) -> Msg:
        """Build a message from its id and keyword parameters."""
        return cls(msgid, MappingProxyType(params) if params else _EMPTY)

    @classmethod
    def native(cls, msgid: str, locale: str) -> Msg:
        """A message always shown in ``locale`` (e.g. "Tiếng Việt" in an English menu)."""
        return cls(msgid, _EMPTY, locale=locale)

    @classmethod
    def count(cls, forms: tuple[str, str], n: int, **params: Any) -> Msg:
        """Build a plural message; ``n`` is also available as ``{n}``."""
        return cls(forms[0], MappingProxyType({"n": n, **params}), forms[1], n)


@dataclass(frozen=True, slots=True)
class Literal:
    """Text that is data, not prose (a name, a phone number): shown as is, never translated."""

    text: str


@dataclass(frozen=True, slots=True)
class Regions:
    """Countries or territories (ISO 3166 codes), shown by their names in the reader's language."""

    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Listed:
    """Several items shown as one list in the reader's language: "a, b, and c", "a, b và c"."""

    items: tuple[Msg | Literal, ...]
    style: typing.Literal["standard", "or"] = "standard"  # babel's list styles: "a, b, and c" or "a, b, or c"


@dataclass(frozen=True, slots=True)
class Window:
    """A time window (aware UTC datetimes), shown in the reader's language and the utility's zone."""

    start: datetime
    end: datetime


_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# the signs of a list or a range as other keyboards type them: commas, semicolons, dashes and minus signs
_LIST_SIGNS = {**dict.fromkeys("，、،﹐﹑", ","), **dict.fromkeys("；؛﹔", ";"), **dict.fromkeys("‐‑‒–—―−－﹘﹣", "-")}
_FOLD_EXTRA = str.maketrans({"đ": "d", "Đ": "D", "ð": "d", "ł": "l", **_LIST_SIGNS})


def fold_digits(text: str) -> str:
    """``text`` with every decimal digit of any script as its ASCII digit (``"４٢"`` -> ``"42"``).

    Decimal digits (Unicode category Nd) are what phone keyboards type in other scripts: full-width,
    Arabic-Indic, Persian, Devanagari... Characters that only look like digits (``²``, ``①``, ``Ⅳ``,
    ``½``) are not decimal digits and are left as they are, so an ASCII-only check refuses them.
    """
    if text.isascii():
        return text
    return "".join(ch if ch.isascii() or not ch.isdecimal() else str(unicodedata.decimal(ch)) for ch in text)


def has_lookalike_digits(text: str) -> bool:
    """Whether ``text`` has a number sign that is not a decimal digit (``²``, ``①``, ``½``, ``Ⅳ``, ``六``).

    Parsers that skip what they do not understand (``phonenumbers`` drops a leading ``¹``) check this
    first, so that such a sign makes the whole answer invalid instead of being read as something else.
    """
    return any(ch.isnumeric() and not ch.isdecimal() for ch in text)


def fold(text: str) -> str:
    """Fold what a customer typed for matching: no diacritics, upper case, single spaces.

    ``"  Không "``, ``"khong"`` and ``"KHONG"`` all fold to ``"KHONG"``; ``"tất  cả"`` to ``"TAT CA"``.
    Digits of any script become ASCII digits (:func:`fold_digits`), and the commas, semicolons and
    dashes of other keyboards become ``,``, ``;`` and ``-``, so ``"１，３"`` folds to ``"1,3"``.
    """
    return " ".join(_without_marks(fold_digits(text).translate(_FOLD_EXTRA)).upper().split())


def _without_marks(text: str) -> str:
    """``text`` decomposed (NFD) and without its combining marks."""
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


_PLAIN_SIGNS = str.maketrans(
    {"đ": "d", "Đ": "D", "’": "'", "‘": "'", "“": '"', "”": '"', "—": "-", "–": "-", "…": "...", "\u00a0": " "}
)


def unmarked(text: str) -> str:
    """``text`` without diacritics, its case kept (``"Phở Bolsa"`` -> ``"Pho Bolsa"``): a name shown
    in an English SMS where its marks would make the whole message UCS-2 and past its budget."""
    return unicodedata.normalize("NFC", _without_marks(text.translate(_PLAIN_SIGNS)))


def clean(text: str, limit: int) -> str | None:
    """Normalize free text typed by a customer, or ``None`` when it cannot be used.

    Control and format characters are dropped, white space is collapsed, Unicode is NFC. Text longer
    than ``limit`` after cleaning is refused rather than cut, so nothing is stored half-typed, and so is
    text with bidirectional overrides (it can show one thing and mean another).
    """
    if any(ch in _BIDI for ch in text):
        return None
    kept = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in unicodedata.normalize("NFC", text))
    cleaned = " ".join(kept.split())
    if not cleaned or len(cleaned) > limit:
        return None
    return cleaned


# Politeness particles and fillers around an answer ("có ạ", "dạ không", "ok nhé"), as folded words:
# dropped before a short answer is matched, never from free text that is stored.
_TRAILING_PARTICLES = frozenset(
    {"A", "AH", "NHE", "NHA", "NHI", "NGHEN", "PLEASE", "PLS", "THANKS", "THANK YOU", "CAM ON", "LUON", "EM"}
)
_LEADING_PARTICLES = frozenset({"DA", "VANG", "UM", "UH", "OH", "WELL"})
_END_PUNCTUATION = ".!,;:~"


def trimmed(text: str) -> str:
    """``text`` as typed, without the particles :func:`tidy` drops around an answer ("482913 ạ",
    "dạ 700000001", "A012 nhé"): for answers that are kept as typed (a code, a number, a group)."""
    words = text.split()
    start, end = _answer_span([fold(word).rstrip(_END_PUNCTUATION) for word in words])
    return " ".join(words[start:end]).rstrip(_END_PUNCTUATION) if end - start < len(words) else text


def _answer_span(words: list[str]) -> tuple[int, int]:
    """Where the answer is among folded ``words``: without the particles before and after it (a lone
    particle stays: "DA" and "VANG" are answers themselves)."""
    start, end = 0, len(words)
    while end - start > 1 and (
        words[end - 1] in _TRAILING_PARTICLES or " ".join(words[end - 2 : end]) in _TRAILING_PARTICLES
    ):
        end -= 2 if " ".join(words[end - 2 : end]) in _TRAILING_PARTICLES and end - start > 2 else 1
    while end - start > 1 and words[start] in _LEADING_PARTICLES:
        start += 1
    return start, end


def tidy(folded: str) -> str:
    """A folded answer without the particles and end punctuation people add to it.

    ``"CO A"`` (có ạ) becomes ``"CO"``, ``"DA KHONG"`` (dạ không) ``"KHONG"``, ``"OK NHE!"`` ``"OK"``.
    A lone particle stays (``"DA"`` and ``"VANG"`` are answers themselves), and so does ``"?"``.
    """
    words = [word.rstrip(",") for word in folded.rstrip(_END_PUNCTUATION).split()]
    words = [word for word in words if word]
    start, end = _answer_span(words)
    return " ".join(words[start:end])
