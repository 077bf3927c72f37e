"""The conversation as people type it: particles, greetings, their own words for cancel and back,
menu labels, the digits they see, help where they are, and long lists a page at a time.

Each table row is (what the customer types, the state the bot is then in, words the reply contains),
in both languages, on a real database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bot.app import App, build
from bot.channels.base import Inbound
from bot.channels.segments import count_segments
from bot.importer import import_file
from tests.bot.test_conversation import contact_accounts, contact_row, walk
from tests.conftest import Chat, Clock, make_settings, verified_chat
from tests.snapshots import every_row

# -- the contact's language is the question's answer, not a switch of the conversation -------------


@pytest.mark.parametrize(
    ("locale", "typed", "stays", "stored"),
    [("vi", "tiếng Anh", "Thêm Lê Thị Cúc?", "en"), ("en", "Vietnamese", "Add Lê Thị Cúc?", "vi")],
)
def test_a_states_own_choice_wins_over_the_language_switch(
    app: App, locale: str, typed: str, stays: str, stored: str
) -> None:
    chat = verified_chat(app, locale)
    chat.run("1", "Lê Thị Cúc 626 555 0177", "n", typed, "1")
    assert chat.state == "add.confirm" and stays in chat.last_text  # still in the conversation's language
    chat.say("y" if locale == "en" else "c")
    row = contact_row(app, "Lê Thị Cúc")
    assert row is not None and row.language == stored


# -- plural forms wherever a number is shown ------------------------------------------------------


def test_one_minute_is_singular(database_url: str, clock: Clock) -> None:
    app = build(make_settings(database_url, session_idle_minutes=1), clock=clock, migrate_db=False)
    try:
        import_file(app.db, app.hasher, Path(__file__).resolve().parents[2] / "bot" / "demo_accounts.csv")
        chat = verified_chat(app, "en")
        chat.say("1")
        clock.advance(minutes=1, seconds=1)
        assert "Nothing was heard from you for 1 minute, so" in chat.say("Lê Thị Cúc")
    finally:
        app.close()


# -- the first message ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "locale", "words"),
    [
        ("xin chào", "vi", "Xin chào quý khách! Cảnh báo cắt điện luân phiên của SCE. English: EN\n1 Người liên lạc"),
        ("Chào bạn", "vi", "Xin chào quý khách!"),
        ("alo", "vi", "Xin chào quý khách!"),
        ("cho tôi hỏi", "vi", "1 Người liên lạc"),  # Vietnamese letters: Vietnamese, whatever it says
        ("hello", "en", "Hello! SCE rotating outage alerts (Tieng Viet: VI):"),
        ("Hi!", "en", "1 Alert contacts"),
    ],
)
def test_a_first_greeting_is_answered_in_its_language_with_the_menu(
    app: App, typed: str, locale: str, words: str
) -> None:
    chat = Chat(app)
    reply = chat.say(typed)
    assert chat.state == "menu" and chat.last is not None and chat.last.locale == locale
    assert words in reply


def test_the_utility_is_named_as_configured(database_url: str, clock: Clock) -> None:
    app = build(make_settings(database_url, utility_name="Edison Co"), clock=clock, migrate_db=False)
    try:
        assert "Edison Co rotating outage alerts" in Chat(app).say("700000001")
        assert "luân phiên của Edison Co." in Chat(app, address="+17145550999").say("xin chào")
    finally:
        app.close()


@pytest.mark.parametrize(("utility", "rows"), [("SCE", 3), ("Edison Company", 2)])
def test_a_welcome_shows_the_menu_rows_that_fit_and_more_shows_the_whole_menu(
    database_url: str, clock: Clock, utility: str, rows: int
) -> None:
    """Beside the first Vietnamese welcome two SMS segments hold part of the main menu: that part, then
    "TIẾP: xem tất cả", which shows the whole menu (it fits beside its own heading): not "1/4" of pages
    that exist only beside the welcome."""
    app = build(make_settings(database_url, utility_name=utility), clock=clock, migrate_db=False)
    try:
        chat = Chat(app, address="+17145550998", channel="sms")
        first = chat.say("xin chào")
        assert utility in first and count_segments(first).count <= 2, first
        assert f"\n{rows} " in first and f"\n{rows + 1} " not in first
        assert first.endswith("\nTIẾP: xem tất cả") and "/" not in first
        whole = chat.say("tiếp")
        assert chat.state == "menu" and count_segments(whole).count <= 2
        assert "\n1 " in whole and "\n6 " in whole and "TIẾP" not in whole
        assert chat.say("5") and chat.state == "status.group"  # the numbers are the menu's own
    finally:
        app.close()


def test_the_english_welcome_holds_the_whole_menu_in_one_segment(app: App) -> None:
    """GSM-7: one segment (160 characters) for the welcome that names the utility and all six entries."""
    first = Chat(app, address="+17145550997", channel="sms").say("hello")
    assert first.startswith("Hello! SCE rotating outage alerts") and "\n6 Group alerts" in first
    assert count_segments(first).encoding == "GSM-7" and count_segments(first).count == 1, first


def test_a_language_chosen_outside_the_dialog_skips_the_question(app: App) -> None:
    """``outagebot chat --lang vi``: the language is picked, the first answer is the menu."""
    reply = app.conversation.handle(Inbound("console", "local", "", locale_hint="vi", locale_chosen=True))
    assert reply.state == "menu" and reply.locale == "vi"


@pytest.mark.parametrize("hint", ["vi", "en"])
def test_a_mistake_at_the_first_question_is_explained_in_both_languages(app: App, hint: str) -> None:
    chat = Chat(app, locale_hint=hint)
    chat.say("700000001")
    reply = chat.say("abc")
    assert "Please type 1 or 2." in reply and "Xin gõ 1 hoặc 2." in reply
    assert chat.state == "start.language"


# -- what people say at a yes/no question ---------------------------------------------------------

YES = ["có ạ", "dạ có", "vâng ạ", "ok ạ", "okay", "được", "đúng rồi", "ừ", "Đúng", "yes please", "Y.", "được rồi"]
YES += ["ok luôn", "ok em", "👍", "dc", "đc", "right", "correct"]
NO = ["không ạ", "dạ không", "thôi", "ko", "no", "Dừng", "không, cảm ơn", "không được", "sai rồi", "nah"]


@pytest.mark.parametrize("typed", YES)
def test_yes_in_the_words_people_use(app: App, typed: str) -> None:
    chat = verified_chat(app, "vi")
    chat.run("2", "2", "1")
    assert chat.state == "link.confirm"
    chat.say(typed)
    assert chat.state == "contacts.menu" and contact_accounts(app, "Trần Thị Bích") == ["3-001-1001", "3-001-1002"]


@pytest.mark.parametrize("typed", NO)
def test_no_in_the_words_people_use(app: App, typed: str) -> None:
    chat = verified_chat(app, "vi")
    chat.run("2", "2", "1")
    reply = chat.say(typed)
    assert chat.state == "contacts.menu" and contact_accounts(app, "Trần Thị Bích") == ["3-001-1002"]
    assert "không có gì thay đổi" in reply.lower() or "Đã hủy" in reply


# -- greetings are not mistakes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "greeting", "words"), [("vi", "xin chào", "Xin chào quý khách!"), ("en", "hello", "Hello!")]
)
def test_a_greeting_gets_a_greeting_and_the_question_again(app: App, locale: str, greeting: str, words: str) -> None:
    chat = verified_chat(app, locale)
    chat.run("1", "Lê Thị Cúc")
    chat.say("abc")
    chat.say("def")
    reply = chat.say(greeting)
    assert reply.startswith(words) and chat.state == "add.phone"
    assert "1-800-990-7788" not in reply
    assert "1-800-990-7788" in chat.say("ghi")  # the third mistake, not the fourth message, brings help


@pytest.mark.parametrize(
    ("locale", "greeting", "words"), [("vi", "alo", "Xin chào quý khách!"), ("en", "Alo!", "Hello!")]
)
def test_alo_where_a_name_is_asked_is_a_greeting_not_a_name(app: App, locale: str, greeting: str, words: str) -> None:
    """ "Alo" is how a call is answered, never a person's name: the name question is asked again."""
    chat = verified_chat(app, locale)
    chat.say("1")
    reply = chat.say(greeting)
    assert reply.startswith(words) and chat.state == "add.name"
    chat.say("Lê Thị Cúc")
    assert chat.state == "add.phone"


