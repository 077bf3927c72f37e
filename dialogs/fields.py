"""Parsers and displays for the values a dialog collects: names, phones, emails, languages, yes/no.

Each parser takes the cleaned text and returns the value or :class:`Invalid` with a hint. They accept
what people really type (``(626) 555-0100``, ``khong``, ``tat ca``) and refuse anything else whole.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from dialogs.engine import NO_WORDS, YES_WORDS, Choice, Invalid, Turn
from dialogs.ports import ContactView, ServiceAccountView
from dialogs.text import N_, NP_, Literal, Msg, Regions, fold, fold_digits, has_lookalike_digits, tidy, trimmed

# a contact's language, in a sentence ("alerts in Vietnamese", "nhận tin bằng tiếng Việt")
LANGUAGE_NAMES = {"vi": N_("in Vietnamese"), "en": N_("in English")}
# the first question offers each language in its own words; a contact's language is asked in the
# reader's (an English text with "Tiếng Việt" in it would cost twice as much as an SMS)
FIRST_LANGUAGE_CHOICES = (
    Choice("vi", Msg.native(N_("Vietnamese"), "vi"), ("TIENG VIET", "VIET", "VI", "VIETNAMESE")),
    Choice("en", Msg.native(N_("English"), "en"), ("ENGLISH", "TIENG ANH", "EN", "ANH")),
)
LANGUAGE_CHOICES = (
    Choice("vi", Msg.of(N_("Vietnamese")), FIRST_LANGUAGE_CHOICES[0].aliases),
    Choice("en", Msg.of(N_("English")), FIRST_LANGUAGE_CHOICES[1].aliases),
)
_NAME_PUNCT = set(" .'-’")
# Answers to some other question, typed where a name is asked ("dạ vâng" to "add a contact?"): no one
# is called that. Compared with their marks (lowercase, NFKC): "có" is an answer, "Cò" and "Cô" are
# names; unmarked forms only where they are no name either ("co", "khong"). Words that are also names
# ("Dung" and "đúng", "Hồng" and "hong", "Lưu", "Vàng" and "vang", "Chua") are not here; "ko" is, as the
# commonest way to text "không": a surname alone gets the question again, which asks for the full name.
_ANSWER_WORDS = frozenset(
    {"có", "không", "dạ", "vâng", "ừ", "ừm", "ờ", "ạ", "rồi", "được", "chưa", "hông", "okay", "oke", "oki", "ok"}
    | {"co", "khong", "duoc", "dc", "đc", "roi", "um", "yes", "no", "yeah", "yep", "yup", "nope", "nah", "sure"}
    | {"right", "correct", "alright", "alo", "allo", "alô", "o.k.", "o.k", "hok", "hem", "hổng", "ko", "hi", "hey"}
)
_ANSWER_PHRASES = frozenset(
    {"dạ vâng", "dạ được", "dạ rồi", "được rồi", "đúng rồi", "đúng vậy", "chính xác", "có lưu", "đồng ý", "có chứ"}
    | {"không có", "chưa có", "không cần", "không biết", "ko co", "khong co", "chua co", "hong co", "hok co"}
    | {"dung roi", "dung vay", "chinh xac", "co luu", "dong y", "co chu", "khong can", "khong biet", "duoc roi"}
    | {"of course", "yes sir", "yes please", "no thanks", "a lô", "a lo", "ok luôn", "k co", "hông có"}
)
_NAME_LEADING = frozenset({"dạ", "da", "vâng", "ừ", "ờ", "oh", "uh", "um", "ừm", "well"})  # "vang" may be Vàng
_NAME_TRAILING = frozenset({"ạ", "a", "nhé", "nhe", "nha", "nhá", "ah", "sir", "please", "luôn", "luon"})


def _an_answer(name: str) -> bool:
    """Whether ``name`` is a yes, a no or a greeting ("dạ vâng", "có ạ", "ok ok"), not anyone's name."""
    words = [word.rstrip(".!,;:~") for word in unicodedata.normalize("NFKC", name).lower().split()]
    words = [word for word in words if word]
    while len(words) > 1 and words[0] in _NAME_LEADING:
        words = words[1:]
    while len(words) > 1 and words[-1] in _NAME_TRAILING:
        words = words[:-1]
    return " ".join(words) in _ANSWER_PHRASES or all(word in _ANSWER_WORDS for word in words)


