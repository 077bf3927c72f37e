"""The CIS export's CSV format: its columns, and the validation of each row against what the tables hold.

One row is a service account of a customer account, with one contact on it or none. Both
``import-accounts`` (reading) and ``export-contacts`` (writing) use this format. Every limit below is
read from the models, so a value that passes validation fits its column on SQLite and PostgreSQL
alike (PostgreSQL refuses what does not fit; SQLite would store it anyway).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import IO

from sqlalchemy import Numeric, String

from bot.i18n import OP
from bot.storage.models import Base, Contact, CustomerAccount, ServiceAccount, table
from dialogs.fields import PhoneProblem, alert_number, email_address
from dialogs.text import Listed, Literal, Msg, fold_digits

DEFAULT_REGIONS = ("US", "CA")  # OUTAGEBOT_PHONE_REGIONS's default

COLUMNS = (
    "customer_account",
    "access_code",
    "customer_name",
    "service_account",
    "service_address",
    "outage_group",
    "demand_kw",
    "contact_name",
    "contact_phone",
    "contact_email",
    "contact_language",
)
LANGUAGES = {
    "": "en",
    "en": "en",
    "english": "en",
    "vi": "vi",
    "vietnamese": "vi",
    "tieng viet": "vi",
    "tiếng việt": "vi",
}
CODE_MAX = 64  # access codes are hashed, never stored: this limit is ours, not a column's


def _length(model: type[Base], column: str) -> int:
    kind = table(model).c[column].type
    assert isinstance(kind, String) and kind.length, column
    return kind.length


def _numeric_limits(model: type[Base], column: str) -> tuple[Decimal, Decimal]:
    """The step and the largest value a ``Numeric(precision, scale)`` column holds."""
    kind = table(model).c[column].type
    assert isinstance(kind, Numeric) and kind.precision is not None and kind.scale is not None, column
    step = Decimal(1).scaleb(-kind.scale)
    return step, Decimal(10) ** (kind.precision - kind.scale) - step


CUSTOMER_MAX = _length(CustomerAccount, "number")
NAME_MAX = _length(CustomerAccount, "name")
ACCOUNT_MAX = _length(ServiceAccount, "number")
ADDRESS_MAX = _length(ServiceAccount, "service_address")
GROUP_MAX = _length(ServiceAccount, "outage_group")
CONTACT_NAME_MAX = _length(Contact, "name")
EMAIL_MAX = _length(Contact, "email")
PHONE_MAX = _length(Contact, "phone")
KW_STEP, KW_MAX = _numeric_limits(ServiceAccount, "demand_kw")

_DIGITS = re.compile(rf"^[0-9]{{6,{CUSTOMER_MAX}}}$")  # after fold_digits: the rule a customer types by
_SA_NUMBER = re.compile(rf"^[0-9A-Za-z-]{{4,{ACCOUNT_MAX}}}$")


@dataclass(frozen=True, slots=True)
class Row:
    """One valid CSV row, normalized. ``code`` is empty when the row keeps the stored access code."""

    line: int
    customer: str
    code: str
    customer_name: str
    service_account: str
    address: str
    group: str
    demand_kw: Decimal | None
    contact_name: str
    phone: str | None
    email: str | None
    language: str

    @property
    def contact_key(self) -> str | None:
        """How the CIS names a contact within its customer: by phone, else by email."""
        if not self.contact_name:
            return None
        return contact_key(self.phone, self.email)


def contact_key(phone: str | None, email: str | None) -> str:
    """A contact's key within its customer: the phone (E.164), else ``email:`` and the email."""
    return phone or f"email:{email}"


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that cannot be imported, and every reason why (catalog messages for the operator)."""

    line: int
    problems: tuple[Msg, ...]


def _field(raw: dict[str, str | None], name: str) -> str:
    value = raw.get(name) or ""
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
    return " ".join(value.split())


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # Unicode Cc, less tab and line ends
_SPACE = re.compile(r"\s")


def _controls(raw: dict[str, str | None]) -> list[Msg]:
    if not _CONTROL.search("".join(v for v in raw.values() if isinstance(v, str))):
        return []
    return [
        OP("{column} contains a control character", column=Literal(name))
        for name in COLUMNS
        if _CONTROL.search(raw.get(name) or "")
    ]


@lru_cache(maxsize=4096)  # exports repeat the same few values
def _demand(text: str) -> tuple[Decimal | None, Msg | None]:
    """kW rounded to the column's step as the database would store it, or why it cannot be stored."""
    if not text:
        return None, None
    value = Literal(repr(text[:20]))
    try:
        demand = Decimal(text)
    except InvalidOperation:
        demand = Decimal("NaN")
    if not demand.is_finite() or demand < 0:
        return None, OP("demand_kw is not a number of kW: {value}", value=value)
    if demand <= KW_MAX + 1:  # before rounding: a huge exponent would make quantize() itself fail
        demand = demand.quantize(KW_STEP, rounding=ROUND_HALF_UP)
        if demand <= KW_MAX:
            return demand, None
    return None, OP(
        "demand_kw does not fit the database (at most {limit} kW): {value}", limit=Literal(str(KW_MAX)), value=value
    )