@pytest.mark.parametrize(
    ("locale", "typed", "words"),
    [
        ("vi", "có", "Xin nhập họ tên đầy đủ, ví dụ: Nguyễn Văn An."),
        ("vi", "dạ có", "Xin nhập họ tên đầy đủ"),
        ("vi", "Không ạ", "Xin nhập họ tên đầy đủ"),
        ("vi", "ok", "Xin nhập họ tên đầy đủ"),
        ("vi", "được", "Xin nhập họ tên đầy đủ"),
        ("vi", "dạ vâng", "Xin nhập họ tên đầy đủ, ví dụ: Nguyễn Văn An. X: hủy."),
        ("vi", "vâng ạ", "Xin nhập họ tên đầy đủ"),
        ("vi", "dạ rồi", "Xin nhập họ tên đầy đủ"),
        ("vi", "ko co", "Xin nhập họ tên đầy đủ"),
        ("vi", "da ko co", "Xin nhập họ tên đầy đủ"),  # dạ without its mark, before a phrase
        ("en", "well sure", "Please type the person's full name"),
        ("vi", "chưa có", "Xin nhập họ tên đầy đủ"),
        ("vi", "đc", "Xin nhập họ tên đầy đủ"),
        ("vi", "có có", "Xin nhập họ tên đầy đủ"),
        ("vi", "chính xác", "Xin nhập họ tên đầy đủ"),
        ("vi", "alo alo", "Xin nhập họ tên đầy đủ"),
        ("vi", "ｃｏ", "Xin nhập họ tên đầy đủ"),  # full-width letters
        ("vi", "dạ vâng 714 555 0177", "Xin nhập họ tên đầy đủ"),  # with the number, as the question asks
        ("en", "yes", "Please type the person's full name, for example: Nguyen Van An. X: never mind."),
        ("en", "Okay.", "Please type the person's full name"),
        ("en", "of course", "Please type the person's full name"),
        ("en", "O.K.", "Please type the person's full name"),
    ],
)
def test_a_yes_or_no_where_a_name_is_asked_is_not_taken_for_a_name(
    app: App, locale: str, typed: str, words: str
) -> None:
    chat = verified_chat(app, locale)
    chat.say("1")
    reply = chat.say(typed)
    assert chat.state == "add.name" and words in reply


