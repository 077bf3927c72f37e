"""A whole conversation, turn by turn, in both languages, on a real database.

Each table row is (what the customer types, the state the bot is then in, words the reply contains).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.storage.models import AuditEntry, ChatSession, Contact, ContactAssignment, ServiceAccount
from tests.conftest import Chat, verified_chat


def contact_accounts(app: App, name: str) -> list[str]:
    """The service account numbers a contact is assigned to, from the database."""
    with app.db.engine.connect() as conn:
        rows = conn.execute(
            select(ServiceAccount.number)
            .join(ContactAssignment, ContactAssignment.service_account_id == ServiceAccount.id)
            .join(Contact, Contact.id == ContactAssignment.contact_id)
            .where(Contact.name == name)
            .order_by(ServiceAccount.number)
        )
        return [r[0] for r in rows]


def contact_row(app: App, name: str) -> Contact | None:
    with app.db.engine.connect() as conn:
        row = conn.execute(select(Contact.__table__).where(Contact.name == name)).first()
        return row  # type: ignore[return-value]


def audit_actions(app: App) -> list[str]:
    with app.db.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(AuditEntry.action).order_by(AuditEntry.id))]


def walk(chat: Chat, steps: list[tuple[str, str, str]]) -> None:
    for text, state, words in steps:
        reply = chat.say(text)
        assert chat.state == state, f"after {text!r}: {reply}"
        assert words in reply, f"after {text!r} expected {words!r} in:\n{reply}"


# -- first contact ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "first_line"),
    [
        ("vi", "Cảnh báo cắt điện luân phiên của SCE. Xin chọn ngôn ngữ:"),
        ("en", "SCE rotating outage alerts. Choose a language:"),
        (None, "SCE rotating outage alerts. Choose a language:"),
    ],
)
def test_first_contact_greets_in_the_hinted_language_first_and_offers_both(
    app: App, hint: str | None, first_line: str
) -> None:
    chat = Chat(app, locale_hint=hint)
    reply = chat.say("700000001")  # tells nothing of the language
    assert reply.splitlines()[0] == first_line
    assert "1 Tiếng Việt" in reply and "2 English" in reply
    assert chat.state == "start.language"


@pytest.mark.parametrize(
    ("answer", "menu_words"),
    [
        ("1", "Menu chính:\n1 Người liên lạc"),
        ("tieng viet", "Menu chính"),
        ("TIẾNG VIỆT", "Menu chính"),
        ("2", "Main menu:\n1 Alert contacts"),
        ("english", "Main menu"),
    ],
)
def test_language_choice_leads_to_the_main_menu(chat: Chat, answer: str, menu_words: str) -> None:
    chat.say("")
    assert menu_words in chat.say(answer)
    assert chat.state == "menu"


# -- verification ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "steps"),
    [
        (
            "en",
            [
                ("1", "verify.account", "Customer Account Number"),
                ("7000-0000 1", "verify.code", "access code"),
                ("482 913", "contacts.menu", "Verified: Pho Bolsa LLC. Please choose:\n1 Add new contact"),
            ],
        ),
        (
            "vi",
            [
                ("1", "verify.account", "Số Tài Khoản Khách Hàng"),
                ("700 000 001", "verify.code", "mã số truy cập"),
                ("482913", "contacts.menu", "Đã xác minh: Phở Bolsa LLC.\n1 Thêm người mới"),
            ],
        ),
    ],
)
def test_verify_with_account_number_and_access_code(chat: Chat, locale: str, steps: list[tuple[str, str, str]]) -> None:
    chat.say("")
    chat.say("1" if locale == "vi" else "2")
    walk(chat, steps)


# -- the five operations ---------------------------------------------------------------------------

ADD = {
    "en": [
        ("1", "add.name", "full name and mobile number"),
        ("Lê Thị Cúc", "add.phone", "Mobile number of Lê Thị Cúc"),
        ("626.555.0177", "add.email", "Email of Lê Thị Cúc"),
        ("no email", "add.language", "1 Vietnamese\n2 English"),
        ("1", "add.accounts", "1 *1001 9200 Bolsa Ave\n2 *1002 15400 Brookhurst St\n3 *1003 10130 Westminster Ave"),
        ("1,3", "add.confirm", "Add Lê Thị Cúc?\n(626) 555-0177\nVietnamese\n*1001, *1003\nY/N"),
        ("yes please", "contacts.menu", "Saved. Lê Thị Cúc will get alerts for 2 service accounts."),
    ],
    "vi": [
        ("1", "add.name", "họ tên và số di động"),
        ("Lê Thị Cúc +1 626 555 0177", "add.email", "Email của Lê Thị Cúc"),
        ("ko có", "add.language", "1 Tiếng Việt\n2 Tiếng Anh"),
        ("1", "add.accounts", "1 *1001 9200 Bolsa Ave"),
        ("1 đến 3", "add.confirm", "Thêm Lê Thị Cúc?\n(626) 555-0177\nTiếng Việt\nTẤT CẢ 3 tài khoản dịch vụ\nC/K"),
        ("dạ có", "contacts.menu", "Đã lưu. Lê Thị Cúc sẽ nhận cảnh báo cho 3 tài khoản dịch vụ."),
    ],
}


@pytest.mark.parametrize("locale", ["en", "vi"])
def test_add_a_new_contact_to_several_service_accounts_entered_once(app: App, locale: str) -> None:
    chat = verified_chat(app, locale)
    walk(chat, ADD[locale])
    expected = ["3-001-1001", "3-001-1003"] if locale == "en" else ["3-001-1001", "3-001-1002", "3-001-1003"]
    assert contact_accounts(app, "Lê Thị Cúc") == expected
    row = contact_row(app, "Lê Thị Cúc")
    assert row is not None and row.phone == "+16265550177" and row.language == "vi" and row.email is None
    assert audit_actions(app)[-1] == "contact.add"


@pytest.mark.parametrize("locale", ["en", "vi"])
def test_declining_the_read_back_saves_nothing(app: App, locale: str) -> None:
    chat = verified_chat(app, locale)
    steps = ADD[locale][:-1]
    walk(chat, steps)
    reply = chat.say("no" if locale == "en" else "không ạ")
    assert chat.state == "contacts.menu"  # said no to a change: back where changes are chosen
    assert ("OK, nothing was changed." if locale == "en" else "Dạ, không có gì thay đổi.") in reply
    assert contact_row(app, "Lê Thị Cúc") is None


def test_a_phone_already_on_file_is_not_added_twice_and_the_name_typed_is_kept(app: App) -> None:
    chat = verified_chat(app, "en")
    reply = chat.run("1", "Someone Else", "(714) 555-0101")
    assert "(714) 555-0101 is already the number of Nguyễn Văn An." in reply
    assert "Please type another number, or X to leave it." in reply
    assert chat.state == "add.phone" and "Please type another number, or X to leave it." in reply
    chat.say("(714) 555-0188")
    assert chat.state == "add.email" and "Email of Someone Else?" in chat.last_text


@pytest.mark.parametrize(
    ("locale", "steps"),
    [
        (
            "en",
            [
                ("2", "link.contact", "Which contact?"),
                (
                    "3",
                    "link.accounts",
                    "Add Trần Thị Bích to which accounts? Example: 1 3 or ALL\n1 *1001 9200 Bolsa Ave\n3 *1003",
                ),
                ("ALL", "link.confirm", "Add Trần Thị Bích to *1001, *1003? Y/N"),
                ("Y", "contacts.menu", "Saved. Trần Thị Bích was added to 2 service accounts."),
            ],
        ),
        (
            "vi",
            [
                ("2", "link.contact", "Xin chọn người liên lạc:"),
                ("3", "link.accounts", "Thêm Trần Thị Bích vào tài khoản nào?"),
                ("tất cả các tài khoản", "link.confirm", "Thêm Trần Thị Bích vào *1001, *1003? C/K"),
                ("vâng ạ", "contacts.menu", "Đã thêm Trần Thị Bích vào 2 tài khoản dịch vụ."),
            ],
        ),
    ],
)
def test_add_an_existing_contact_to_other_service_accounts(
    app: App, locale: str, steps: list[tuple[str, str, str]]
) -> None:
    chat = verified_chat(app, locale)
    # contacts are listed by name: 1 Nguyễn Văn An, 2 ... wait: ordering is by name, so check it
    listing = chat.say("2")
    assert "1 Nguyễn Văn An, (714) 555-0101" in listing and "2 Trần Thị Bích, (714) 555-0102" in listing
    chat.say("0")  # back to the contacts menu
    steps = [(steps[0][0], steps[0][1], steps[0][2]), ("2", *steps[1][1:]), *steps[2:]]
    walk(chat, steps)
    assert contact_accounts(app, "Trần Thị Bích") == ["3-001-1001", "3-001-1002", "3-001-1003"]
    assert audit_actions(app)[-1] == "contact.assign"


@pytest.mark.parametrize(
    ("locale", "steps", "field", "value"),
    [
        (
            "en",
            [
                ("3", "edit.contact", "Which contact do you want to edit?"),
                ("1", "edit.field", "What do you want to change for Nguyễn Văn An?"),
                ("2", "edit.phone", "New mobile number for Nguyễn Văn An?"),
                (
                    "(714) 555-0155",
                    "edit.confirm",
                    "Change the mobile number of Nguyễn Văn An from (714) 555-0101 to (714) 555-0155? Y/N",
                ),
                ("okay", "contacts.menu", "Saved. Nguyễn Văn An was updated."),
            ],
            "phone",
            "+17145550155",
        ),
        (
            "vi",
            [
                ("3", "edit.contact", "Xin chọn người liên lạc cần sửa:"),
                ("1", "edit.field", "Quý khách muốn sửa thông tin nào của Nguyễn Văn An?"),
                ("4", "edit.language", "Nguyễn Văn An nhận cảnh báo bằng tiếng nào?\n1 Tiếng Việt\n2 Tiếng Anh"),
                (
                    "tiếng Anh",  # the state's own choice, not the switch of the whole conversation
                    "edit.confirm",
                    "Nguyễn Văn An sẽ nhận cảnh báo bằng tiếng Anh, thay vì bằng tiếng Việt. Lưu thay đổi? C/K",
                ),
                ("dong y", "contacts.menu", "Đã cập nhật thông tin của Nguyễn Văn An."),
            ],
            "language",
            "en",
        ),
        (
            "en",
            [
                ("3", "edit.contact", "edit"),
                ("1", "edit.field", "change"),
                ("3", "edit.email", "New email for Nguyễn Văn An? To remove the email, type N."),
                ("no email", "edit.confirm", "Remove the email an@phobolsa.example of Nguyễn Văn An? Y/N"),
                ("Y", "contacts.menu", "updated"),
            ],
            "email",
            None,
        ),
        (
            "vi",
            [
                ("3", "edit.contact", "sửa"),
                ("1", "edit.field", "thông tin nào"),
                ("1", "edit.name", "Tên mới của Nguyễn Văn An là gì?"),
                ("Nguyễn Văn Ân", "edit.confirm", "Đổi tên của Nguyễn Văn An từ Nguyễn Văn An sang Nguyễn Văn Ân? C/K"),
                ("c", "contacts.menu", "Đã cập nhật thông tin của Nguyễn Văn Ân."),
            ],
            "name",
            "Nguyễn Văn Ân",
        ),
    ],
)
def test_edit_any_field_of_a_contact(
    app: App, locale: str, steps: list[tuple[str, str, str]], field: str, value: str | None
) -> None:
    chat = verified_chat(app, locale)
    walk(chat, steps)
    with app.db.engine.connect() as conn:
        row = conn.execute(select(Contact.__table__).where(Contact.id == 1)).one()
    assert getattr(row, field) == value
    assert audit_actions(app)[-1] == "contact.edit"


@pytest.mark.parametrize(
    ("locale", "steps"),
    [
        (
            "en",
            [
                ("4", "unlink.contact", "Which contact do you want to remove from service accounts?"),
                ("1", "unlink.accounts", "Remove Nguyễn Văn An from which accounts?"),
                (
                    "*1002",
                    "unlink.confirm",
                    "Remove Nguyễn Văn An from *1002? Nguyễn Văn An will get no more alerts for it. Y/N",
                ),
                ("y", "contacts.menu", "Saved. Nguyễn Văn An was removed from 1 service account."),
            ],
        ),
        (
            "vi",
            [
                ("4", "unlink.contact", "Xin chọn người cần xóa khỏi tài khoản:"),
                ("1", "unlink.accounts", "Xóa Nguyễn Văn An khỏi tài khoản nào?"),
                (
                    "2",
                    "unlink.confirm",
                    "Xóa Nguyễn Văn An khỏi *1002? "
                    "Từ nay Nguyễn Văn An sẽ không nhận cảnh báo cho tài khoản đã chọn. C/K",
                ),
                ("có ạ", "contacts.menu", "Đã xóa Nguyễn Văn An khỏi 1 tài khoản dịch vụ."),
            ],
        ),
    ],
)
def test_remove_a_contact_from_some_service_accounts(app: App, locale: str, steps: list[tuple[str, str, str]]) -> None:
    chat = verified_chat(app, locale)
    walk(chat, steps)
    assert contact_accounts(app, "Nguyễn Văn An") == ["3-001-1001"]
    assert audit_actions(app)[-1] == "contact.unassign"


@pytest.mark.parametrize(
    ("locale", "accounts", "words"),
    [
        ("en", "*1001", "Remove Nguyễn Văn An from *1001? After this, no one will get alerts for *1001. Y/N"),
        (
            "en",
            "ALL",
            "Remove Nguyễn Văn An from *1001, *1002? After this, no one will get alerts for *1001. Y/N",
        ),
        (
            "vi",
            "1",
            "Xóa Nguyễn Văn An khỏi *1001? Nếu xóa, sẽ không còn ai nhận cảnh báo cho tài khoản *1001. C/K",
        ),
        (
            "vi",
            "tất cả",
            "Xóa Nguyễn Văn An khỏi *1001, *1002? Nếu xóa, sẽ không còn ai nhận cảnh báo cho tài khoản *1001. C/K",
        ),
    ],
)
def test_removing_the_last_contact_of_an_account_says_no_one_will_be_alerted(
    app: App, locale: str, accounts: str, words: str
) -> None:
    """*1001 has one contact (An); *1002 has two (An and Bích): only *1001 would be left without one."""
    chat = verified_chat(app, locale)
    walk(chat, [("4", "unlink.contact", ""), ("1", "unlink.accounts", ""), (accounts, "unlink.confirm", words)])
    chat.say("y")
    assert contact_accounts(app, "Nguyễn Văn An") == ([] if accounts in ("ALL", "tất cả") else ["3-001-1002"])


@pytest.mark.parametrize(
    ("on_telegram", "words"),
    [
        (False, "Remove Nguyễn Văn An from *1002? After this, no one will get alerts for *1002. Y/N"),
        (True, "Remove Nguyễn Văn An from *1002? Nguyễn Văn An will get no more alerts for it. Y/N"),
    ],
)
def test_a_contact_whose_number_opted_out_does_not_count_as_one_who_gets_alerts(
    app: App, on_telegram: bool, words: str
) -> None:
    """Bích is the other contact on *1002, but her number opted out of SMS: an alert reaches her only if
    she is on Telegram, so only then is An not the last one alerted there."""
    from datetime import UTC, datetime

    from sqlalchemy import update

    from bot.storage import optouts

    with app.db.engine.begin() as conn:
        optouts.opt_out(conn, "sms", "+17145550102", "NGUNG", datetime.now(UTC), provider_blocks=False)
        if on_telegram:
            conn.execute(update(Contact).where(Contact.name == "Trần Thị Bích").values(telegram_chat_id=4242))
    chat = verified_chat(app, "en")
    walk(chat, [("4", "unlink.contact", ""), ("1", "unlink.accounts", ""), ("*1002", "unlink.confirm", words)])


@pytest.mark.parametrize(
    ("locale", "contacts", "words"),
    [
        (
            "en",
            "1",
            "Remove Nguyễn Văn An from ALL 3 service accounts? After this, no one will get alerts for *1001. Y/N",
        ),
        ("en", "2", "Remove Trần Thị Bích from ALL 3 service accounts? Y/N"),  # An stays on both of hers
        (
            "en",
            "1 2",
            "Remove Nguyễn Văn An and Trần Thị Bích from ALL 3 service accounts? "
            "After this, no one will get alerts for *1001, *1002. Y/N",
        ),
        (
            "vi",
            "1 2",
            "Xóa Nguyễn Văn An và Trần Thị Bích khỏi TẤT CẢ 3 tài khoản dịch vụ? "
            "Nếu xóa, sẽ không còn ai nhận cảnh báo cho tài khoản *1001, *1002. C/K",
        ),
    ],
)
def test_removing_contacts_from_all_accounts_says_which_are_left_with_no_one(
    app: App, locale: str, contacts: str, words: str
) -> None:
    """*1003 has no contact before the change: it is not the change that leaves it so, and is not named."""
    chat = verified_chat(app, locale)
    walk(chat, [("5", "all.action", ""), ("2", "all.contacts", ""), (contacts, "all.confirm", words)])


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        (
            "en",
            "Remove Maria Lopez from ALL 2 service accounts? "
            "After this, no one will get alerts for any of your service accounts. Y/N",
        ),
        (
            "vi",
            "Xóa Maria Lopez khỏi TẤT CẢ 2 tài khoản dịch vụ? "
            "Nếu xóa, sẽ không còn ai nhận cảnh báo cho tài khoản nào. C/K",
        ),
    ],
)
def test_the_last_contact_of_every_account_removed_is_said_of_them_all(app: App, locale: str, words: str) -> None:
    chat = verified_chat(app, locale, account="700000002", code="731562")
    chat.run("5", "1", "1", "y")  # Maria Lopez, on *2001 only, now on both accounts
    assert contact_accounts(app, "Maria Lopez") == ["3-002-2001", "3-002-2002"]
    walk(chat, [("5", "all.action", ""), ("2", "all.contacts", ""), ("1", "all.confirm", words)])
    chat.say("y")
    assert contact_accounts(app, "Maria Lopez") == []


@pytest.mark.parametrize(
    ("locale", "steps", "expected"),
    [
        (
            "en",
            [
                ("5", "all.action", "ALL service accounts: what would you like to do?"),
                ("1", "all.contacts", "Which contacts?"),
                ("1,2", "all.confirm", "Add Nguyễn Văn An and Trần Thị Bích to ALL 3 service accounts? Y/N"),
                ("y", "contacts.menu", "Saved. 2 contacts are now on ALL service accounts."),
            ],
            {"Nguyễn Văn An": 3, "Trần Thị Bích": 3},
        ),
        (
            "vi",
            [
                ("5", "all.action", "TẤT CẢ các tài khoản dịch vụ: quý khách muốn làm gì?"),
                ("2", "all.contacts", "Xin chọn người. Ví dụ: 1 2 hoặc TẤT CẢ"),
                (
                    "hết",
                    "all.confirm",
                    "Xóa Nguyễn Văn An và Trần Thị Bích khỏi TẤT CẢ 3 tài khoản dịch vụ? "
                    "Nếu xóa, sẽ không còn ai nhận cảnh báo cho tài khoản *1001, *1002. C/K",
                ),
                ("ừ", "contacts.menu", "Đã xóa 2 người liên lạc khỏi TẤT CẢ các tài khoản dịch vụ."),
            ],
            {"Nguyễn Văn An": 0, "Trần Thị Bích": 0},
        ),
    ],
)
def test_add_or_remove_contacts_on_all_service_accounts(
    app: App, locale: str, steps: list[tuple[str, str, str]], expected: dict[str, int]
) -> None:
    chat = verified_chat(app, locale)
    walk(chat, steps)
    assert {name: len(contact_accounts(app, name)) for name in expected} == expected


def test_see_contacts_lists_each_contact_with_its_accounts(app: App) -> None:
    chat = verified_chat(app, "en")
    reply = chat.say("6")
    assert "1 Nguyễn Văn An, (714) 555-0101: *1001, *1002" in reply
    assert "2 Trần Thị Bích, (714) 555-0102: *1002" in reply
    chat.say("2")  # a row of the list opens that contact for editing
    assert chat.state == "edit.field" and "Trần Thị Bích" in chat.last_text


# -- information -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "choice", "words"),
    [
        ("en", "2", "advance notice of rotating outages"),
        ("en", "3", "Cooling Centers are open"),
        ("en", "4", "I-6, BIP, OBMC, CPP, DBP"),
        ("en", "4", "Customer Support: 1-800-990-7788"),
        ("en", "cooling centers", "Cooling Centers are open"),
        ("vi", "2", "có thể được báo trước khi cắt điện"),
        ("vi", "3", "Trạm Làm Mát"),
        ("vi", "tram lam mat", "Trạm Làm Mát sẽ mở cửa"),
        ("vi", "4", "đại diện tài khoản"),
        ("vi", "4", "đại diện tài khoản hoặc gọi 1-800-990-7788"),
    ],
)
def test_information_answers_without_verification(chat: Chat, locale: str, choice: str, words: str) -> None:
    chat.say("")
    chat.say("1" if locale == "vi" else "2")
    assert words in chat.say(choice)
    assert chat.state == "menu"


def test_medical_answer_says_how_to_apply(chat: Chat) -> None:
    chat.run("", "2")
    reply = chat.say("2")
    assert "may qualify for advance notice of rotating outages. To apply, call 1-800-990-7788." in reply
    assert reply.endswith("Reply MENU to see the choices again.")  # not the whole menu again: one SMS
    assert "Cooling Centers are open" in chat.say("3")  # the menu's numbers still work


# -- global commands -------------------------------------------------------------------------------


def test_switching_language_keeps_the_place_and_what_was_typed(app: App) -> None:
    chat = verified_chat(app, "en")
    chat.run("1", "Lê Thị Cúc")
    reply = chat.say("tiếng việt")
    assert chat.state == "add.phone"
    assert "Đã chuyển sang tiếng Việt." in reply and "Xin nhập số di động của Lê Thị Cúc." in reply
    reply = chat.say("EN")
    assert chat.state == "add.phone" and "Mobile number of Lê Thị Cúc?" in reply


def test_short_language_words_are_names_in_a_name_field(app: App) -> None:
    chat = verified_chat(app, "en")
    chat.say("1")
    reply = chat.say("Vi")
    assert chat.state == "add.phone" and "Mobile number of Vi?" in reply


@pytest.mark.parametrize("word", ["0", "back", "Quay lại", "quay lai"])
def test_back_returns_to_the_previous_step(app: App, word: str) -> None:
    chat = verified_chat(app, "en")
    chat.run("1", "Lê Thị Cúc")
    chat.say(word)
    assert chat.state == "add.name"


@pytest.mark.parametrize(
    ("word", "lands"),
    [
        ("MENU", "menu"),
        ("về menu", "menu"),
        ("x", "contacts.menu"),
        ("Hủy bỏ", "contacts.menu"),
        ("hủy", "contacts.menu"),
        ("thôi", "contacts.menu"),
        ("huy bo", "contacts.menu"),
        ("exit", "contacts.menu"),
        ("thoát", "contacts.menu"),
    ],
)
def test_menu_and_cancel_abandon_the_operation_and_save_nothing(app: App, word: str, lands: str) -> None:
    """MENU goes to the main menu; cancelling a change goes back to the contacts menu, to choose again."""
    chat = verified_chat(app, "vi")
    chat.run("1", "Lê Thị Cúc", "(626) 555-0177")
    reply = chat.say(word)
    assert "Đã hủy thao tác." in reply
    assert chat.state == lands
    assert contact_row(app, "Lê Thị Cúc") is None


@pytest.mark.parametrize("word", ["trở về", "Quay về"])
def test_back_words_people_use(app: App, word: str) -> None:
    chat = verified_chat(app, "vi")
    chat.run("1", "Lê Thị Cúc")
    chat.say(word)
    assert chat.state == "add.name"


@pytest.mark.parametrize(
    ("word", "words"),
    [
        ("help", "0: back. X: never mind. MENU: main menu. Tieng Viet: VI. Help: 1-800-990-7788"),
        ("?", "1-800-990-7788"),
        ("giup", "0: back"),
    ],
)
def test_help_at_a_menu_explains_the_commands_and_stays(app: App, word: str, words: str) -> None:
    chat = verified_chat(app, "en")
    assert words in chat.say(word)
    assert chat.state == "contacts.menu"


@pytest.mark.parametrize(
    ("steps", "state", "words"),
    [
        (["1"], "add.name", "Type the person's full name, then the mobile number"),
        (["1", "Lê Thị Cúc"], "add.phone", "Type a mobile number with its area code"),
        (["1", "Lê Thị Cúc 626 555 0177"], "add.email", "Type an email address, or N for no email."),
        (["1", "Lê Thị Cúc 626 555 0177", "n", "1"], "add.accounts", "or the last 4 digits shown, or ALL"),
        (["1", "Lê Thị Cúc 626 555 0177", "n", "1", "1"], "add.confirm", "Y: save this change. N: do not save."),
    ],
)
def test_help_at_a_question_says_how_to_answer_that_question(
    app: App, steps: list[str], state: str, words: str
) -> None:
    chat = verified_chat(app, "en")
    chat.run(*steps)
    reply = chat.say("?")
    assert words in reply and "number of your choice" not in reply
    assert chat.state == state


def test_three_invalid_answers_in_a_row_offer_help_and_the_support_number(chat: Chat) -> None:
    chat.run("", "2", "1")  # English, then verify
    first = chat.say("abc")
    assert "only digits" in first and "1-800-990-7788" not in first
    chat.say("def")
    third = chat.say("ghi")
    assert "Need help? Call Customer Support at 1-800-990-7788, or type ? to see how to answer." in third
    assert chat.state == "verify.account"
    assert "1-800-990-7788" not in chat.say("jkl")  # the count starts again


def test_sign_out_drops_the_verification(app: App) -> None:
    chat = verified_chat(app, "en")
    chat.run("MENU")
    assert "You are signed out." in chat.say("7")
    assert "Customer Account Number" in chat.say("1")


# -- expiry ----------------------------------------------------------------------------------------


def test_an_idle_session_returns_to_the_start_and_drops_the_verification(app: App, clock) -> None:  # type: ignore[no-untyped-def]
    chat = verified_chat(app, "en")
    chat.run("5", "1", "1,2")
    assert chat.state == "all.confirm"
    clock.advance(minutes=15, seconds=1)
    reply = chat.say("y")  # a stale yes must not be acted on
    assert "Nothing was heard from you for 15 minutes, so the unfinished step was not saved." in reply
    assert chat.state == "menu"
    assert contact_accounts(app, "Trần Thị Bích") == ["3-001-1002"]
    assert "Customer Account Number" in chat.say("1")


def test_a_session_just_under_the_idle_limit_goes_on(app: App, clock) -> None:  # type: ignore[no-untyped-def]
    chat = verified_chat(app, "en")
    clock.advance(minutes=14, seconds=59)
    chat.say("1")
    assert chat.state == "add.name"


def test_a_verification_expires_after_twelve_hours_even_when_active(app: App, clock) -> None:  # type: ignore[no-untyped-def]
    chat = verified_chat(app, "en")
    for _ in range(12 * 6):
        clock.advance(minutes=10)
        chat.say("?")
    assert chat.state == "contacts.menu"
    clock.advance(minutes=10)
    reply = chat.say("?")
    assert "please verify your account again" in reply and chat.state == "menu"


# -- scope -----------------------------------------------------------------------------------------


def test_a_customer_sees_only_its_own_service_accounts_and_contacts(app: App) -> None:
    chat = verified_chat(app, "en", account="700000002", code="731562")
    assert "Maria Lopez" in chat.say("2") and "Nguyễn" not in chat.last_text
    reply = chat.say("1")
    assert "*2002" in reply and "*1001" not in reply  # Maria is on *2001 already


def test_contacts_of_one_customer_cannot_be_counted_in_another(app: App) -> None:
    with app.db.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(ContactAssignment)).scalar_one()
    chat = verified_chat(app, "en", account="700000002", code="731562")
    chat.run("5", "1", "ALL", "y")
    with app.db.engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(ContactAssignment)).scalar_one()
    assert after == before + 1  # Maria Lopez onto her customer's second account only


def test_a_turn_that_fails_is_rolled_back_whole_and_the_customer_is_told(app: App) -> None:
    chat = verified_chat(app, "vi")
    chat.run("1", "Lê Thị Cúc", "(626) 555-0177", "k", "1", "1")
    with app.db.engine.begin() as conn:  # the audit log goes away: the save cannot complete
        conn.exec_driver_sql("ALTER TABLE audit_log RENAME TO audit_log_away")
    try:
        reply = chat.say("c")
    finally:
        with app.db.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE audit_log_away RENAME TO audit_log")
    assert "Xin lỗi, đã xảy ra lỗi nên chưa có gì thay đổi." in reply and "1-800-990-7788" in reply
    assert contact_row(app, "Lê Thị Cúc") is None
    with app.db.engine.connect() as conn:
        state = conn.execute(select(ChatSession.state).where(ChatSession.address == chat.address)).scalar_one()
    assert state == "add.confirm"  # the session did not move either