def _shown(text: str, limit: int = 40) -> Literal:
    """A bad value as the operator sees it: quoted, cut to ``limit`` characters, its length said if cut."""
    if len(text) <= limit:
        return Literal(repr(text))
    return Literal(f"{text[:limit]!r}... ({len(text)} characters)")


def parse_row(
    line: int,
    raw: dict[str, str | None],
    region: str,
    phone_cache: dict[str, str | PhoneProblem],
    regions: Sequence[str] = DEFAULT_REGIONS,
) -> Row | BadRow:
    """Validate and normalize one CSV record."""
    f = {name: _field(raw, name) for name in COLUMNS}
    f["customer_account"] = fold_digits(f["customer_account"])
    problems = _controls(raw)
    if not _DIGITS.match(f["customer_account"]):
        problems.append(OP("customer_account must be 6 to 20 digits: {value}", value=_shown(f["customer_account"])))
    code = fold_digits((raw.get("access_code") or "").strip())  # as dialogs.verify reads a typed code
    if len(code) > CODE_MAX or _SPACE.search(code):
        problems.append(
            OP(
                "access_code must be at most 64 characters without spaces (it has {length}, {spaces} spaces)",
                length=len(code),
                spaces=len(_SPACE.findall(code)),
            )
        )
    if not f["customer_name"] or len(f["customer_name"]) > NAME_MAX:
        problems.append(
            OP("customer_name is required (at most 200 characters): {value}", value=_shown(f["customer_name"]))
        )
    if not _SA_NUMBER.match(f["service_account"]):
        problems.append(
            OP("service_account must be 4 to 20 letters, digits or dashes: {value}", value=_shown(f["service_account"]))
        )
    if not f["service_address"] or len(f["service_address"]) > ADDRESS_MAX:
        problems.append(
            OP("service_address is required (at most 200 characters): {value}", value=_shown(f["service_address"]))
        )
    if not f["outage_group"] or len(f["outage_group"]) > GROUP_MAX:
        problems.append(
            OP("outage_group is required (at most 20 characters): {value}", value=_shown(f["outage_group"]))
        )
    demand, problem = _demand(f["demand_kw"])
    if problem is not None:
        problems.append(problem)
    phone: str | None = None
    if f["contact_phone"]:
        if f["contact_phone"] not in phone_cache:  # the dialogs' own rule: a mobile in an allowed region
            phone_cache[f["contact_phone"]] = alert_number(f["contact_phone"], region, regions)
        found = phone_cache[f["contact_phone"]]
        if found is PhoneProblem.OUTSIDE:
            problems.append(
                OP(
                    "contact_phone is outside the regions alerts go to ({regions}): {value}",
                    regions=Literal(", ".join(regions)),
                    value=_shown(f["contact_phone"], 32),
                )
            )
        elif found is PhoneProblem.INVALID:
            problems.append(
                OP("contact_phone is not a valid phone number: {value}", value=Literal(repr(f["contact_phone"][:32])))
            )
        else:
            phone = found
    email: str | None = None
    if f["contact_email"]:
        email = email_address(f["contact_email"])  # the dialogs' own rule
        if email is None or len(email) > EMAIL_MAX:
            problems.append(
                OP(
                    "contact_email is not an email address: {value}",
                    value=Literal(repr(f["contact_email"].lower()[:60])),
                )
            )
            email = None
    language = LANGUAGES.get(f["contact_language"].lower())
    if language is None:
        problems.append(OP("contact_language must be vi or en: {value}", value=_shown(f["contact_language"])))
    if f["contact_name"]:
        if len(f["contact_name"]) > CONTACT_NAME_MAX:
            problems.append(OP("contact_name is longer than 100 characters: {value}", value=_shown(f["contact_name"])))
        if not f["contact_phone"] and not email:
            problems.append(OP("a contact needs a contact_phone or a contact_email"))
    elif f["contact_phone"] or email:
        problems.append(OP("contact_name is required when a contact phone or email is given"))
    if problems:
        return BadRow(line, tuple(problems))
    return Row(
        line,
        f["customer_account"],
        code,
        f["customer_name"],
        f["service_account"],
        f["service_address"],
        f["outage_group"],
        demand,
        f["contact_name"],
        phone,
        email,
        language or "en",
    )