@pytest.mark.parametrize(
    "name",
    ["Dung", "Dũng", "Hồng", "Lưu Văn Đức", "Có Văn Tài", "Vàng", "Không Minh", "Vang Ko", "Oh Chua", "Cò", "Cô Ba"],
)
def test_names_that_sound_like_answers_are_names(app: App, name: str) -> None:
    chat = verified_chat(app, "vi")
    chat.say("1")
    reply = chat.say(name)
    assert chat.state == "add.phone" and name in reply


@pytest.mark.parametrize("typed", ["có", "yes"])
def test_a_yes_where_a_new_name_is_asked_in_an_edit_is_not_a_name(app: App, typed: str) -> None:
    chat = verified_chat(app, "en")
    chat.run("3", "1", "1")
    assert chat.state == "edit.name"
    chat.say(typed)
    assert chat.state == "edit.name"


# -- menus understand their own labels ------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "steps"),
    [
        ("vi", [("người liên lạc", "verify.account", "Số Tài Khoản Khách Hàng")]),
        ("vi", [("nguoi lien lac", "verify.account", "Số Tài Khoản Khách Hàng")]),
        ("en", [("alert contacts", "verify.account", "Customer Account Number")]),
        ("en", [("cooling", "menu", "Cooling Centers are open")]),
    ],
)
def test_a_menu_understands_its_labels(chat: Chat, locale: str, steps: list[tuple[str, str, str]]) -> None:
    chat.run("alerts", "1" if locale == "vi" else "2")
    walk(chat, steps)


