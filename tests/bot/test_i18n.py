"""The catalogs: complete, in step with the code, polite, and within the SMS segment budget."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo

from bot import alerts as alert_texts
from bot.channels import buttons
from bot.channels import telegram as telegram_channel
from bot.channels.base import render_text
from bot.channels.segments import count_segments
from bot.i18n import Catalogs, format_when, load_catalog
from bot.outbox import NOTICE
from dialogs.engine import Choice, Reply, Session, Turn
from dialogs.graph import build_engine
from dialogs.text import Literal, Msg
from tests.conftest import ROOT

CATALOGS = Catalogs()
KEYWORDS = {"_": None, "N_": None, "OP": None, "OPN": (1, 2), "gettext": None, "ngettext": (1, 2), "NP_": (1, 2)}
PLACEHOLDER = re.compile(r"\{(\w+)\}")
LONG_PARAMS = {  # the longest realistic values, so that budgets hold for real data
    "support": Literal("1-800-990-7788"),
    "name": Literal("Nguyễn Thị Minh Khai"),
    "minutes": 15,
    "phone": Literal("(626) 555-0100"),
    "n": 12,
    "last4": Literal("1001"),
    "group": Literal("A012"),
    "email": Literal("an@phobolsa.example"),
    "first": Literal(""),
    "second": Literal(""),
    "utility": Literal("Southern Calif. Edison"),  # OUTAGEBOT_UTILITY_NAME: at most 24 characters
    "language": Literal("bằng tiếng Việt"),
    "old": Literal("an@phobolsa.example"),
    "new": Literal("lan.nguyen@phobolsa.example"),
    "field": Literal("số di động"),
    "page": 10,
    "pages": 25,
    "contact": Literal("Nguyễn Thị Minh Khai, (626) 555-0100"),
    "accounts": Literal("*1001, *1002, *1003"),
}


def code_messages(keywords: dict[str, object] = KEYWORDS) -> set[str | tuple[str, str]]:
    found: set[str | tuple[str, str]] = set()
    for folder in ("bot", "dialogs"):
        for _file, _line, message, _comments, _ctx in extract_from_dir(
            ROOT / folder, keywords=keywords, comment_tags=()
        ):
            found.add(message if isinstance(message, str) else tuple(message))  # type: ignore[arg-type]
    return found


OPERATOR = code_messages({"OP": None, "OPN": (1, 2)})  # the CLI's reports: terminal only, never sent by SMS
OUTBOUND = {NOTICE[0]}
# An alert's pieces are fitted together by bot.alerts (named accounts, else a count) within their own
# budgets (3 UCS-2 segments in Vietnamese, 2 GSM-7 in English): tests/bot/test_alert_texts.py checks them.
ALERT_PIECES = {
    *alert_texts.TEMPLATES.values(),
    *(
        forms[0]
        for forms in (alert_texts.ACCOUNTS, alert_texts.ACCOUNT_COUNT, alert_texts.GROUPS, alert_texts.GROUP_COUNT)
    ),
    alert_texts.SAME_DAY,
    alert_texts.TWO_DAYS,
    alert_texts.NOTE,
}
# Telegram's own words (buttons, command menus, phone linking, notes on a deleted code): never sent by
# SMS, so neither its segment budget nor its reserved words apply to them
TELEGRAM = code_messages({"N_": None}) & {
    *(value for name, value in vars(telegram_channel).items() if name.isupper() and isinstance(value, str)),
    *(about for _, about, _ in telegram_channel.COMMANDS),
    buttons.PASSED,
    buttons.NOTHING_PICKED,
}


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_every_entry_is_translated_and_none_is_fuzzy(locale: str) -> None:
    catalog = load_catalog(locale)
    bad = [
        m.id for m in catalog if m.id and (m.fuzzy or not all(m.string if isinstance(m.string, tuple) else (m.string,)))
    ]
    assert bad == []


def test_every_message_used_in_code_is_in_both_catalogs() -> None:
    used = code_messages()
    assert len(used) > 80
    for locale in ("vi", "en"):
        ids = {m.id if isinstance(m.id, str) else tuple(m.id) for m in load_catalog(locale) if m.id}
        assert sorted(map(str, used - ids)) == [], locale


def test_no_catalog_entry_is_left_over_from_deleted_code() -> None:
    used = code_messages()
    ids = {m.id if isinstance(m.id, str) else tuple(m.id) for m in load_catalog("vi") if m.id}
    assert sorted(map(str, ids - used)) == []


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_translations_keep_the_placeholders(locale: str) -> None:
    for message in load_catalog(locale):
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[-1]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == set(PLACEHOLDER.findall(source)), message.id


def test_vietnamese_is_polite_and_has_its_diacritics() -> None:
    catalog = load_catalog("vi")
    strings = [m.string if isinstance(m.string, str) else m.string[0] for m in catalog if m.id]
    assert not any(re.search(r"\b(bạn|mày|anh|chị|em)\b", s) for s in strings if "Tiếng Anh" not in s)
    assert sum("quý khách" in s.lower() for s in strings) >= 10
    # words a Vietnamese reader expects with marks must never appear without them
    bare = re.compile(r"\b(khong|tai khoan|lien lac|dich vu|xac minh|canh bao|dien)\b", re.IGNORECASE)
    assert [s for s in strings if bare.search(s)] == []


def test_glossary_terms_are_the_utilitys_own_words() -> None:
    catalog = load_catalog("vi")
    text = " ".join(m.string if isinstance(m.string, str) else m.string[0] for m in catalog if m.id)
    for term in (
        "Số Tài Khoản Khách Hàng",
        "mã số truy cập",
        "tài khoản dịch vụ",
        "người liên lạc",
        "cắt điện luân phiên",
        "Trạm Làm Mát",
        "bệnh trạng",
        "đại diện tài khoản",
        "Hỗ Trợ Khách Hàng",
        "TẤT CẢ",
    ):
        assert term.lower() in text.lower(), term


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_every_message_fits_two_sms_segments(locale: str) -> None:
    """Each customer message, filled with long realistic values, is at most 2 segments (134 UCS-2)."""
    assert len(OPERATOR) > 20
    over = []
    for message in load_catalog(locale):
        if not message.id or message.id in OPERATOR or message.id in TELEGRAM:
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        if msgid in ALERT_PIECES:
            continue
        plural = None if isinstance(message.id, str) else message.id[1]
        params = {k: v for k, v in LONG_PARAMS.items() if "{" + k + "}" in str(message.id)}
        for key in PLACEHOLDER.findall(str(message.id)):
            params.setdefault(key, Literal("*1001, *1002"))
        text = CATALOGS.render(Msg(msgid, params, plural, 2), locale)
        budget = 3 if msgid in OUTBOUND else 2  # notices we send on our own count like alerts
        if count_segments(text).count > budget:
            over.append((count_segments(text).units, text))
    assert over == []


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_every_fixed_menu_with_its_choices_fits_two_segments(locale: str) -> None:
    engine = build_engine()
    session = Session(locale=locale, customer_id=1)
    turn = Turn(session, None, datetime.now(UTC), engine.settings)  # type: ignore[arg-type]
    fixed = [s for s in engine.states.values() if s.choices or s.name == "menu"]
    assert len(fixed) >= 6
    for state in fixed:
        choices = tuple(state.options(turn)) if state.options else state.choices
        params = {k: LONG_PARAMS.get(k, Literal("x")) for k in PLACEHOLDER.findall(state.prompt)}
        if state.params and state.name == "start.language":
            params = dict(state.params(turn))
        reply = Reply((Msg.of(state.prompt, **params),), choices, False, locale, state.name)
        text = render_text(reply, CATALOGS)[-1]
        assert count_segments(text).count <= 2, (state.name, len(text), text)


def test_segment_counter_knows_gsm7_and_ucs2() -> None:
    assert count_segments("a" * 160).count == 1 and count_segments("a" * 161).count == 2
    assert count_segments("{" * 80).units == 160
    assert count_segments("ệ" * 70).count == 1 and count_segments("ệ" * 71).count == 2
    assert count_segments("ệ" * 134).count == 2 and count_segments("ệ" * 135).count == 3
    assert count_segments("Xin chào").encoding == "GSM-7"
    assert count_segments("Xin chào quý khách").encoding == "UCS-2"


def test_a_language_name_is_shown_in_its_own_language() -> None:
    assert CATALOGS.render(Msg.native("Vietnamese", "vi"), "en") == "Tiếng Việt"
    assert CATALOGS.render(Msg.native("English", "en"), "vi") == "English"
    assert CATALOGS.render(Msg.of("English"), "vi") == "Tiếng Anh"


def test_plurals_follow_each_language() -> None:
    forms = ("ALL {n} service account", "ALL {n} service accounts")
    assert CATALOGS.render(Msg.count(forms, 1), "en") == "ALL 1 service account"
    assert CATALOGS.render(Msg.count(forms, 3), "en") == "ALL 3 service accounts"
    assert CATALOGS.render(Msg.count(forms, 3), "vi") == "TẤT CẢ 3 tài khoản dịch vụ"


def test_choice_labels_render_as_a_numbered_list() -> None:
    reply = Reply(
        (Msg.of("Main menu:"),),
        (Choice("a", Msg.of("Cooling Centers")), Choice("b", Msg.of("Sign out"))),
        False,
        "vi",
        "menu",
    )
    assert render_text(reply, CATALOGS) == ["Menu chính:\n1 Trạm Làm Mát\n2 Đăng xuất"]


def test_a_page_of_a_long_list_keeps_its_numbers_and_says_how_to_see_more() -> None:
    reply = Reply(
        (Msg.of("Which contacts? Example: 1 2 or ALL"),),
        (Choice("e", Literal("*1005 88 W Main St"), number=5), Choice("f", Literal("*1006 9 Elm St"), number=6)),
        True,
        "vi",
        "all.contacts",
        Msg.of("MORE: see more ({page}/{pages})", page=2, pages=3),
    )
    assert render_text(reply, CATALOGS) == [
        "Xin chọn người. Ví dụ: 1 2 hoặc TẤT CẢ\n5 *1005 88 W Main St\n6 *1006 9 Elm St\nTIẾP: xem thêm (2/3)"
    ]


@pytest.mark.parametrize(("locale", "expected"), [("vi", "14:00 27/11/26"), ("en", "11/27/26, 2:00\u202fPM")])
def test_times_are_shown_in_the_utilitys_zone(locale: str, expected: str) -> None:
    when = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
    assert format_when(when, locale, ZoneInfo("America/Los_Angeles")) == expected


@pytest.mark.parametrize(("locale", "edited"), [("vi", "Xin bấm 1 hoặc 2."), ("en", "Please press 1 or 2.")])
def test_an_edited_po_file_is_what_customers_read_with_no_compile_step(
    tmp_path: Path, locale: str, edited: str
) -> None:
    """The .po files are the source of truth: an edit is seen as is, and a stale .mo beside it is not."""
    shutil.copytree(ROOT / "locales", tmp_path / "locales")
    po = tmp_path / "locales" / locale / "LC_MESSAGES" / "messages.po"
    original = CATALOGS.render(Msg.of("Please type 1 or 2."), locale)
    stale = po.with_suffix(".mo")
    with stale.open("wb") as fh:  # what a compile step would have left from before the edit
        write_mo(fh, load_catalog(locale, tmp_path / "locales"))
    text = po.read_text(encoding="utf-8")
    assert text.count(f'msgstr "{original}"') == 1
    po.write_text(text.replace(f'msgstr "{original}"', f'msgstr "{edited}"'), encoding="utf-8")
    assert Catalogs(tmp_path / "locales").render(Msg.of("Please type 1 or 2."), locale) == edited
    assert CATALOGS.render(Msg.of("Please type 1 or 2."), locale) == original


RESERVED = {
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "START",
    "YES",
    "UNSTOP",
    "HELP",
    "INFO",
}


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_no_message_asks_for_a_word_that_carriers_reserve_on_sms(locale: str) -> None:
    """Twilio acts on these words itself (opt-out, opt-in, help), so no prompt may ask for one.

    The one use allowed is the word's own meaning, in the fixed instruction "Reply STOP to stop".
    """
    assert len(TELEGRAM) > 20
    for message in load_catalog(locale):
        if message.id in TELEGRAM:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            words = set(re.findall(r"[A-Za-zÀ-ỹ]+", string.replace("Reply STOP to stop", "")))
            assert not words & RESERVED, (message.id, words & RESERVED)


# --- the standard gettext workflow reproduces what is committed -----------------------------------

PYBABEL = [sys.executable, "-m", "babel.messages.frontend"]


def _pybabel(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PYBABEL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_extracting_the_code_reproduces_the_committed_template(tmp_path: Path) -> None:
    """A message added in the code and not extracted (nor translated) fails here, and so CI."""
    out = tmp_path / "messages.pot"
    done = _pybabel(
        "extract",
        "-F",
        "pyproject.toml",
        "--no-location",
        "--sort-output",
        "--omit-header",
        "-o",
        str(out),
        "bot",
        "dialogs",
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == (ROOT / "locales" / "messages.pot").read_text(encoding="utf-8")


def test_updating_the_catalogs_from_the_template_changes_nothing(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "locales", tmp_path / "locales")
    done = _pybabel(
        "update",
        "-i",
        str(tmp_path / "locales" / "messages.pot"),
        "-d",
        str(tmp_path / "locales"),
        "-D",
        "messages",
        "--no-fuzzy-matching",
        "--ignore-obsolete",
        "--ignore-pot-creation-date",
    )
    assert done.returncode == 0, done.stderr
    for locale in ("vi", "en"):
        po = Path("locales") / locale / "LC_MESSAGES" / "messages.po"
        assert (tmp_path / po).read_text(encoding="utf-8") == (ROOT / po).read_text(encoding="utf-8")


def test_the_catalogs_compile_and_their_headers_are_filled_in(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "locales", tmp_path / "locales")
    done = _pybabel("compile", "-d", str(tmp_path / "locales"), "-D", "messages", "--statistics")
    assert done.returncode == 0, done.stderr
    for locale in ("vi", "en"):
        header = (ROOT / "locales" / locale / "LC_MESSAGES" / "messages.po").read_text(encoding="utf-8")
        header = header.split("\n\n", 1)[0]
        assert "#, fuzzy" not in header
        for placeholder in ("FIRST AUTHOR", "EMAIL@ADDRESS", "ORGANIZATION", "YEAR-MO-DA", "FULL NAME", "PROJECT"):
            assert placeholder not in header, (locale, placeholder)
        assert f'"Language: {locale}\\n"' in header


@pytest.mark.parametrize(("locale", "shown"), [("en", "missing columns: a, b, and c"), ("vi", "thiếu cột: a, b và c")])
def test_a_list_in_operator_text_reads_as_a_list_in_the_language(locale: str, shown: str) -> None:
    from dialogs.text import Listed

    columns = Listed((Literal("a"), Literal("b"), Literal("c")))
    assert CATALOGS.render(Msg.of("missing columns: {columns}", columns=columns), locale) == shown


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_telegram_words_fit_where_telegram_shows_them(locale: str) -> None:
    """Command descriptions 3 to 256 characters; buttons short enough to read on a phone."""
    for _, about, _ in telegram_channel.COMMANDS:
        assert 3 <= len(CATALOGS.render(Msg.of(about), locale)) <= 256
    for word in (telegram_channel.YES, telegram_channel.NO, telegram_channel.DONE, telegram_channel.ALL):
        assert len(CATALOGS.render(Msg.of(word), locale)) <= 12
    for button in (telegram_channel.SHARE_PHONE, telegram_channel.STOP_ALERTS_HERE):
        assert len(CATALOGS.render(Msg.of(button), locale)) <= 32
