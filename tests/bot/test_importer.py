"""import-accounts: validate everything first, import all or nothing, update in place."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import App, build
from bot.i18n import Catalogs
from bot.importer import COLUMNS, BadRow, Row, import_file, read_rows
from bot.storage.models import Contact, ContactAssignment, CustomerAccount, ServiceAccount
from tests.conftest import DEMO, Chat, make_settings, verified_chat

CATALOGS = Catalogs()


def reason(bad: BadRow, locale: str = "en") -> str:
    return "; ".join(CATALOGS.render(problem, locale) for problem in bad.problems)


@pytest.fixture
def empty_app(database_url: str) -> App:
    app = build(make_settings(database_url), migrate_db=False)
    yield app  # type: ignore[misc]
    app.close()


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in COLUMNS})
    return path


def good(**overrides: str) -> dict[str, str]:
    row = {"customer_account": "800000001", "access_code": "S3cret", "customer_name": "Bánh Mì Co",
           "service_account": "4-001-0001", "service_address": "1 Main St", "outage_group": "G1",
           "demand_kw": "99.5", "contact_name": "Võ Văn Tư", "contact_phone": "626-555-0111",
           "contact_email": "tu@example.com", "contact_language": "vi"}
    row.update(overrides)
    return row


def count(app: App, model: type) -> int:
    with app.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_the_demo_file_imports_and_a_customer_can_verify(empty_app: App) -> None:
    report = import_file(empty_app.db, empty_app.hasher, DEMO)
    assert report.imported and report.bad == []
    assert (report.customers_added, report.service_accounts_added, report.contacts_added,
            report.assignments_added) == (2, 5, 3, 4)
    chat = verified_chat(empty_app, "vi")
    assert chat.state == "contacts.menu"


def test_reimporting_updates_in_place_and_keeps_what_customers_added(empty_app: App, tmp_path: Path) -> None:
    import_file(empty_app.db, empty_app.hasher, DEMO)
    chat = verified_chat(empty_app, "en")
    chat.run("1", "Added By Bot", "(626) 555-0188", "n", "2", "1", "y")
    before = (count(empty_app, Contact), count(empty_app, ContactAssignment))
    again = import_file(empty_app.db, empty_app.hasher, DEMO)
    assert (again.customers_added, again.customers_updated, again.codes_hashed, again.contacts_added,
            again.assignments_added) == (0, 0, 0, 0, 0)
    assert (count(empty_app, Contact), count(empty_app, ContactAssignment)) == before

    text = DEMO.read_text(encoding="utf-8").replace("Sunrise Bakery Inc.", "Sunrise Bakery LLC")
    text = text.replace("731562", "999111").replace("C105", "C199")
    changed = write_csv_text(tmp_path / "changed.csv", text)
    report = import_file(empty_app.db, empty_app.hasher, changed)
    assert (report.customers_updated, report.codes_hashed, report.service_accounts_updated) == (1, 1, 1)
    other = Chat(empty_app, address="other")
    other.run("", "2", "1", "700000002")
    assert "Verified. Customer: Sunrise Bakery LLC" in other.say("999111")


def write_csv_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_bad_row_stops_the_whole_import_and_every_bad_row_is_listed(empty_app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [
        good(),
        good(service_account="4-001-0002", contact_phone="12345"),
        good(service_account="4-001-0003", customer_account="12"),
        good(service_account="4-001-0004", access_code="other"),
        good(service_account="4-001-0005", contact_language="fr", demand_kw="lots"),
        good(service_account="4-001-0006", contact_name="", contact_phone="", contact_email=""),
    ])
    report = import_file(empty_app.db, empty_app.hasher, path)
    assert not report.imported
    assert [(b.line, reason(b).split(" ")[0]) for b in report.bad] == [
        (3, "contact_phone"), (4, "customer_account"), (5, "customer_account"), (6, "demand_kw")]
    assert "on line 2" in reason(report.bad[2])
    assert "contact_language must be vi or en" in reason(report.bad[3])
    assert reason(report.bad[3], "vi") == "demand_kw không phải là số kW: 'lots'; contact_language phải là vi hoặc en"
    assert count(empty_app, CustomerAccount) == 0


def test_skip_invalid_imports_the_good_rows(empty_app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [good(), good(service_account="4-001-0002", contact_phone="12345")])
    report = import_file(empty_app.db, empty_app.hasher, path, skip_invalid=True)
    assert report.imported and len(report.bad) == 1
    assert count(empty_app, ServiceAccount) == 1


@pytest.mark.parametrize(("text", "expected"), [
    ("a,b,c\n1,2,3\n", "missing columns"),
    (",".join(COLUMNS) + "\n" + ",".join(["1"] * 12) + "\n", "more fields than columns"),
    (",".join(COLUMNS) + "\n" + ",".join(good(contact_name="", contact_email="").values()) + "\n",
     "contact_name is required"),
    (",".join(COLUMNS) + "\n" + ",".join(good(service_account="x;DROP").values()) + "\n", "service_account"),
])
def test_malformed_files_are_explained(text: str, expected: str) -> None:
    rows, bad = read_rows(io.StringIO(text))
    assert rows == [] and expected in reason(bad[0])


def test_a_service_account_cannot_belong_to_two_customers(tmp_path: Path) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerow(good())
    writer.writerow(good(customer_account="800000002"))
    rows, bad = read_rows(io.StringIO(text.getvalue()))
    assert len(rows) == 1 and "belongs to another customer_account on line 2" in reason(bad[0])


def test_no_access_code_is_stored_in_the_clear(empty_app: App) -> None:
    import_file(empty_app.db, empty_app.hasher, DEMO)
    with empty_app.db.engine.connect() as conn:
        hashes = [r[0] for r in conn.execute(select(CustomerAccount.access_code_hash))]
    assert all(h.startswith("scrypt$") and "482913" not in h and "731562" not in h for h in hashes)


def _one(**overrides: str) -> tuple[list[Row], list[BadRow]]:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerow(good(**overrides))
    return read_rows(io.StringIO(text.getvalue()))


@pytest.mark.parametrize(("column", "value", "stored"), [
    ("customer_account", "８００ ０００ ００１", None),  # spaces are not part of the number in the file
    ("customer_account", "８０００００００１", "800000001"),
    ("customer_account", "٨٠٠٠٠٠٠٠١", "800000001"),
    ("customer_account", "80000000¹", None),
    ("customer_account", "⑧⓪⓪⓪⓪⓪⓪⓪①", None),
    ("access_code", "４８２９１３", "482913"),
    ("access_code", "S３cret", "S3cret"),
    ("contact_phone", "(６２６) ５５５-０１１１", "+16265550111"),
    ("contact_phone", "¹ 626 555 0111", None),
])
def test_numbers_in_the_file_follow_the_rule_customers_type_by(column: str, value: str, stored: str | None) -> None:
    """Digits of any script are read as ASCII digits, exactly as when a customer types them; a sign
    that only looks like a digit makes the row bad. So a code on file is the code a customer types."""
    rows, bad = _one(**{column: value})
    if stored is None:
        assert rows == [] and reason(bad[0]).startswith(column), bad
        return
    assert bad == []
    field = {"customer_account": "customer", "access_code": "code", "contact_phone": "phone"}[column]
    assert getattr(rows[0], field) == stored