def test_the_contacts_menu_understands_its_labels_in_either_language(app: App) -> None:
    chat = verified_chat(app, "vi")
    walk(
        chat,
        [
            ("sửa thông tin", "edit.contact", "Xin chọn người liên lạc cần sửa:"),
            ("MENU", "menu", ""),
            ("1", "contacts.menu", ""),
        ],
    )
    walk(chat, [("remove from accounts", "unlink.contact", "xóa")])


# -- lists: stable numbers, the digits shown, pages ------------------------------------------------


def test_the_numbers_of_a_list_stay_the_same_on_every_screen(app: App) -> None:
    chat = verified_chat(app, "en")
    reply = chat.run("2", "2")  # Trần Thị Bích is on *1002 already
    assert "1 *1001 9200 Bolsa Ave\n3 *1003 10130 Westminster Ave" in reply
    walk(chat, [("2", "link.accounts", "Please type the numbers you want"), ("3", "link.confirm", "*1003?")])


@pytest.mark.parametrize("typed", ["cả ba", "cả 3", "tất cả các tài khoản", "hết", "1 đến 3", "tất cả nhé"])
def test_all_three_in_the_words_people_use(app: App, typed: str) -> None:
    chat = verified_chat(app, "vi")
    chat.run("1", "Lê Thị Cúc 626 555 0177", "n", "1")
    chat.say(typed)
    assert chat.state == "add.confirm" and "TẤT CẢ 3 tài khoản dịch vụ" in chat.last_text


@pytest.mark.parametrize("typed", ["cả hai", "both", "1,2,3,4"])
def test_both_of_three_is_not_all(app: App, typed: str) -> None:
    chat = verified_chat(app, "vi")
    chat.run("1", "Lê Thị Cúc 626 555 0177", "n", "1")
    chat.say(typed)
    assert chat.state == "add.accounts"


COLUMNS = (
    "customer_account,access_code,customer_name,service_account,service_address,outage_group,demand_kw,"
    "contact_name,contact_phone,contact_email,contact_language"
)


def many_accounts_file(tmp_path: Path, count: int) -> Path:
    """A customer with ``count`` service accounts at long, realistic addresses."""
    path = tmp_path / "many.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS.split(","))
        for i in range(1, count + 1):
            address = f"{10000 + i} North Harbor Boulevard Suite {i}, Fullerton"
            row = ["700000009", "246810", "Chợ Lớn Supermarket", f"9-{i:03d}-{5000 + i}", address, "B007", "90"]
            out.writerow([*row, "", "", "", ""])
    return path


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_a_hundred_service_accounts_page_within_two_segments_and_pick_across_pages(
    app: App, tmp_path: Path, locale: str
) -> None:
    assert import_file(app.db, app.hasher, many_accounts_file(tmp_path, 100)).imported
    chat = verified_chat(app, locale, account="700000009", code="246810")
    first = chat.run("1", "Lê Thị Cúc 626 555 0177", "n", "1")
    pages = [first]
    count = int(first.rsplit("/", 1)[1].rstrip(")"))
    for _ in range(count):
        pages.append(chat.say("MORE" if locale == "en" else "tiếp"))
    for page in pages:
        assert count_segments(page).count <= 2, page  # Twilio's 1,600 characters are far away
    assert 5 <= count <= 50 and pages[count] == pages[0]  # after the last page, the first again
    assert ("TIẾP: xem thêm (1/" if locale == "vi" else "MORE: see more (1/") in pages[0]
    assert "\n1 *5001 10001 North Harbor" in pages[0] and "\n100 *5100" in pages[count - 1]
    last = "TIẾP: về trang đầu (" if locale == "vi" else "MORE: back to the first page ("
    assert last in pages[count - 1] and last not in pages[0]
    chat.say("2, 57, *5100")  # numbers and digits from three different pages
    assert chat.state == "add.confirm" and "*5002, *5057, *5100" in chat.last_text


