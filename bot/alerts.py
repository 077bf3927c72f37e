"""What an alert says: one text per recipient, in their language, within the SMS budget.

Every alert names the utility, what is happening and when (in ``OUTAGEBOT_TIMEZONE``, through
``babel.dates``), and where: the recipient's own affected service accounts (last digits and street),
or, when those do not fit, how many there are and "reply STATUS"; a subscriber with no account reads
the outage groups instead. The operator's note follows as written, in the recipient's language when
one was given for it, else in the other. An SMS in Vietnamese (UCS-2) is kept within
:data:`SMS_SEGMENTS` ``["vi"]`` segments and one in English (GSM-7) within ``["en"]``; a Telegram
message has no such budget and lists every account.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton

from bot.channels.segments import count_segments
from bot.i18n import Catalogs
from bot.storage.alerts import Account
from dialogs.text import N_, NP_, Literal, Msg

SMS_SEGMENTS = {"vi": 3, "en": 2}  # the most segments one alert may cost, by language

TEMPLATES = {
    "advance": N_(
        "{utility}: rotating outage planned {when} for {where}. Please prepare. Reply STATUS for updates. "
        "Help: {support}"
    ),
    "started": N_("{utility}: rotating outage now, {when}, for {where}. Reply STATUS for updates. Help: {support}"),
    "restored": N_("{utility}: power is back on after the rotating outage {when} for {where}. Help: {support}"),
    "cancelled": N_(
        "{utility}: the rotating outage planned {when} for {where} is cancelled. No outage will happen. Help: {support}"
    ),
    "test": N_("{utility}: this is a test of rotating outage alerts for {where}. No action needed. Help: {support}"),
}
ACCOUNTS = NP_("service account {accounts}", "service accounts {accounts}")
ACCOUNT_COUNT = NP_("{n} of your service accounts", "{n} of your service accounts")
GROUPS = NP_("outage group {groups}", "outage groups {groups}")
GROUP_COUNT = NP_("{n} outage group", "{n} outage groups")
SAME_DAY = N_("{date}, {start}-{end}")
TWO_DAYS = N_("{start_date} {start} to {end_date} {end}")
NOTE = N_("{text}\n{note}")

# Babel's spaces and dashes that GSM-7 lacks (CLDR's narrow no-break space before "PM", thin spaces
# around ranges): as plain ones, so that an English alert stays GSM-7 and costs half as much.
_PLAIN = str.maketrans({"\u202f": " ", "\u2009": " ", "\u00a0": " ", "\u2013": "-", "\u2014": "-"})


@dataclass(frozen=True, slots=True)
class Alert:
    """The parts of an alert every recipient's text shares."""

    kind: str
    starts_at: datetime
    ends_at: datetime
    note_en: str | None = None
    note_vi: str | None = None

    def note(self, locale: str) -> str | None:
        """The operator's note in ``locale``, else in the other language, else none."""
        first, second = (self.note_vi, self.note_en) if locale == "vi" else (self.note_en, self.note_vi)
        return first or second or None


@dataclass(frozen=True, slots=True)
class Texts:
    """How an alert renders: the text of every recipient is built from these."""

    catalogs: Catalogs
    zone: ZoneInfo
    utility: str
    support: str

    def when(self, alert: Alert, locale: str, *, short: bool = False) -> str:
        return _when(self, alert, locale, short)

    def _when(self, alert: Alert, locale: str, short: bool) -> str:
        """The window in the recipient's language: "Sat, Nov 28, 2:00 PM-4:00 PM" or over two days
        (``short``: months abbreviated in Vietnamese too, "thg 11", where the full word does not fit)."""
        babel = "en_US" if locale == "en" else locale
        start, end = alert.starts_at.astimezone(self.zone), alert.ends_at.astimezone(self.zone)
        clock = "hm" if locale == "en" else "Hm"

        # "Thứ 7, 28 tháng 11" in full: the short "thg" is not plain to every reader
        days = "MMMEd" if locale == "en" or short else "MMMMEd"

        def day(moment: datetime) -> Literal:
            return Literal(format_skeleton(days, moment, locale=babel).translate(_PLAIN))

        def time(moment: datetime) -> Literal:
            return Literal(format_skeleton(clock, moment, locale=babel).translate(_PLAIN))

        if start.date() == end.date():
            msg = Msg.of(SAME_DAY, date=day(start), start=time(start), end=time(end))
        else:
            msg = Msg.of(TWO_DAYS, start_date=day(start), start=time(start), end_date=day(end), end=time(end))
        return self.catalogs.render(msg, locale)

    def render(
        self,
        alert: Alert,
        locale: str,
        accounts: Sequence[Account],
        groups: Sequence[str],
        *,
        budget: int | None,
    ) -> str:
        """One recipient's text. ``budget``: the SMS segments it may cost (None on Telegram).

        The accounts (or groups) are named when they fit the budget, else counted; the operator's note is
        never cut (the operator saw its cost before sending).
        """
        wheres: list[Msg] = []
        if accounts:
            named = "; ".join(f"*{a.number[-4:]} {_street(a.address)}" for a in accounts)
            wheres.append(Msg.count(ACCOUNTS, len(accounts), accounts=Literal(named)))
            wheres.append(Msg.count(ACCOUNT_COUNT, len(accounts)))
        else:
            wheres.append(Msg.count(GROUPS, len(groups), groups=Literal(", ".join(groups))))
            wheres.append(Msg.count(GROUP_COUNT, len(groups)))
        text = ""
        for short in (False, True):
            for where in wheres:
                text = self._text(alert, locale, where, short)
                if budget is None or count_segments(text).count <= budget:
                    return text
        return text

    def _text(self, alert: Alert, locale: str, where: Msg, short: bool) -> str:
        body = Msg.of(
            TEMPLATES[alert.kind],
            utility=Literal(self.utility),
            when=Literal(self.when(alert, locale, short=short)),
            where=where,
            support=Literal(self.support),
        )
        note = alert.note(locale)
        if note:
            body = Msg.of(NOTE, text=body, note=Literal(note))
        return self.catalogs.render(body, locale)


@functools.lru_cache(maxsize=256)
def _when(texts: Texts, alert: Alert, locale: str, short: bool) -> str:
    """The window as text, once per alert and language (a batch of a thousand shares it)."""
    return texts._when(alert, locale, short)


def _street(address: str) -> str:
    """The street of a service address, short: its first 24 characters, cut at a word."""
    if len(address) <= 24:
        return address
    cut = address[:24].rsplit(" ", 1)[0]
    return cut or address[:24]
