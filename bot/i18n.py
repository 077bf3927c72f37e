"""Catalogs, rendering of dialog messages, dates and times.

The ``.po`` files under ``locales/`` are the source of truth. They are compiled in memory when the
service starts (Babel's ``write_mo`` into a buffer), so a translation can never be stale: there is
no ``.mo`` file on disk to forget to rebuild. A built wheel carries them inside the package
(``bot/locales/``, copied there by ``setup.py``) and they are read with ``importlib.resources``; a
source checkout or an editable install reads the repository's ``locales/``.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime, format_interval, format_skeleton
from babel.lists import format_list
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from dialogs.engine import LOCALES
from dialogs.text import Listed, Literal, Msg, Regions, Window, fold


def _locale_dir() -> Traversable:
    packaged = resources.files("bot").joinpath("locales")
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "locales"


LOCALE_DIR = _locale_dir()
DOMAIN = "messages"

__all__ = ["LOCALES", "OP", "OPN", "Catalogs", "fold", "format_when", "format_window", "load_catalog"]
DEFAULT_ZONE = ZoneInfo("America/Los_Angeles")  # Settings.timezone's default


def OP(message: str, **params: Any) -> Msg:
    """A message for the utility's operators (the CLI), in the catalogs like every other text.

    Its own extraction keyword lets the tests tell operator text (terminal only) from customer text
    (which must fit the SMS budget).
    """
    return Msg.of(message, **params)


def OPN(singular: str, plural: str, n: int, **params: Any) -> Msg:
    """An operator message with a singular and a plural form, picked by ``n`` (also ``{n}``)."""
    return Msg.count((singular, plural), n, **params)


def load_catalog(locale: str, locale_dir: Traversable = LOCALE_DIR) -> Catalog:
    """Read one language's ``.po`` file."""
    with locale_dir.joinpath(locale).joinpath("LC_MESSAGES").joinpath(f"{DOMAIN}.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def _compile(catalog: Catalog) -> gettext.GNUTranslations:
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class Catalogs:
    """Every language's translations, and the rendering of :class:`Msg` into text."""

    def __init__(
        self, locale_dir: Traversable = LOCALE_DIR, locales: Iterable[str] = LOCALES, zone: ZoneInfo = DEFAULT_ZONE
    ) -> None:
        self.zone = zone  # the utility's: times (:class:`~dialogs.text.Window`) are shown in it
        self.catalogs = {loc: load_catalog(loc, locale_dir) for loc in locales}
        self.translations = {loc: _compile(cat) for loc, cat in self.catalogs.items()}

    def has(self, msgid: str) -> bool:
        """Whether every language has a non-empty, non-fuzzy translation of ``msgid``."""
        for catalog in self.catalogs.values():
            message = catalog.get(msgid)
            if message is None or message.fuzzy:
                return False
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if not all(strings):
                return False
        return True

    def render(self, msg: Msg | Literal | str, locale: str) -> str:
        """The text of ``msg`` in ``locale`` (or the message's own locale), parameters filled in."""
        if isinstance(msg, Literal):
            return msg.text
        if isinstance(msg, str):
            return msg
        loc = msg.locale or locale
        tr = self.translations.get(loc) or self.translations["en"]
        template = tr.ngettext(msg.id, msg.plural, msg.n) if msg.plural else tr.gettext(msg.id)
        if not msg.params:
            return template
        return template.format_map(_Params(self, msg.params, loc))

    def everywhere(self, msg: Msg | Literal) -> list[str]:
        """``msg`` rendered in every language (a menu understands its labels in either)."""
        return [self.render(msg, locale) for locale in self.translations]

    def render_all(self, messages: Iterable[Msg], locale: str) -> list[str]:
        """Render several messages."""
        return [self.render(m, locale) for m in messages]


class _Params(dict[str, str]):
    """Renders parameter values lazily: messages in the same locale, lists joined with commas."""

    def __init__(self, catalogs: Catalogs, params: Mapping[str, Any], locale: str) -> None:
        super().__init__()
        self._catalogs, self._params, self._locale = catalogs, params, locale

    def __missing__(self, key: str) -> str:
        value = self._params[key]
        if isinstance(value, Msg | Literal):
            return self._catalogs.render(value, self._locale)
        if isinstance(value, Regions):
            babel_locale = _babel_locale(self._locale)
            names = Locale.parse(babel_locale).territories
            return format_list([names.get(code, code) for code in value.codes], locale=babel_locale)
        if isinstance(value, Window):
            return format_window(value.start, value.end, self._locale, self._catalogs.zone)
        if isinstance(value, Listed):
            rendered = [self._catalogs.render(v, self._locale) for v in value.items]
            return format_list(rendered, style=value.style, locale=_babel_locale(self._locale)) if rendered else ""
        if isinstance(value, list | tuple):
            return ", ".join(self._catalogs.render(v, self._locale) for v in value)
        return str(value)


@lru_cache(maxsize=8)
def _babel_locale(locale: str) -> str:
    return "en_US" if locale == "en" else locale


def format_when(when: datetime, locale: str, zone: ZoneInfo, form: str = "short") -> str:
    """A UTC datetime as people in the utility's zone read it (``babel.dates``)."""
    return format_datetime(when, form, tzinfo=zone, locale=_babel_locale(locale))


# Babel's narrow and thin spaces and its en dash are outside GSM-7: one of them makes an English SMS
# cost as much as a Vietnamese one (70 characters a segment instead of 160)
_GSM_SAFE = str.maketrans({"\u202f": " ", "\u2009": " ", "\u00a0": " ", "\u2013": "-"})


def format_window(start: datetime, end: datetime, locale: str, zone: ZoneInfo) -> str:
    """A time window in the utility's zone, one form for every message: the day (skeleton ``MMMEd``)
    and the hours, "Fri, Nov 27, 2:00 - 6:00 PM" / "Thứ 6, 27 thg 11, 14:00-18:00"; a window over
    midnight names both days. Only GSM-7 characters besides the language's own letters."""
    loc = _babel_locale(locale)
    hours = "Hm" if locale == "vi" else "hm"
    first, last = start.astimezone(zone), end.astimezone(zone)
    day = format_skeleton("MMMEd", first, locale=loc)
    if first.date() == last.date():
        text = f"{day}, {format_interval(first, last, hours, tzinfo=zone, locale=loc)}"
    else:
        time = "HH:mm" if locale == "vi" else "h:mm a"
        other = format_skeleton("MMMEd", last, locale=loc)
        text = (
            f"{day}, {format_datetime(first, time, tzinfo=zone, locale=loc)} - "
            f"{other}, {format_datetime(last, time, tzinfo=zone, locale=loc)}"
        )
    return " ".join(text.translate(_GSM_SAFE).split())