# -- the idle notice only when something was lost ---------------------------------------------------


def test_coming_back_after_reading_an_answer_is_not_told_of_a_lost_session(app: App, clock: Clock) -> None:
    chat = Chat(app)
    chat.run("hello", "2")  # read the medical answer, at the main menu, nothing under way
    clock.advance(hours=20)
    reply = chat.say("3")
    assert reply.startswith("During rotating outages in extreme heat") and "Nothing was heard" not in reply


@pytest.mark.parametrize(("steps", "state"), [(("1", "700000001"), "verify.code"), (("1",), "verify.account")])
def test_an_unfinished_verification_lost_to_idleness_is_told(
    app: App, clock: Clock, steps: tuple[str, ...], state: str
) -> None:
    chat = Chat(app)
    chat.run("hello", *steps)
    assert chat.state == state
    clock.advance(minutes=16)
    assert "Nothing was heard from you for 15 minutes" in chat.say("482913")
    assert chat.state == "menu"


# -- found by an outsider typing like a customer ----------------------------------------------------


@pytest.mark.parametrize(
    ("field", "same", "locale"),
    [("2", "(714) 555-0101", "en"), ("4", "1", "vi"), ("1", "Nguyễn Văn An", "vi"), ("3", "an@phobolsa.example", "en")],
)
def test_typing_the_value_a_contact_already_has_changes_nothing_and_texts_no_one(
    app: App, field: str, same: str, locale: str
) -> None:
    chat = verified_chat(app, locale)
    before = every_row(app.db.engine)
    reply = chat.run("3", "1", field, same)
    assert chat.state == "edit.field"  # choose another field, or go back
    assert ("Nothing to change." in reply) if locale == "en" else ("không cần thay đổi" in reply)
    after = every_row(app.db.engine)
    assert {t: r for t, r in after.items() if t != "sessions"} == {t: r for t, r in before.items() if t != "sessions"}


@pytest.mark.parametrize(
    ("locale", "words"),
    [("en", "Trần Thị Bích has no email. Nothing to change."), ("vi", "Trần Thị Bích chưa có email.")],
)
def test_deleting_an_email_never_given_says_there_is_none(app: App, locale: str, words: str) -> None:
    chat = verified_chat(app, locale)
    before = every_row(app.db.engine)
    assert words in chat.run("3", "2", "3", "k" if locale == "vi" else "n")
    after = every_row(app.db.engine)
    assert {t: r for t, r in after.items() if t != "sessions"} == {t: r for t, r in before.items() if t != "sessions"}


def test_a_greeting_at_the_language_question_picks_its_language(chat: Chat) -> None:
    chat.say("700000001")
    assert chat.state == "start.language"
    reply = chat.say("xin chào")
    assert chat.state == "menu" and reply.startswith("Xin chào quý khách!") and "1 Người liên lạc" in reply


def test_a_contact_is_picked_by_a_word_of_its_name(app: App) -> None:
    chat = verified_chat(app, "vi")
    walk(chat, [("3", "edit.contact", ""), ("Bích", "edit.field", "Trần Thị Bích")])


@pytest.mark.parametrize("typed", ["3-001-1003", "*1003", "1003", "3"])
def test_a_service_account_is_picked_as_the_bill_prints_it(app: App, typed: str) -> None:
    chat = verified_chat(app, "en")
    chat.run("2", "2")
    chat.say(typed)
    assert chat.state == "link.confirm" and "*1003?" in chat.last_text


def test_a_customer_account_number_typed_at_the_main_menu_starts_verification(chat: Chat) -> None:
    chat.run("hello")
    reply = chat.say("700 000 001")
    assert chat.state == "verify.code" and "access code" in reply
    assert "Verified: Pho Bolsa LLC." in chat.say("482913")


