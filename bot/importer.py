"""``import-accounts``: load a CIS export (one row per service account and contact) into the database.

What a re-import owns:

- **Customer accounts and service accounts**: the CIS is their source. The file's name, access code,
  service address, outage group and demand always apply (customers cannot change them in the bot).
  An empty ``access_code`` keeps the stored code of an existing customer account (an export from
  ``export-contacts`` has none); a new customer account needs one. A new code moves the account's
  ``credential_version`` (sessions verified with the old code end at their next turn) and ends an
  active lockout: the guesses counted were against a code that no longer exists.
- **Contacts and their assignments**: only what the CIS changed since the last import
  (:mod:`bot.import_contacts`), so what customers did through the bot is not undone.
- **Nothing absent from the file is deleted** (exports can be partial), with one exception: a
  service account that now belongs to another customer account loses the previous customer's
  contacts, which can no longer see or manage it.

The whole file is validated before anything is written (:mod:`bot.cis_csv`); access codes are hashed
on every core before the transaction opens; then everything is written in one transaction, with an
audit row for every change (:mod:`bot.import_audit`). A write the database refuses rolls everything
back and is reported; the import is complete or absent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bot.cis_csv import COLUMNS, DEFAULT_REGIONS, BadRow, Row, read_rows
from bot.i18n import OP
from bot.import_audit import ImportAudit, changes
from bot.import_contacts import merge_contacts
from bot.security import CodeHasher
from bot.storage.db import CommitFailed, Database
from bot.storage.models import Contact, ContactAssignment, CustomerAccount, ImportSnapshot, ServiceAccount, table
from dialogs.text import Literal, Msg

__all__ = ["COLUMNS", "BadRow", "ImportReport", "Row", "import_file", "import_rows", "read_rows"]

log = logging.getLogger(__name__)

_CHUNK = 500
_ca = table(CustomerAccount)
_sa = table(ServiceAccount)
_co = table(Contact)
_as = table(ContactAssignment)
_snap = table(ImportSnapshot)


@dataclass
class ImportReport:
    """What an import did (all counts zero when it did not happen)."""

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
    rows_unchanged: int = 0  # contact rows that say what they said at the last import
    imported: bool = False
    error: Msg | None = None  # the database refused a write: nothing was imported

    def failed(self, error: Msg) -> None:
        """Nothing was written after all: say why, and count nothing."""
        self.error = error
        self.imported = False
        for name in (
            "customers_added",
            "customers_updated",
            "codes_hashed",
            "service_accounts_added",
            "service_accounts_updated",
            "contacts_added",
            "contacts_updated",
            "assignments_added",
            "rows_unchanged",
        ):
            setattr(self, name, 0)


class ImportFailed(Exception):
    """The import cannot go on; nothing is written (the transaction is rolled back)."""

    def __init__(self, message: Msg) -> None:
        super().__init__(message.id)
        self.message = message


Progress = Callable[[str, int, int], None]  # (phase, done since the last call, the phase's total)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing(conn: Connection, column: Any, keys: Iterable[str], *cols: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for chunk in _chunks(sorted(set(keys))):
        for row in conn.execute(select(column, *cols).where(column.in_(chunk))):
            found[row[0]] = row
    return found


def _hash_job(args: tuple[bytes, int, str, str | None]) -> str | None:
    pepper, n, code, existing = args
    hasher = CodeHasher(pepper, n)
    if existing is not None and hasher.verify(code, existing):
        return None
    return hasher.hash(code)


def _hash_codes(
    hasher: CodeHasher, customers: dict[str, Row], stored: dict[str, str], step: Progress, workers: int | None
) -> dict[str, str | None]:
    """New hashes for the customers' codes (None where the stored hash matches, or the row has no code).

    Runs before the import's transaction: on SQLite that transaction holds the only write lock, and
    the hashes are the slow part.
    """
    coded = [number for number, r in customers.items() if r.code]
    jobs = [(hasher.pepper, hasher.n, customers[number].code, stored.get(number)) for number in coded]
    hashes: list[str | None] = []
    if len(jobs) > 8 and (workers is None or workers > 1):
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for digest in pool.map(_hash_job, jobs, chunksize=16):
                hashes.append(digest)
                step("codes", 1, len(jobs))
    else:
        for job in jobs:
            hashes.append(_hash_job(job))
            step("codes", 1, len(jobs))
    return dict(zip(coded, hashes, strict=True))


def _without_code(rows: Sequence[Row], stored: dict[str, str]) -> list[BadRow]:
    """Rows of customer accounts that are new and have no access code: a new account needs its code."""
    return [
        BadRow(
            r.line,
            (
                OP(
                    "access_code is empty: customer_account {number} is new and needs its access code",
                    number=Literal(r.customer),
                ),
            ),
        )
        for r in rows
        if not r.code and r.customer not in stored
    ]


def _import_customers(
    conn: Connection,
    hasher: CodeHasher,
    customers: dict[str, Row],
    hashes: dict[str, str | None],
    compared: dict[str, str],
    report: ImportReport,
    audit: ImportAudit,
    now: datetime,
) -> dict[str, int]:
    known = _existing(
        conn,
        _ca.c.number,
        customers,
        _ca.c.id,
        _ca.c.name,
        _ca.c.access_code_hash,
        _ca.c.failed_attempts,
        _ca.c.locked_until,
        _ca.c.credential_version,
    )
    new: list[dict[str, Any]] = []
    renamed: list[dict[str, Any]] = []
    recoded: list[dict[str, Any]] = []
    for number, r in customers.items():
        old = known.get(number)
        if old is None:
            if not r.code:  # it existed when the file was checked, and has gone since
                raise ImportFailed(
                    OP(
                        "access_code is empty: customer_account {number} is new and needs its access code",
                        number=Literal(number),
                    )
                )
            new.append(
                {
                    "number": number,
                    "name": r.customer_name,
                    "access_code_hash": hashes.get(number) or hasher.hash(r.code),
                    "failed_attempts": 0,
                    "credential_version": 0,
                    "updated_at": now,
                }
            )
            continue
        digest = hashes.get(number)
        if r.code and digest is None and old.access_code_hash != compared.get(number):  # changed since compared
            digest = None if hasher.verify(r.code, old.access_code_hash) else hasher.hash(r.code)
        diff: dict[str, Any] = changes({"name": old.name}, {"name": r.customer_name})
        if diff:
            renamed.append({"b_id": old.id, "b_name": r.customer_name, "b_at": now})
        extra: dict[str, Any] = {}
        if digest is not None:
            diff["access_code"] = "changed"
            recoded.append({"b_id": old.id, "b_hash": digest, "b_at": now})
            extra["credential_version"] = old.credential_version + 1
            if old.failed_attempts or old.locked_until is not None:
                extra["lockout_cleared"] = True
        if diff:
            audit("import.customer.update", old.id, number=number, changes=diff, **extra)
    ids = {number: old.id for number, old in known.items()}
    if new:
        result = conn.execute(insert(_ca).returning(_ca.c.id, sort_by_parameter_order=True), new)
        for values, row in zip(new, result, strict=True):
            ids[values["number"]] = int(row.id)
            audit("import.customer.add", int(row.id), number=values["number"], name=values["name"])
    if renamed:
        conn.execute(
            update(_ca)
            .where(_ca.c.id == bindparam("b_id"))
            .values(name=bindparam("b_name"), updated_at=bindparam("b_at")),
            renamed,
        )
    if recoded:
        conn.execute(
            update(_ca)
            .where(_ca.c.id == bindparam("b_id"))
            .values(
                access_code_hash=bindparam("b_hash"),
                credential_version=_ca.c.credential_version + 1,
                failed_attempts=0,
                locked_until=None,
                updated_at=bindparam("b_at"),
            ),
            recoded,
        )
    report.customers_added = len(new)
    report.customers_updated = len({p["b_id"] for p in renamed + recoded})
    report.codes_hashed = len(new) + len(recoded)
    return ids


def _move(conn: Connection, account_id: int, number: str, previous: int, audit: ImportAudit) -> list[int]:
    """A service account now of another customer: the previous customer's contacts leave it."""
    theirs = select(_co.c.id).where(_co.c.customer_id == previous)
    gone = sorted(
        conn.execute(
            select(_as.c.contact_id).where(_as.c.service_account_id == account_id, _as.c.contact_id.in_(theirs))
        ).scalars()
    )
    if gone:
        conn.execute(delete(_as).where(_as.c.service_account_id == account_id, _as.c.contact_id.in_(gone)))
        audit(
            "import.unassign",
            previous,
            service_account=number,
            contacts=gone,
            reason="service_account moved to another customer_account",
        )
    remembered = conn.execute(select(_snap.c.id, _snap.c.service_accounts).where(_snap.c.customer_id == previous)).all()
    kept = [
        {"b_id": r.id, "b_accounts": [n for n in r.service_accounts if n != number]}
        for r in remembered
        if number in r.service_accounts
    ]
    if kept:  # the previous customer's rows no longer put anyone on it
        conn.execute(
            update(_snap)
            .where(_snap.c.id == bindparam("b_id"))
            .values(service_accounts=bindparam("b_accounts", type_=_snap.c.service_accounts.type)),
            kept,
        )
    return gone


