"""Parsers and displays for the values a dialog collects: names, phones, emails, languages, yes/no.

Each parser takes the cleaned text and returns the value or :class:`Invalid` with a hint. They accept
what people really type (``(626) 555-0100``, ``khong``, ``tat ca``) and refuse anything else whole.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from dialogs.engine import NO_WORDS, YES_WORDS, Choice, Invalid, Turn
from dialogs.ports import ContactView, ServiceAccountView
from dialogs.text import N_, NP_, Literal, Msg, Regions, fold, fold_digits, has_lookalike_digits

LANGUAGE_NAMES = {"vi": N_("Vietnamese"), "en": N_("English")}
LANGUAGE_CHOICES = (
    Choice("vi", Msg.native(N_("Vietnamese"), "vi"), ("TIENG VIET", "VIET", "VI", "VIETNAMESE")),
    Choice("en", Msg.native(N_("English"), "en"), ("ENGLISH", "TIENG ANH", "EN", "ANH")),
)
_NAME_PUNCT = set(" .'-’")
_SKIP_WORDS = frozenset(NO_WORDS | {"-", "BO QUA", "SKIP", "NONE", "KHONG CO"})
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
    if not ok:
        return Invalid(Msg.of(N_("Please type the name with letters only, for example: Nguyen Van An.")))
    return name


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
        return Invalid(Msg.of(N_("That is not a valid mobile number. Example: (626) 555-0100")))
    return number


def email_address(text: str) -> str | None:
    """The one rule for a contact's email, in the dialogs and in the import (``email-validator``,
    without a DNS look-up): the address as stored (lower case), or None when it is not one."""
    if len(text) > 254:
        return None
    try:
        checked = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return str(checked.normalized).lower()


def parse_email(turn: Turn, text: str) -> str | Invalid:
    """An email address, or the empty string when the customer skips it (N, K, khong, -)."""
    if fold(text) in _SKIP_WORDS:
        return ""
    email = email_address(text)
    if email is None:
        return Invalid(Msg.of(N_("That email does not look right. Type it again, or N to skip.")))
    return email


def parse_yes_no(turn: Turn, text: str) -> bool | Invalid:
    """Y/N, C/K, có/không (with or without diacritics)."""
    folded = fold(text)
    if folded in YES_WORDS:
        return True
    if folded in NO_WORDS:
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


def show_language(code: str) -> Msg:
    """A language's name in the reader's language."""
    return Msg.of(LANGUAGE_NAMES.get(code, LANGUAGE_NAMES["en"]))


def service_account_label(account: ServiceAccountView) -> Msg:
    """How a customer recognises a service account: masked number, address, outage group."""
    return Msg.of(
        N_("*{last4} {address}, group {group}"),
        last4=Literal(account.number[-4:]),
        address=Literal(account.address),
        group=Literal(account.outage_group),
    )


def short_account(account: ServiceAccountView) -> Literal:
    """A service account in a read-back: masked number only."""
    return Literal("*" + account.number[-4:])


def contact_label(contact: ContactView) -> Msg:
    """A contact in a list: name and the last digits of the phone."""
    if contact.phone:
        return Msg.of(N_("{name} *{last4}"), name=Literal(contact.name), last4=Literal(contact.phone[-4:]))
    return Msg.of(N_("{name} ({email})"), name=Literal(contact.name), email=Literal(contact.email or ""))


def account_choices(accounts: Iterable[ServiceAccountView]) -> list[Choice]:
    """Service accounts as options keyed by id."""
    return [Choice(str(a.id), service_account_label(a)) for a in accounts]


def contact_choices(contacts: Iterable[ContactView]) -> list[Choice]:
    """Contacts as options keyed by id."""
    return [Choice(str(c.id), contact_label(c)) for c in contacts]


def accounts_named(turn: Turn, ids: Sequence[Any]) -> list[Literal] | Msg:
    """A read-back of chosen service accounts: "all 5 service accounts" or "*4521, *4522"."""
    wanted = {int(i) for i in ids}
    accounts = turn.ports.service_accounts(turn.customer_id)
    if len(accounts) > 1 and wanted == {a.id for a in accounts}:
        return Msg.count(NP_("ALL {n} service account", "ALL {n} service accounts"), len(accounts))
    return [short_account(a) for a in accounts if a.id in wanted]


def find_contact(turn: Turn, contact_id: Any) -> ContactView | None:
    """The verified customer's contact with this id, if it still exists."""
    for contact in turn.ports.contacts(turn.customer_id):
        if contact.id == int(contact_id):
            return contact
    return None
