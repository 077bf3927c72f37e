"""Verification: one neutral answer, lockout per account, throttle per address, nothing in the clear."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.storage.models import AuditEntry, CustomerAccount
from tests.conftest import Chat, Clock

NEUTRAL = (
    "We could not verify that account number and access code. Please check both; "
    "if they are right, call 1-800-990-7788."
)


def attempt(chat: Chat, account: str, code: str) -> str:
    if not chat.state:
        chat.run("", "2")
    if chat.state != "verify.account":
        chat.say("1")
    chat.say(account)
    return chat.say(code)


@pytest.fixture
def english(chat: Chat) -> Chat:
    chat.run("", "2")
    return chat


def test_unknown_account_wrong_code_and_locked_account_get_the_same_words(app: App, english: Chat) -> None:
    unknown = attempt(english, "123456789", "482913")
    wrong = attempt(english, "700000001", "000000")
    for _ in range(4):
        attempt(english, "700000001", "000000")  # fifth consecutive failure locks the account
    locked_right_code = attempt(english, "700000001", "482913")
    assert unknown == wrong == locked_right_code
    assert NEUTRAL in unknown
    assert english.state == "verify.account"


def test_five_consecutive_failures_lock_the_account_for_fifteen_minutes(app: App, english: Chat, clock: Clock) -> None:
    for _ in range(5):
        attempt(english, "700000001", "wrong")
    other = Chat(app, address="+16265550999")
    other.run("", "2")
    assert NEUTRAL in attempt(other, "700000001", "482913")  # locked, whoever asks
    clock.advance(minutes=15, seconds=1)
    assert "the unfinished step was not saved" in other.say("")  # idle as long as the lock: back to the menu
    assert "Verified: Pho Bolsa LLC" in attempt(other, "700000001", "482913")


def test_a_success_resets_the_failure_count(app: App, english: Chat) -> None:
    for _ in range(4):
        attempt(english, "700000001", "wrong")
    assert "Verified" in attempt(english, "700000001", "482913")
    with app.db.engine.connect() as conn:
        failed = conn.execute(
            select(CustomerAccount.failed_attempts).where(CustomerAccount.number == "700000001")
        ).scalar_one()
    assert failed == 0


def test_an_address_is_throttled_after_ten_failures_across_accounts(app: App, english: Chat, clock: Clock) -> None:
    for i in range(10):
        assert NEUTRAL in attempt(english, f"99999999{i}", "000000")
    reply = attempt(english, "700000002", "731562")  # even the right pair
    assert "Too many attempts. Please wait 15 minutes, or call 1-800-990-7788." in reply
    assert english.state == "verify.account"  # where the customer will go on, not the main menu
    assert "access code" in english.say("700000002") and english.state == "verify.code"  # understood
    english.say("0")
    clock.advance(minutes=15, seconds=1)
    english.say("")
    assert "Verified: Sunrise Bakery Inc" in attempt(english, "700000002", "731562")


@pytest.mark.parametrize(
    "words",
    [
        *("quên", "Quên rồi ạ", "không có", "chưa có mã", "tôi quên rồi", "em không nhớ mã", "quên mất rồi"),
        *("I forgot", "I forgot my code", "no code", "I don't have it", "?", "giúp"),
    ],
)
def test_words_that_say_there_is_no_code_get_help_and_never_count_toward_the_lockout(
    app: App, english: Chat, words: str
) -> None:
    english.run("1", "700000001")
    for _ in range(6):  # more than the five failures that would lock the account
        reply = english.say(words)
        assert "The access code is sent to the primary contact named on the account." in reply
        assert "Need help?" not in reply  # asking for help is not a mistake
        assert english.state == "verify.code"
    with app.db.engine.connect() as conn:
        failed = conn.execute(
            select(CustomerAccount.failed_attempts).where(CustomerAccount.number == "700000001")
        ).scalar_one()
        actions = [a for (a,) in conn.execute(select(AuditEntry.action)) if a.startswith("verify.")]
    assert failed == 0 and actions == []
    assert "Verified" in english.say("482913")


def test_the_failure_text_is_true_for_a_locked_account_too(app: App, english: Chat) -> None:
    for _ in range(5):
        attempt(english, "700000001", "000000")
    reply = attempt(english, "700000001", "482913")  # the right code, but locked
    assert NEUTRAL in reply and "try again" not in reply.lower()


def test_the_throttle_survives_a_session_reset(app: App, english: Chat, clock: Clock) -> None:
    for i in range(10):
        attempt(english, f"99999999{i}", "000000")
    clock.advance(minutes=14)  # within the window, but the session was idle: it resets
    english.say("2")
    assert "Too many attempts" in attempt(english, "700000002", "731562")


def test_the_access_code_is_stored_nowhere_in_the_clear(app: App, english: Chat) -> None:
    attempt(english, "700000001", "482913")
    attempt(Chat(app, address="x"), "700000001", "wrongcode77")
    url = app.settings.database_url
    if not url.startswith("sqlite"):
        pytest.skip("file check is for SQLite")
    app.close()
    raw = b"".join(p.read_bytes() for p in Path(url.removeprefix("sqlite:///")).parent.glob("outagebot.db*"))
    for secret in (b"482913", b"731562", b"wrongcode77"):
        assert secret not in raw
        assert secret.decode().encode("utf-16-le") not in raw


def test_failures_are_audited_with_the_account_number_masked(app: App, english: Chat) -> None:
    attempt(english, "700000001", "000000")
    with app.db.engine.connect() as conn:
        entry = conn.execute(select(AuditEntry.action, AuditEntry.details).order_by(AuditEntry.id.desc())).first()
    assert entry is not None
    assert entry.action == "verify.failure"
    assert entry.details == {"account": "*****0001", "reason": "wrong_code"}


# digits of other scripts are digits (tests/bot/test_typed_numbers.py); signs that look like digits are not
@pytest.mark.parametrize(
    ("number", "hint"),
    [
        ("12345", "has 6 to 20 digits"),  # all digits, of the wrong length: the length is what is wrong
        ("7000000011234567890123", "has 6 to 20 digits"),
        ("abcdefgh", "only digits"),
        ("７００００００0¹", "only digits"),
        ("⑦⓪⓪⓪⓪⓪⓪⓪①", "only digits"),
    ],
)
def test_account_numbers_that_cannot_exist_are_refused_before_any_lookup(english: Chat, number: str, hint: str) -> None:
    english.say("1")
    reply = english.say(number)
    assert hint in reply and english.state == "verify.account"


def test_raising_the_hash_cost_rehashes_each_code_at_its_next_verification(app: App, clock: Clock) -> None:
    from bot.app import build
    from bot.security import Cost
    from tests.conftest import make_settings

    raised = build(make_settings(app.settings.database_url, scrypt_n=64), clock=clock, migrate_db=False)
    try:
        assert raised.hasher.unknown_cost == Cost(16)  # what the imported hashes cost, not today's 64
        chat = Chat(raised)
        chat.run("", "2")
        assert "Verified" in attempt(chat, "700000001", "482913")
        with raised.db.engine.connect() as conn:
            row = conn.execute(
                select(CustomerAccount.access_code_hash, CustomerAccount.credential_version).where(
                    CustomerAccount.number == "700000001"
                )
            ).one()
            audit = conn.execute(select(AuditEntry.details).where(AuditEntry.action == "verify.success")).scalar_one()
        assert row.access_code_hash.startswith("scrypt$6$8$1$") and row.credential_version == 0
        assert audit == {"rehashed": True}
        assert "Add new contact" in chat.say("")  # the session stays verified
        again = Chat(raised, address="+16265550998")
        again.run("", "2")
        assert "Verified" in attempt(again, "700000001", "482913")
    finally:
        raised.close()