class _Consistency:
    """What earlier rows said about each customer, service account and contact, to catch contradictions."""

    def __init__(self) -> None:
        self.customers: dict[str, tuple[tuple[str, str], int]] = {}
        self.accounts: dict[str, tuple[tuple[str, str, str, Decimal | None], int]] = {}
        self.contacts: dict[tuple[str, str], tuple[tuple[str, str | None, str], int]] = {}

    def problem(self, row: Row) -> Msg | None:
        first = self.customers.setdefault(row.customer, ((row.code, row.customer_name), row.line))
        if first[0] != (row.code, row.customer_name):
            return OP("customer_account has another access_code or customer_name on line {line}", line=first[1])
        said = (row.customer, row.address, row.group, row.demand_kw)
        account = self.accounts.setdefault(row.service_account, (said, row.line))
        if account[0][0] != row.customer:
            return OP("service_account belongs to another customer_account on line {line}", line=account[1])
        if account[0] != said:
            return OP(
                "service_account has another service_address, outage_group or demand_kw on line {line}", line=account[1]
            )
        key = row.contact_key
        if key is not None:
            values = (row.contact_name, row.email, row.language)
            contact = self.contacts.setdefault((row.customer, key), (values, row.line))
            if contact[0] != values:
                return OP(
                    "the same contact (by phone, else email) has another contact_name, contact_email or "
                    "contact_language on line {line}",
                    line=contact[1],
                )
        return None


def read_rows(
    stream: IO[str], region: str = "US", regions: Sequence[str] = DEFAULT_REGIONS
) -> tuple[list[Row], list[BadRow]]:
    """Parse and validate a whole CSV file, including consistency between rows.

    A file that is not readable as CSV (an unclosed quote, a field of more than 128 KiB) gives no
    rows at all: what follows the damage cannot be trusted.
    """
    reader = csv.DictReader(stream)
    rows: list[Row] = []
    bad: list[BadRow] = []
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            return [], [
                BadRow(1, (OP("missing columns: {columns}", columns=Listed(tuple(Literal(m) for m in missing))),))
            ]
        reader.fieldnames = header
        phone_cache: dict[str, str | PhoneProblem] = {}
        seen = _Consistency()
        for record in reader:
            line = reader.line_num
            if None in record:
                bad.append(BadRow(line, (OP("more fields than columns"),)))
                continue
            parsed = parse_row(line, record, region, phone_cache, regions)
            if isinstance(parsed, BadRow):
                bad.append(parsed)
                continue
            problem = seen.problem(parsed)
            if problem is not None:
                bad.append(BadRow(line, (problem,)))
                continue
            rows.append(parsed)
    except csv.Error as exc:
        return [], [*bad, BadRow(reader.line_num, (OP("not readable as CSV: {error}", error=Literal(str(exc))),))]
    return rows, bad