def _import_service_accounts(
    conn: Connection, rows: Sequence[Row], customer_ids: dict[str, int], report: ImportReport, audit: ImportAudit
) -> dict[str, int]:
    accounts = {row.service_account: row for row in rows}  # every row of an account says the same
    known = _existing(
        conn,
        _sa.c.number,
        accounts,
        _sa.c.id,
        _sa.c.customer_id,
        _sa.c.service_address,
        _sa.c.outage_group,
        _sa.c.demand_kw,
    )
    owners = {v: k for k, v in customer_ids.items()}
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for number, r in accounts.items():
        customer_id = customer_ids[r.customer]
        values = {"service_address": r.address, "outage_group": r.group, "demand_kw": r.demand_kw}
        old = known.get(number)
        if old is None:
            new.append({"number": number, "customer_id": customer_id, "medical": False, **values})
            continue
        diff = changes(dict(old._mapping), values)
        extra: dict[str, Any] = {}
        if old.customer_id != customer_id:
            previous = (
                owners.get(old.customer_id)
                or conn.execute(select(_ca.c.number).where(_ca.c.id == old.customer_id)).scalar_one()
            )
            diff["customer_account"] = {"old": previous, "new": r.customer}
            extra["unassigned_contacts"] = _move(conn, old.id, number, old.customer_id, audit)
        if diff:
            changed.append({"b_id": old.id, "b_customer_id": customer_id, **{f"b_{k}": v for k, v in values.items()}})
            audit("import.service_account.update", customer_id, number=number, changes=diff, **extra)
    ids = {number: old.id for number, old in known.items()}
    added: dict[int, list[dict[str, Any]]] = {}  # one audit row per customer: a first import adds thousands
    if new:
        result = conn.execute(insert(_sa).returning(_sa.c.id, sort_by_parameter_order=True), new)
        for params, row in zip(new, result, strict=True):
            ids[params["number"]] = int(row.id)
            added.setdefault(params["customer_id"], []).append(
                {k: params[k] for k in ("number", "service_address", "outage_group", "demand_kw")}
            )
    for customer_id, accounts_added in added.items():
        audit("import.service_account.add", customer_id, service_accounts=accounts_added)
    if changed:
        conn.execute(
            update(_sa)
            .where(_sa.c.id == bindparam("b_id"))
            .values(
                customer_id=bindparam("b_customer_id"),
                service_address=bindparam("b_service_address"),
                outage_group=bindparam("b_outage_group"),
                demand_kw=bindparam("b_demand_kw"),
            ),
            changed,
        )
    report.service_accounts_added, report.service_accounts_updated = len(new), len(changed)
    return ids


