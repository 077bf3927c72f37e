"""``import-accounts``: load a CIS export (one row per service account and contact) into the database.

The whole file is validated before anything is written. Then everything is written in one
transaction, so an import is either complete or absent. Re-importing updates rows in place, matched
by Customer Account Number, service account number, and a contact's phone (or email) within its
customer. Nothing absent from the file is deleted: contacts that customers added through the bot
stay. Access codes are hashed on every core; an unchanged code keeps its existing hash.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

import phonenumbers
from sqlalchemy import Connection, bindparam, insert, select, update

from bot.i18n import OP
from bot.security import CodeHasher
from bot.storage.db import Database
from bot.storage.models import Contact, ContactAssignment, CustomerAccount, ServiceAccount, table
from dialogs.text import Literal, Msg, fold_digits, has_lookalike_digits

COLUMNS = ("customer_account", "access_code", "customer_name", "service_account", "service_address",
           "outage_group", "demand_kw", "contact_name", "contact_phone", "contact_email", "contact_language")
_DIGITS = re.compile(r"[0-9]{6,20}")  # after fold_digits: the same rule as a customer typing it
_SA_NUMBER = re.compile(r"^[0-9A-Za-z-]{4,20}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_LANGUAGES = {"": "en", "en": "en", "english": "en", "vi": "vi", "vietnamese": "vi", "tieng viet": "vi",
              "tiếng việt": "vi"}
_CHUNK = 500

_ca = table(CustomerAccount)
_sa = table(ServiceAccount)
_co = table(Contact)
_as = table(ContactAssignment)


@dataclass(frozen=True, slots=True)
class Row:
    """One valid CSV row, normalized."""

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
        """How a contact is recognised within its customer: phone, else email."""
        if not self.contact_name:
            return None
        return self.phone or f"email:{self.email}"


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that cannot be imported, and every reason why (catalog messages for the operator)."""

    line: int
    problems: tuple[Msg, ...]


@dataclass
class ImportReport:
    """What an import did."""

    rows: int = 0
    bad: list[BadRow] = field(default_factory=list)
    customers_added: int = 0
    customers_updated: int = 0
    codes_hashed: int = 0
    service_accounts_added: int = 0
    service_accounts_updated: int = 0
    contacts_added: int = 0
    contacts_updated: int = 0
    assignments_added: int = 0
    imported: bool = False


def _field(raw: dict[str, str | None], name: str) -> str:
    return " ".join((raw.get(name) or "").split())


def parse_row(line: int, raw: dict[str, str | None], region: str,
              phone_cache: dict[str, str | None]) -> Row | BadRow:
    """Validate and normalize one CSV record."""
    f = {name: _field(raw, name) for name in COLUMNS}
    f["customer_account"] = fold_digits(f["customer_account"])
    problems: list[Msg] = []
    if not _DIGITS.fullmatch(f["customer_account"]):
        problems.append(OP("customer_account must be 6 to 20 digits"))
    code = fold_digits((raw.get("access_code") or "").strip())  # as dialogs.verify reads a typed code
    if not code or len(code) > 64 or any(ch.isspace() for ch in code):
        problems.append(OP("access_code must be 1 to 64 characters without spaces"))
    if not f["customer_name"] or len(f["customer_name"]) > 200:
        problems.append(OP("customer_name is required (at most 200 characters)"))
    if not _SA_NUMBER.match(f["service_account"]):
        problems.append(OP("service_account must be 4 to 20 letters, digits or dashes"))
    if not f["service_address"] or len(f["service_address"]) > 200:
        problems.append(OP("service_address is required (at most 200 characters)"))
    if not f["outage_group"] or len(f["outage_group"]) > 20:
        problems.append(OP("outage_group is required (at most 20 characters)"))
    demand: Decimal | None = None
    if f["demand_kw"]:
        try:
            demand = Decimal(f["demand_kw"])
            if not demand.is_finite() or demand < 0 or demand >= Decimal("1e8"):
                raise InvalidOperation
        except InvalidOperation:
            problems.append(OP("demand_kw is not a number of kW: {value}", value=Literal(repr(f["demand_kw"][:20]))))
    phone: str | None = None
    if f["contact_phone"]:
        if f["contact_phone"] not in phone_cache:
            phone_cache[f["contact_phone"]] = _e164(f["contact_phone"], region)
        phone = phone_cache[f["contact_phone"]]
        if phone is None:
            problems.append(OP("contact_phone is not a valid phone number: {value}",
                                    value=Literal(repr(f["contact_phone"][:32]))))
    email = f["contact_email"].lower() or None
    if email and (len(email) > 254 or not _EMAIL.match(email)):
        problems.append(OP("contact_email is not an email address: {value}", value=Literal(repr(email[:60]))))
    language = _LANGUAGES.get(f["contact_language"].lower())
    if language is None:
        problems.append(OP("contact_language must be vi or en"))
    if f["contact_name"]:
        if len(f["contact_name"]) > 100:
            problems.append(OP("contact_name is longer than 100 characters"))
        if not f["contact_phone"] and not email:
            problems.append(OP("a contact needs a contact_phone or a contact_email"))
    elif f["contact_phone"] or email:
        problems.append(OP("contact_name is required when a contact phone or email is given"))
    if problems:
        return BadRow(line, tuple(problems))
    return Row(line, f["customer_account"], code, f["customer_name"], f["service_account"],
               f["service_address"], f["outage_group"], demand, f["contact_name"], phone, email,
               language or "en")


