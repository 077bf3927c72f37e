"""How many SMS segments a text costs: GSM-7 (basic table + extension table) or UCS-2.

GSM-7: 160 characters in one segment, 153 per segment when split; extension-table characters
(``^{}\\[~]|€`` and form feed) take two. Anything outside GSM-7 (every Vietnamese letter with a diacritic)
makes the whole message UCS-2: 70 in one segment, 67 when split, characters outside the BMP counting
as two UTF-16 units.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True, slots=True)
class Segments:
    """The encoding a text needs, its length in that encoding's units, and its segment count."""

    encoding: str
    units: int
    count: int


def count_segments(text: str) -> Segments:
    """Segments for ``text`` as a carrier counts them."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, multi = 160, 153
        encoding = "GSM-7"
    else:
        units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)
        single, multi = 70, 67
        encoding = "UCS-2"
    count = 1 if units <= single else -(-units // multi)
    return Segments(encoding, units, count)