_BEFORE_EMAIL = frozenset({"EMAIL", "EMAIL:", "E-MAIL", "E-MAIL:", "MAIL:", "LA", "LA:", "IS", "IT'S", "MY"})
_AFTER_EMAIL = frozenset({"A", "NHE", "NHA", "AH"})
_NOT_IN_EMAIL = frozenset({"So", "Sk", "Cn", "Co", "Cs"})  # emoji and other symbols, unassigned, private
_SKIP_WORDS = frozenset(
    NO_WORDS
    | {"-", "BO QUA", "SKIP", "NONE", "KHONG CO", "KO CO", "K CO", "CHUA CO", "KHONG CAN", "NO EMAIL", "KHONG EMAIL"}
    | {"KHONG CO EMAIL", "CHUA CO EMAIL", "N/A", "NA", "NOTHING", "NO EMAIL ADDRESS", "KHONG DUNG EMAIL", "XOA"}
    | {"DELETE", "REMOVE", "XOA EMAIL", "BO EMAIL", "DONT HAVE ONE", "DON'T HAVE ONE", "DONT HAVE", "DON'T HAVE"}
    | {"I DONT HAVE ONE", "I DON'T HAVE ONE", "NO EMAIL ADDRESS", "HOK CO", "HONG CO", "KHONG CO A"}
)
# street suffixes: a row shows the street of an address written without commas, not its city
_STREET_ENDS = frozenset(
    {"ST", "STREET", "AVE", "AVENUE", "BLVD", "BOULEVARD", "DR", "DRIVE", "RD", "ROAD", "LN", "LANE", "WAY", "CT"}
    | {"COURT", "PL", "PLACE", "PKWY", "HWY", "CIR", "TER", "TRL", "SQ"}
)
_STREET_CHARS = 22
_PHONE_TYPES = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}


def parse_name(turn: Turn, text: str) -> str | Invalid:
    """A person's name: 2 to 60 characters of Latin letters (Vietnamese included), spaces, . ' -."""
    name = unicodedata.normalize("NFC", text.strip())
    letters = [ch for ch in name if ch.isalpha()]
    ok = (
        2 <= len(name) <= 60
        and len(letters) >= 2
        and all(
            ch in _NAME_PUNCT
            or unicodedata.category(ch).startswith("M")
            or (ch.isalpha() and "LATIN" in unicodedata.name(ch, ""))
            for ch in name
        )
    )
    if len(name) > 60:
        return Invalid(Msg.of(N_("That name is too long: at most 60 characters, please.")))
    if not ok:
        return Invalid(Msg.of(N_("Please type the name with letters only, for example: Nguyen Van An.")))
    if _an_answer(name):
        return Invalid(Msg.of(N_("Please type the person's full name, for example: Nguyen Van An. X: never mind.")))
    return name


_TRAILING_NUMBER = re.compile(r"[+(]?[0-9][0-9\s().\-]*$")


def parse_name_and_phone(turn: Turn, text: str) -> tuple[str, str | Invalid | None] | Invalid:
    """A name, and the mobile number typed after it if there is one ("Lê Thị Cúc 714 555 0177").

    The number is what follows the name from its first digit (or "+" or "(") to the end, when it has
    at least 7 digits. Returns the name and the number (E.164), or the number's :class:`Invalid`
    (the name is still good), or None when only a name was typed.
    """
    match = _TRAILING_NUMBER.search(fold_digits(text))
    if match is None or sum(ch.isdigit() for ch in match.group()) < 7:
        name = parse_name(turn, text)
        return name if isinstance(name, Invalid) else (name, None)
    name = parse_name(turn, text[: match.start()].strip().rstrip(",;:-").strip())
    if isinstance(name, Invalid):
        return name
    return name, parse_phone(turn, text[match.start() :].strip())


class PhoneProblem(enum.Enum):
    """Why a number cannot be a contact's."""

    INVALID = "invalid"  # not a valid mobile number
    OUTSIDE = "outside"  # valid, but in a region alerts do not go to


