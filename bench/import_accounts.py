"""How long ``import-accounts`` takes for a 100,000-row CIS export, first import and re-import.

The file is generated: CUSTOMERS business customers, each with SERVICE service accounts and two
contacts on every one of them (rows = customers x service accounts x 2). Validation and the database
work scale with rows; the access codes cost one scrypt hash per customer account (spread over every
core), so the printout gives both parts, and what each import wrote besides the accounts: audit rows
and the snapshot rows a re-import compares with (an unchanged file should write nearly nothing).
Run: ``python bench/import_accounts.py [--customers 1000] [--postgres URL|none]`` (default URL:
``OUTAGEBOT_BENCH_POSTGRES_URL``, else ``OUTAGEBOT_TEST_POSTGRES_URL``; the database's tables are emptied).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, text

from bot.config import Settings
from bot.importer import COLUMNS, ImportReport, import_file
from bot.security import CodeHasher
from bot.storage.db import Database, make_engine, migrate


def generate(path: Path, rows: int, customers: int) -> None:
    per_customer = rows // customers
    accounts = per_customer // 2
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for c in range(customers):
            for a in range(accounts):
                for k in range(2):
                    writer.writerow(
                        [
                            f"8{c:08d}",
                            f"code{c:06d}",
                            f"Doanh nghiệp Số {c}",
                            f"7-{c:06d}-{a:03d}",
                            f"{100 + a} Bolsa Ave, Westminster",
                            f"G{(c + a) % 40:03d}",
                            "120.5",
                            f"Người Liên Lạc {k} của {c}",
                            f"+1 714 {200 + c // 10000:03d} {c % 10000:04d}"
                            if k == 0
                            else f"+1 626 {200 + c // 10000:03d} {c % 10000:04d}",
                            f"c{c}k{k}@example.com",
                            "vi" if k == 0 else "en",
                        ]
                    )


def written(engine: Engine) -> tuple[int, int]:
    """How many audit and snapshot rows there are."""
    with engine.connect() as conn:
        return (
            int(conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()),
            int(conn.execute(text("SELECT count(*) FROM import_snapshots")).scalar_one()),
        )


def run(url: str, path: Path, settings: Settings) -> tuple[float, float, ImportReport, ImportReport, list[int]]:
    engine = make_engine(url)
    migrate(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(
                text(
                    "TRUNCATE audit_log, import_snapshots, contact_assignments, contacts, sessions, "
                    "service_accounts, customer_accounts RESTART IDENTITY CASCADE"
                )
            )
    db = Database(engine)
    hasher = CodeHasher(settings.pepper.get_secret_value().encode(), settings.scrypt_n)
    first, split_first = timed(db, hasher, path)
    after_first = written(engine)
    again, split_again = timed(db, hasher, path)
    after_again = written(engine)
    db.close()
    assert first.imported and again.imported and again.contacts_added == 0 and again.assignments_added == 0
    return (
        split_first,
        split_again,
        first,
        again,
        [*after_first, after_again[0] - after_first[0], after_again[1] - after_first[1]],
    )


def timed(db: Database, hasher: CodeHasher, path: Path) -> tuple[ImportReport, dict[str, float]]:
    """Import ``path``; returns the report and the seconds spent reading, hashing and writing."""
    marks: dict[str, float] = {}
    t0 = time.perf_counter()

    def progress(phase: str, _n: int, _total: int) -> None:
        marks[phase] = time.perf_counter() - t0

    report = import_file(db, hasher, path, progress=progress)
    total = time.perf_counter() - t0
    read = marks["validated"]
    hashed = marks.get("codes", read) - read
    return report, {"total": total, "read": read, "codes": hashed, "database": total - read - hashed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("OUTAGEBOT_BENCH_POSTGRES_URL")
        or os.environ.get("OUTAGEBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    settings = Settings(pepper="bench")
    n = settings.scrypt_n
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.csv"
        generate(path, args.rows, args.customers)
        t0 = time.perf_counter()
        hasher = CodeHasher(b"bench", n)
        for _ in range(5):
            hasher.hash("code000001")
        one_hash = (time.perf_counter() - t0) / 5
        print(
            f"{args.rows} rows, {args.customers} customer accounts; scrypt N=2^{n.bit_length() - 1}: "
            f"{one_hash * 1000:.0f} ms a hash on one core, {os.cpu_count()} cores"
        )
        targets = {"SQLite": f"sqlite:///{tmp}/import.db"}
        if args.postgres.lower() != "none":
            targets["PostgreSQL"] = args.postgres
        for name, url in targets.items():
            first, again, one, two, rows = run(url, path, settings)
            for label, split, notes in (
                (
                    "first import",
                    first,
                    f"{one.codes_hashed} codes hashed, {rows[0]} audit rows, {rows[1]} snapshot rows",
                ),
                (
                    "re-import",
                    again,
                    f"{two.rows_unchanged} rows unchanged, {rows[2]} audit rows written, {rows[3]:+d} snapshot rows",
                ),
            ):
                print(
                    f"{name:10} {label:12} {split['total']:5.1f} s = read and check {split['read']:4.1f} s"
                    f" + access codes {split['codes']:4.1f} s + database {split['database']:4.1f} s   ({notes})"
                )


if __name__ == "__main__":
    main()