def _database_error(exc: SQLAlchemyError) -> Msg:
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return OP(
        "the database refused a write, so nothing of the file was imported: {error}", error=Literal(first_line[:300])
    )


def import_rows(
    db: Database,
    hasher: CodeHasher,
    rows: Sequence[Row],
    report: ImportReport,
    progress: Progress | None = None,
    workers: int | None = None,
    *,
    source: str = "",
    skip_invalid: bool = False,
    now: datetime | None = None,
) -> ImportReport:
    """Hash the access codes, then write the validated rows in one transaction (``source``: the file's name)."""
    step: Progress = progress or (lambda _phase, _n, _total: None)
    now = now or datetime.now(UTC)
    customers: dict[str, Row] = {}
    for row in rows:
        customers.setdefault(row.customer, row)
    with db.unlocked() as conn:
        stored: dict[str, str] = {
            number: r.access_code_hash
            for number, r in _existing(conn, _ca.c.number, customers, _ca.c.access_code_hash).items()
        }
    missing = _without_code(rows, stored)
    if missing:
        report.bad = sorted([*report.bad, *missing], key=lambda b: b.line)
        if not skip_invalid:
            return report
        rows = [r for r in rows if r.code or r.customer in stored]
        customers = {k: v for k, v in customers.items() if v.code or k in stored}
    hashes = _hash_codes(hasher, customers, stored, step, workers)
    audit = ImportAudit(source, now)
    try:
        with db.transaction() as conn:
            if conn.dialect.name == "postgresql":
                # Fresh statistics, so the look-ups below use the indexes even right after a large import.
                conn.exec_driver_sql(
                    "ANALYZE customer_accounts, service_accounts, contacts, contact_assignments, import_snapshots"
                )
            customer_ids = _import_customers(conn, hasher, customers, hashes, stored, report, audit, now)
            step("customers", len(customers), len(customers))
            account_ids = _import_service_accounts(conn, rows, customer_ids, report, audit)
            accounts = len({r.service_account for r in rows})
            step("service accounts", accounts, accounts)
            counts = merge_contacts(conn, rows, customer_ids, account_ids, audit, now)
            report.contacts_added, report.contacts_updated = counts.added, counts.updated
            report.assignments_added, report.rows_unchanged = counts.assigned, counts.unchanged
            audit.write(conn)
            step("contacts", len(rows), len(rows))
    except ImportFailed as exc:
        report.failed(exc.message)
        return report
    except SQLAlchemyError as exc:
        log.warning("import of %s rolled back: %s", source, exc.__class__.__name__)
        report.failed(_database_error(exc))
        return report
    except CommitFailed:
        log.warning("import of %s: the commit failed", source)
        report.failed(
            OP(
                "the commit failed, so whether the file was imported is not known; importing the same "
                "file again is safe"
            )
        )
        return report
    report.imported = True
    return report


def import_file(
    db: Database,
    hasher: CodeHasher,
    path: Path,
    *,
    skip_invalid: bool = False,
    region: str = "US",
    regions: Sequence[str] = DEFAULT_REGIONS,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Validate ``path``; import it if it is clean (or, with ``skip_invalid``, import its good rows).

    ``region`` reads numbers without a country code; ``regions`` are where contacts' numbers may be
    (``OUTAGEBOT_PHONE_REGIONS``: the same rule as the dialogs').
    """
    with path.open(newline="", encoding="utf-8-sig", errors="strict") as stream:
        rows, bad = read_rows(stream, region, regions)
    report = ImportReport(rows=len(rows) + len(bad), bad=bad)
    if progress:
        progress("validated", len(rows) + len(bad), len(rows) + len(bad))
    if bad and not skip_invalid:
        return report
    return import_rows(db, hasher, rows, report, progress, source=path.name, skip_invalid=skip_invalid, now=now)