def alert_number(text: str, region: str, allowed: Sequence[str]) -> str | PhoneProblem:
    """The one rule for a contact's number, in the dialogs and in the import: E.164 (``+16265550100``).

    ``allowed`` are ISO 3166 regions: +1 also covers Caribbean countries (+1-268, +1-876, ...) that
    are billed as international, which is how SMS pumping profits. Digits of any script count
    (``(６２６) ５５５-０１００``); a sign that only looks like a digit (``²``, ``①``, ``½``) makes the
    whole number invalid rather than being skipped, as ``phonenumbers`` would skip a leading ``¹``.
    """
    if len(text) > 32 or has_lookalike_digits(text):
        return PhoneProblem.INVALID
    try:
        number = phonenumbers.parse(fold_digits(text), region)
    except phonenumbers.NumberParseException:
        return PhoneProblem.INVALID
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in _PHONE_TYPES:
        return PhoneProblem.INVALID
    if phonenumbers.region_code_for_number(number) not in allowed:
        return PhoneProblem.OUTSIDE
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def parse_phone(turn: Turn, text: str) -> str | Invalid:
    """A mobile number in any common format, in one of the allowed regions, as E.164."""
    allowed = turn.settings.phone_regions
    number = alert_number(text, turn.settings.region, allowed)
    if number is PhoneProblem.OUTSIDE:
        return Invalid(
            Msg.of(
                N_("Alerts can go only to mobile numbers in {regions}. Please type another number."),
                regions=Regions(tuple(allowed)),
            )
        )
    if number is PhoneProblem.INVALID:
        digits = [ch for ch in fold_digits(text) if "0" <= ch <= "9"]
        if has_lookalike_digits(text) or len(text) > 32:
            return Invalid(Msg.of(N_("That is not a valid mobile number. Example: (626) 555-0100")))
        if len(digits) == 7 and turn.settings.region in ("US", "CA"):
            return Invalid(Msg.of(N_("Please add the area code, for example (626) 555-0100.")))
        if 0 < len(digits) < 7:
            return Invalid(
                Msg.of(N_("That number is too short. Please type all 10 digits, for example (626) 555-0100."))
            )
        return Invalid(Msg.of(N_("That is not a valid mobile number. Example: (626) 555-0100")))
    return number


def email_address(text: str) -> str | None:
    """The one rule for a contact's email, in the dialogs and in the import (``email-validator``,
    without a DNS look-up): the address as stored (lower case), or None when it is not one."""
    if len(text) > 254 or any(unicodedata.category(ch) in _NOT_IN_EMAIL for ch in text):
        return None
    try:
        checked = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return str(checked.normalized).lower()


def _email(text: str, hint: str) -> str | Invalid:
    if tidy(fold(text)) in _SKIP_WORDS:
        return ""
    words = text.split()
    at = [i for i, word in enumerate(words) if "@" in word]
    if len(at) == 1 and len(words) > 1:  # "email: lan@gmail.com", "lan@gmail.com ạ"
        before, after = fold(" ".join(words[: at[0]])).split(), tidy(fold(" ".join(words[at[0] + 1 :]))).split()
        if all(w in _BEFORE_EMAIL for w in before) and all(w in _AFTER_EMAIL for w in after):
            text = words[at[0]]
    email = email_address(text.strip().rstrip(".,;!"))  # "lan@gmail.com." ends a sentence
    if email is None:
        return Invalid(Msg.of(hint))
    return email


def parse_email(turn: Turn, text: str) -> str | Invalid:
    """An email address, or the empty string when there is none (N, K, không có, no email, -)."""
    return _email(text, N_("That email does not look right. Type it again, or N for no email."))


def parse_new_email(turn: Turn, text: str) -> str | Invalid:
    """A contact's new email, or the empty string to remove the one on file."""
    return _email(text, N_("That email does not look right. Type it again, or N to remove the email."))


def parse_yes_no(turn: Turn, text: str) -> bool | Invalid:
    """Y/N, C/K, có/không (with or without diacritics), with the words around them ("dạ có", "không ạ").

    "dung" is "đúng" (right, yes), but typed with its other marks it is "dừng" (stop): a no.
    """
    words = tidy(fold(text))
    if words.startswith("DUNG") and "ừ" in text.lower():
        return False
    if words in YES_WORDS:
        return True
    if words in NO_WORDS:
        return False
    return Invalid(Msg.of(N_("Please answer Y (yes) or N (no).")))


def show_phone(e164: str | None) -> Literal | Msg:
    """A phone number as people in its country write it: ``(626) 555-0100``."""
    if not e164:
        return Msg.of(N_("no mobile number"))
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return Literal(e164)
    return Literal(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))


def show_email(email: str | None) -> Msg | Literal:
    """An email, or the words "no email"."""
    return Literal(email) if email else Msg.of(N_("no email"))


def language_label(code: str) -> Msg | Literal:
    """A language's name on a line of its own ("Tiếng Việt"), in the reader's language."""
    for choice in LANGUAGE_CHOICES:
        if choice.key == code:
            return choice.label
    return LANGUAGE_CHOICES[1].label


def show_language(code: str) -> Msg:
    """A language's name in the reader's language."""
    return Msg.of(LANGUAGE_NAMES.get(code, LANGUAGE_NAMES["en"]))


def street(address: str) -> str:
    """The street part of an address, short enough for a list row: up to the first comma, or up to
    the street's suffix ("9200 Bolsa Ave Westminster" -> "9200 Bolsa Ave"), at most 22 characters."""
    head = address.split(",", 1)[0].strip()
    words = head.split()
    for i, word in enumerate(words[1:], 2):
        if word.upper().rstrip(".") in _STREET_ENDS:
            head = " ".join(words[:i])
            break
    if len(head) <= _STREET_CHARS:
        return head
    return head[:_STREET_CHARS].rsplit(" ", 1)[0] if " " in head[:_STREET_CHARS] else head[:_STREET_CHARS]