@pytest.mark.parametrize("email", ["😀@gmail.com", "lan😀@gmail.com", "lan@gm\ue000ail.com"])
def test_symbols_are_not_email_addresses(app: App, email: str) -> None:
    chat = verified_chat(app, "en")
    chat.run("1", "Lê Thị Cúc 626 555 0177")
    chat.say(email)
    assert chat.state == "add.email"


@pytest.mark.parametrize(
    "typed",
    [
        ("1", "700000001", "000000"),  # a wrong code
        ("1", "700000001", "?"),  # help at the access code
        ("1", "700000001", "quên", "quên", "quên"),
        ("banana",),  # not understood at the main menu
    ],
)
def test_a_vietnamese_answer_to_a_mistake_or_help_fits_two_segments(chat: Chat, typed: tuple[str, ...]) -> None:
    chat.say("xin chào")
    for text in typed:
        reply = chat.say(text)
        assert count_segments(reply).count <= 2, reply


@pytest.mark.parametrize(
    ("account", "code"),
    [
        ("700000001 ạ", "482913 ạ"),
        ("dạ 700000001", "dạ 482 913 nhé"),
        ("700000001 thanks", "482913."),
        ("700000001", "482913 nha"),
        ("700000001", "482913 a"),
        ("700000001", "da 482 913 nhe"),
        ("700000001", "482913 pls"),
    ],
)
def test_a_number_and_a_code_with_a_particle_verify_at_once(app: App, account: str, code: str) -> None:
    chat = Chat(app)
    chat.run("xin chào", "1", account)
    assert chat.state == "verify.code", chat.last_text
    assert "Đã xác minh: Phở Bolsa LLC." in chat.say(code)
    assert failed_attempts(app) == 0


def test_a_wrong_code_read_two_ways_is_one_failed_attempt(app: App) -> None:
    """ "482913 nha" is checked as typed and without its particle; "000000 nha" fails both: one attempt."""
    chat = Chat(app)
    chat.run("xin chào", "1", "700000001")
    assert "Không xác minh được" in chat.say("000000 nha")
    assert failed_attempts(app) == 1


@pytest.mark.parametrize(
    "typed", ["where do I find it", "dunno", "never got one", "hok có", "I did not get any", "tôi chưa nhận được mã"]
)
def test_a_sentence_at_the_access_code_gets_help_and_is_never_checked_as_a_code(app: App, typed: str) -> None:
    """Six times, more than the lockout allows: none of them is an attempt, and the right code works."""
    chat = Chat(app)
    chat.run("hello", "1", "700000001")
    for _ in range(6):
        assert "primary contact named on the account" in chat.say(typed) and chat.state == "verify.code"
    assert failed_attempts(app) == 0
    assert "Verified: Pho Bolsa LLC." in chat.say("482913")


@pytest.mark.parametrize("typed", ["mã: 482913", "code: 482913", "Mã số 482913"])
def test_a_code_with_a_label_before_it_gets_help_and_costs_no_attempt(app: App, typed: str) -> None:
    chat = Chat(app)
    chat.run("xin chào", "1", "700000001")
    assert "người liên lạc chính" in chat.say(typed) and chat.state == "verify.code"
    assert failed_attempts(app) == 0


@pytest.mark.parametrize("typed", ["um", "um...", "Um."])
def test_hesitation_in_english_is_not_a_yes(app: App, typed: str) -> None:
    chat = verified_chat(app, "en")
    chat.run("2", "2", "1")
    chat.say(typed)
    assert chat.state == "link.confirm" and contact_accounts(app, "Trần Thị Bích") == ["3-001-1002"]