def _e164(text: str, region: str) -> str | None:
    if has_lookalike_digits(text):
        return None
    try:
        number = phonenumbers.parse(fold_digits(text), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def read_rows(stream: IO[str], region: str = "US") -> tuple[list[Row], list[BadRow]]:
    """Parse and validate a whole CSV file, including consistency between rows."""
    reader = csv.DictReader(stream)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        return [], [BadRow(1, (OP("missing columns: {columns}", columns=[Literal(m) for m in missing]),))]
    reader.fieldnames = header
    rows: list[Row] = []
    bad: list[BadRow] = []
    phone_cache: dict[str, str | None] = {}
    customers: dict[str, tuple[str, str, int]] = {}
    owners: dict[str, tuple[str, int]] = {}
    for record in reader:
        line = reader.line_num
        if None in record:
            bad.append(BadRow(line, (OP("more fields than columns"),)))
            continue
        parsed = parse_row(line, record, region, phone_cache)
        if isinstance(parsed, BadRow):
            bad.append(parsed)
            continue
        first = customers.setdefault(parsed.customer, (parsed.code, parsed.customer_name, line))
        if first[:2] != (parsed.code, parsed.customer_name):
            bad.append(BadRow(line, (OP("customer_account has another access_code or customer_name on line {line}",
                                        line=first[2]),)))
            continue
        owner = owners.setdefault(parsed.service_account, (parsed.customer, line))
        if owner[0] != parsed.customer:
            bad.append(BadRow(line, (OP("service_account belongs to another customer_account on line {line}",
                                        line=owner[1]),)))
            continue
        rows.append(parsed)
    return rows, bad


def _hash_job(args: tuple[bytes, int, str, str | None]) -> str | None:
    pepper, n, code, existing = args
    hasher = CodeHasher(pepper, n)
    if existing is not None and hasher.verify(code, existing):
        return None
    return hasher.hash(code)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


Progress = Callable[[str, int], None]


def _existing(conn: Connection, column: Any, keys: Iterable[str], *cols: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    keys = sorted(set(keys))
    for chunk in _chunks(keys):
        for row in conn.execute(select(column, *cols).where(column.in_(chunk))):
            found[row[0]] = row
    return found


def _hash_codes(db: Database, hasher: CodeHasher, customers: dict[str, Row], step: Progress,
                workers: int | None) -> tuple[dict[str, str | None], dict[str, str]]:
    """New hashes for the customers' codes (None where the stored hash already matches).

    Runs before the import's transaction: on SQLite that transaction holds the only write lock, and
    the hashes are the slow part. Returns the hashes and the stored hashes they were compared with.
    """
    with db.unlocked() as conn:
        stored = {number: row.access_code_hash
                  for number, row in _existing(conn, _ca.c.number, customers, _ca.c.access_code_hash).items()}
    jobs = [(hasher.pepper, hasher.n, r.code, stored.get(number)) for number, r in customers.items()]
    hashes: list[str | None] = []
    if len(jobs) > 8 and (workers is None or workers > 1):
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for digest in pool.map(_hash_job, jobs, chunksize=16):
                hashes.append(digest)
                step("codes", 1)
    else:
        for job in jobs:
            hashes.append(_hash_job(job))
            step("codes", 1)
    return dict(zip(customers, hashes, strict=True)), stored


def import_rows(db: Database, hasher: CodeHasher, rows: Sequence[Row], report: ImportReport,
                progress: Progress | None = None, workers: int | None = None) -> ImportReport:
    """Hash the access codes, then write the validated rows in one transaction."""
    step: Progress = progress or (lambda _phase, _n: None)
    now = datetime.now(UTC)
    customers: dict[str, Row] = {}
    for row in rows:
        customers.setdefault(row.customer, row)
    hashes, compared = _hash_codes(db, hasher, customers, step, workers)
    report.codes_hashed = sum(h is not None for h in hashes.values())
    with db.transaction() as conn:
        if conn.dialect.name == "postgresql":
            # Fresh statistics, so the look-ups below use the indexes even right after a large import.
            conn.exec_driver_sql("ANALYZE customer_accounts, service_accounts, contacts, contact_assignments")
        known = _existing(conn, _ca.c.number, customers, _ca.c.id, _ca.c.name, _ca.c.access_code_hash)
        new_customers, changed_customers = [], []
        for number, r in customers.items():
            digest = hashes[number]
            if number not in known:
                new_customers.append({"number": number, "name": r.customer_name,
                                      "access_code_hash": digest or hasher.hash(r.code),
                                      "failed_attempts": 0, "updated_at": now})
                continue
            current = known[number].access_code_hash
            if digest is None and current != compared.get(number):  # changed since it was compared
                digest = None if hasher.verify(r.code, current) else hasher.hash(r.code)
            if digest is not None or known[number].name != r.customer_name:
                changed_customers.append({"b_id": known[number].id, "b_name": r.customer_name,
                                          "b_hash": digest or current, "b_at": now})
        if new_customers:
            conn.execute(insert(_ca), new_customers)
        if changed_customers:
            conn.execute(update(_ca).where(_ca.c.id == bindparam("b_id")).values(
                name=bindparam("b_name"), access_code_hash=bindparam("b_hash"), updated_at=bindparam("b_at")),
                changed_customers)
        report.customers_added, report.customers_updated = len(new_customers), len(changed_customers)
        customer_ids = {k: v.id for k, v in _existing(conn, _ca.c.number, customers, _ca.c.id).items()}
        step("customers", len(customers))

        accounts: dict[str, Row] = {}
        for row in rows:
            accounts[row.service_account] = row
        known_sa = _existing(conn, _sa.c.number, accounts, _sa.c.id, _sa.c.customer_id, _sa.c.service_address,
                             _sa.c.outage_group, _sa.c.demand_kw)
        new_sa, changed_sa = [], []
        for number, r in accounts.items():
            values = {"customer_id": customer_ids[r.customer], "service_address": r.address,
                      "outage_group": r.group, "demand_kw": r.demand_kw}
            old = known_sa.get(number)
            if old is None:
                new_sa.append({"number": number, "medical": False, **values})
            elif (old.customer_id, old.service_address, old.outage_group, old.demand_kw) != tuple(values.values()):
                changed_sa.append({"b_id": old.id, **{f"b_{k}": v for k, v in values.items()}})
        if new_sa:
            conn.execute(insert(_sa), new_sa)
        if changed_sa:
            conn.execute(update(_sa).where(_sa.c.id == bindparam("b_id")).values(
                customer_id=bindparam("b_customer_id"), service_address=bindparam("b_service_address"),
                outage_group=bindparam("b_outage_group"), demand_kw=bindparam("b_demand_kw")), changed_sa)
        report.service_accounts_added, report.service_accounts_updated = len(new_sa), len(changed_sa)
        account_ids = {k: v.id for k, v in _existing(conn, _sa.c.number, accounts, _sa.c.id).items()}
        step("service accounts", len(accounts))

        _import_contacts(conn, rows, customer_ids, account_ids, now, report)
        step("contacts", len(rows))
    report.imported = True
    return report


def _import_contacts(conn: Connection, rows: Sequence[Row], customer_ids: dict[str, int],
                     account_ids: dict[str, int], now: datetime, report: ImportReport) -> None:
    wanted: dict[tuple[int, str], Row] = {}
    pairs: set[tuple[tuple[int, str], int]] = set()
    for row in rows:
        key = row.contact_key
        if key is None:
            continue
        ckey = (customer_ids[row.customer], key)
        wanted[ckey] = row
        pairs.add((ckey, account_ids[row.service_account]))
    existing: dict[tuple[int, str], Any] = {}
    for chunk in _chunks(sorted({cid for cid, _ in wanted})):
        for c in conn.execute(select(_co.c.id, _co.c.customer_id, _co.c.name, _co.c.phone, _co.c.email,
                                     _co.c.language).where(_co.c.customer_id.in_(chunk))):
            existing[(c.customer_id, c.phone or f"email:{c.email}")] = c
    new, changed = [], []
    for (cid, key), r in wanted.items():
        old = existing.get((cid, key))
        if old is None:
            new.append({"customer_id": cid, "name": r.contact_name, "phone": r.phone, "email": r.email,
                        "language": r.language, "created_at": now, "updated_at": now})
        elif (old.name, old.email, old.language) != (r.contact_name, r.email, r.language):
            changed.append({"b_id": old.id, "b_name": r.contact_name, "b_email": r.email,
                            "b_language": r.language, "b_at": now})
    if new:
        conn.execute(insert(_co), new)
    if changed:
        conn.execute(update(_co).where(_co.c.id == bindparam("b_id")).values(
            name=bindparam("b_name"), email=bindparam("b_email"), language=bindparam("b_language"),
            updated_at=bindparam("b_at")), changed)
    report.contacts_added, report.contacts_updated = len(new), len(changed)
    ids: dict[tuple[int, str], int] = {}
    held: set[tuple[int, int]] = set()
    for chunk in _chunks(sorted({cid for cid, _ in wanted})):
        for saved in conn.execute(select(_co.c.id, _co.c.customer_id, _co.c.phone, _co.c.email)
                                  .where(_co.c.customer_id.in_(chunk))):
            ids[(saved.customer_id, saved.phone or f"email:{saved.email}")] = saved.id
        for a in conn.execute(select(_as.c.contact_id, _as.c.service_account_id)
                              .join(_co, _co.c.id == _as.c.contact_id).where(_co.c.customer_id.in_(chunk))):
            held.add((a.contact_id, a.service_account_id))
    links = sorted({(ids[ckey], sa) for ckey, sa in pairs} - held)
    for chunk in _chunks(links, 5000):
        conn.execute(insert(_as), [{"contact_id": c, "service_account_id": s} for c, s in chunk])
    report.assignments_added = len(links)


def import_file(db: Database, hasher: CodeHasher, path: Path, *, skip_invalid: bool = False,
                region: str = "US", progress: Progress | None = None) -> ImportReport:
    """Validate ``path``; import it if it is clean (or, with ``skip_invalid``, import its good rows)."""
    with path.open(newline="", encoding="utf-8-sig", errors="strict") as stream:
        rows, bad = read_rows(stream, region)
    report = ImportReport(rows=len(rows) + len(bad), bad=bad)
    if progress:
        progress("validated", len(rows) + len(bad))
    if bad and not skip_invalid:
        return report
    return import_rows(db, hasher, rows, report, progress)
