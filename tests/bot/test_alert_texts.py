"""What an alert says: every kind, in both languages, names the utility and fits its SMS budget."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.alerts import SMS_SEGMENTS, TEMPLATES, Alert, Texts
from bot.channels.segments import count_segments
from bot.i18n import Catalogs
from bot.storage.alerts import KINDS, Account

TEXTS = Texts(Catalogs(), ZoneInfo("America/Los_Angeles"), "SCE", "1-800-990-7788")
LONGEST = Texts(Catalogs(), ZoneInfo("America/Los_Angeles"), "Southern Calif. Edison", "1-800-990-7788")  # 24 max
START = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)  # 2:00 PM in Los Angeles
END = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
# Service accounts as a CIS names them, the longest streets the bot shortens to 24 characters.
ACCOUNTS = [
    Account("3-001-1001", "9200 Bolsa Ave Westminster"),
    Account("3-001-1002", "15400 Brookhurst St Westminster"),
    Account("3-001-1003", "10130 Westminster Ave Garden Grove"),
    Account("3-002-2001", "120 E Main St Alhambra"),
    Account("3-002-2002", "88 W Huntington Dr Arcadia"),
] * 4


def test_every_kind_has_a_template() -> None:
    assert set(TEMPLATES) == set(KINDS)


OVERNIGHT = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)  # 5:00 AM the next day: two dates to read
TWO_DAYS = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # longer than any rotating outage, still within budget


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("locale", ["vi", "en"])
@pytest.mark.parametrize("accounts", [1, 2, 3, 5, 20])
@pytest.mark.parametrize("end", [END, OVERNIGHT, TWO_DAYS])
def test_an_sms_alert_fits_its_budget_and_names_the_utility(
    kind: str, locale: str, accounts: int, end: datetime
) -> None:
    text = LONGEST.render(Alert(kind, START, end), locale, ACCOUNTS[:accounts], [], budget=SMS_SEGMENTS[locale])
    segments = count_segments(text)
    assert segments.count <= SMS_SEGMENTS[locale], text
    assert text.startswith("Southern Calif. Edison: ") and "1-800-990-7788" in text
    if locale == "en":
        assert segments.encoding == "GSM-7", text  # no Unicode dash or space from Babel doubles its cost
    assert ("*1001" in text) or (f"{accounts} " in text), text  # the account named, or counted
    groups = LONGEST.render(Alert(kind, START, end), locale, [], ["A012", "B007", "C104"], budget=SMS_SEGMENTS[locale])
    assert count_segments(groups).count <= SMS_SEGMENTS[locale], groups


def test_accounts_are_named_while_they_fit_and_counted_after() -> None:
    one = TEXTS.render(Alert("advance", START, END), "en", ACCOUNTS[:1], [], budget=2)
    many = TEXTS.render(Alert("advance", START, END), "en", ACCOUNTS[:8], [], budget=2)
    assert "service account *1001 9200 Bolsa Ave" in one
    assert "8 of your service accounts" in many and "*1001" not in many
    assert "Reply STATUS" in many


def test_telegram_has_no_budget_and_names_every_account() -> None:
    text = TEXTS.render(Alert("advance", START, END), "vi", ACCOUNTS[:5], [], budget=None)
    assert all(f"*{a.number[-4:]}" in text for a in ACCOUNTS[:5])


def test_the_window_is_in_the_utility_zone_in_each_language() -> None:
    alert = Alert("advance", START, END)
    assert TEXTS.when(alert, "en") == "Sat, Nov 28, 2:00 PM-4:00 PM"
    assert TEXTS.when(alert, "vi") == "14:00-16:00 Thứ 7, 28 tháng 11"
    overnight = Alert("advance", START, datetime(2026, 11, 29, 18, 0, tzinfo=UTC))
    assert TEXTS.when(overnight, "en") == "Sat, Nov 28 2:00 PM to Sun, Nov 29 10:00 AM"


def test_a_subscriber_reads_the_groups() -> None:
    text = TEXTS.render(Alert("started", START, END), "vi", [], ["A012"], budget=3)
    assert "nhóm cắt điện luân phiên A012" in text


def test_the_note_is_shown_as_written_in_the_readers_language_else_the_other() -> None:
    both = Alert("advance", START, END, note_en="Bring ice.", note_vi="Mang theo đá.")
    english_only = Alert("advance", START, END, note_en="Bring ice.")
    assert TEXTS.render(both, "vi", ACCOUNTS[:1], [], budget=3).endswith("\nMang theo đá.")
    assert TEXTS.render(both, "en", ACCOUNTS[:1], [], budget=2).endswith("\nBring ice.")
    assert TEXTS.render(english_only, "vi", ACCOUNTS[:1], [], budget=3).endswith("\nBring ice.")