@pytest.mark.parametrize(
    ("business", "heading"),
    [
        ("Lee’s Donuts & Café — Garden Grove Boulevard", "Verified: Lee's Donuts & Cafe - Garden Grove Boulevard."),
        ("ガスト ジャパン株式会社 ガーデングローブ店", "Verified. Please choose:"),
        ("Bánh Mì Chợ Cũ Westminster Bolsa LLC", "Verified: Banh Mi Cho Cu Westminster Bolsa LLC. Please choose:"),
    ],
)
def test_the_verified_heading_in_english_never_shows_a_name_changed_beyond_its_marks(
    app: App, tmp_path: Path, business: str, heading: str
) -> None:
    """Where the name would take the reply past two SMS segments: the name without its diacritics when
    that leaves plain letters, else no name (removing marks from other scripts changes their letters)."""
    path = tmp_path / "one.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS.split(","))
        out.writerow(["700000031", "424242", business, "9-031-0001", "1 Main St", "B007", "90", "", "", "", ""])
    assert import_file(app.db, app.hasher, path).imported
    chat = Chat(app, address="+17145550931", channel="sms")
    reply = chat.run("hello", "1", "700000031", "424242")
    assert reply.startswith(heading) and count_segments(reply).count <= 2, reply


def failed_attempts(app: App) -> int:
    from sqlalchemy import select

    from bot.storage.models import CustomerAccount

    with app.db.engine.connect() as conn:
        number = select(CustomerAccount.failed_attempts).where(CustomerAccount.number == "700000001")
        return int(conn.execute(number).scalar_one())


@pytest.mark.parametrize("typed", ["số 1 và 3", "1. 3", "1 + 3", "1, 3.", "1) 3)"])
def test_a_list_written_as_people_write_it(app: App, typed: str) -> None:
    chat = verified_chat(app, "vi")
    chat.run("1", "Lê Thị Cúc 626 555 0177", "k", "1")
    chat.say(typed)
    assert chat.state == "add.confirm" and "*1001" in chat.last_text and "*1003" in chat.last_text


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("K", "That is not a valid mobile number"),  # no digits: nothing is "too short"
        ("quên", "That is not a valid mobile number"),
        ("12345", "too short"),
    ],
)
def test_a_phone_hint_says_what_is_wrong(app: App, typed: str, words: str) -> None:
    chat = verified_chat(app, "en")
    chat.run("1", "Lê Thị Cúc")
    assert words in chat.say(typed)


def test_a_name_too_long_is_told_so(app: App) -> None:
    chat = verified_chat(app, "en")
    chat.say("1")
    assert "That name is too long" in chat.say(" ".join(["Nguyen"] * 12))


@pytest.mark.parametrize("typed", ["email: lan@gmail.com", "lan@gmail.com ạ", "Lan@Gmail.com."])
def test_an_email_with_words_around_it(app: App, typed: str) -> None:
    chat = verified_chat(app, "en")
    chat.run("1", "Lê Thị Cúc 626 555 0177")
    chat.say(typed)
    assert chat.state == "add.language"
    chat.run("1", "1", "y")
    row = contact_row(app, "Lê Thị Cúc")
    assert row is not None and row.email == "lan@gmail.com"


@pytest.mark.parametrize(
    ("first", "choice", "words"), [("700000001", "1", "mã số truy cập"), ("7000-0000 2", "2", "access code")]
)
def test_a_first_message_that_is_the_account_number_is_not_asked_for_again(
    chat: Chat, first: str, choice: str, words: str
) -> None:
    chat.say(first)
    assert chat.state == "start.language"
    assert words in chat.say(choice) and chat.state == "verify.code"
    chat.say("731562" if first.endswith("2") else "482913")
    assert chat.state == "contacts.menu"


@pytest.mark.parametrize("locale", ["vi", "en"])
@pytest.mark.parametrize("state", ["unlink.contact", "unlink.accounts", "all.contacts", "all.action", "list.contacts"])
def test_help_at_a_list_stays_within_two_segments(app: App, state: str, locale: str) -> None:
    """ "?" twice at a list of Vietnamese names: the help, and as many rows as fit beside it (none, when
    not one does); the list still answers (found by the property test: 3 segments before)."""
    from tests.paths import chat_at

    chat = chat_at(app, state, locale, address="+17145550177")
    for _ in range(2):
        reply = chat.say("?")
        assert count_segments(reply).count <= 2, reply
        assert chat.state == state
    chat.say("1")
    assert chat.state != state, chat.last_text  # the list, not shown beside the help, still answers