def service_account_label(account: ServiceAccountView) -> Literal:
    """How a customer recognises a service account in a list: its last four digits and street."""
    return Literal(f"*{account.number[-4:]} {street(account.address)}")


def short_account(account: ServiceAccountView) -> Literal:
    """A service account in a read-back: its last four digits."""
    return Literal("*" + account.number[-4:])


def contact_label(contact: ContactView) -> Msg | Literal:
    """A contact in a list: name and mobile number (or email)."""
    if contact.phone:
        return Msg.of(N_("{name}, {phone}"), name=Literal(contact.name), phone=show_phone(contact.phone))
    return Msg.of(N_("{name} ({email})"), name=Literal(contact.name), email=Literal(contact.email or ""))


def account_choices(accounts: Sequence[ServiceAccountView], offered: Iterable[int] | None = None) -> list[Choice]:
    """Service accounts as options keyed by id, numbered by their place among all ``accounts`` (so a
    number means the same account in every list), only those ``offered`` (all by default)."""
    wanted = None if offered is None else set(offered)
    return [
        Choice(str(a.id), service_account_label(a), number=i, digits=a.number[-4:])
        for i, a in enumerate(accounts, 1)
        if wanted is None or a.id in wanted
    ]


def contact_choices(contacts: Sequence[ContactView], offered: Iterable[int] | None = None) -> list[Choice]:
    """Contacts as options keyed by id, numbered by their place among all ``contacts``."""
    wanted = None if offered is None else set(offered)
    return [
        Choice(str(c.id), contact_label(c), number=i, digits=(c.phone or "")[-4:])
        for i, c in enumerate(contacts, 1)
        if wanted is None or c.id in wanted
    ]


def accounts_brief(
    chosen: Sequence[ServiceAccountView], total: int, most: int, *, counted: bool = False
) -> list[Literal] | Msg:
    """Service accounts in a sentence or a row: "ALL 5 service accounts" when they are all the
    customer's, "*4521, *4522" when there are at most ``most``, else the first ``most`` and how many
    more, or (``counted``: a row, where a name and number come first) only how many (a customer with
    100 service accounts gets a line, not 600 characters)."""
    if total > 1 and len(chosen) == total:
        return Msg.count(NP_("ALL {n} service account", "ALL {n} service accounts"), total)
    shown = [short_account(a) for a in chosen]
    if len(shown) <= most:
        return shown
    if counted:
        return Msg.count(NP_("{n} service account", "{n} service accounts"), len(shown))
    return Msg.count(NP_("{first} and {n} more", "{first} and {n} more"), len(shown) - most, first=shown[:most])


def accounts_named(turn: Turn, ids: Sequence[Any]) -> list[Literal] | Msg:
    """A read-back of chosen service accounts: "ALL 5 service accounts", "*4521, *4522", or the
    first three and how many more."""
    wanted = {int(i) for i in ids}
    accounts = turn.ports.service_accounts(turn.customer_id)
    return accounts_brief([a for a in accounts if a.id in wanted], len(accounts), most=3)


def find_contact(turn: Turn, contact_id: Any) -> ContactView | None:
    """The verified customer's contact with this id, if it still exists."""
    for contact in turn.ports.contacts(turn.customer_id):
        if contact.id == int(contact_id):
            return contact
    return None


_GROUP = re.compile(r"[A-Z0-9]{2,20}")
GROUP_HINT = N_("Please type the rotating outage group as printed on your bill, for example A012.")


def group_of(text: str) -> str | None:
    """A rotating outage group as the bill prints it, whatever the case and spaces ("a 012" -> "A012").

    Letters and digits only, with at least one digit; None for anything else.
    """
    words = fold(trimmed(text)).replace("-", " ").split()
    if words and words[0] in ("NHOM", "GROUP"):  # "nhóm A012", "group A012"
        words = words[1:]
    group = "".join(words)
    if _GROUP.fullmatch(group) and any(ch.isdigit() for ch in group):
        return group
    return None


def parse_group(turn: Turn, text: str) -> str | Invalid:
    """A rotating outage group that some service account is in; otherwise a hint, and the question again."""
    group = group_of(text)
    if group is None:
        return Invalid(Msg.of(GROUP_HINT))
    if not turn.ports.group_exists(group):
        return Invalid(
            Msg.of(N_("There is no rotating outage group {group}. Please check your bill."), group=Literal(group))
        )
    return group
