"""export-contacts: the contacts as they are now, in the import's format; importing the export changes nothing."""

from __future__ import annotations

import io
from pathlib import Path

from bot.app import App
from bot.exporter import ExportReport, LeftOut, export_contacts
from bot.importer import COLUMNS, import_file
from tests.bot.cis import (
    AT_THE_LIMIT,
    AT_THE_LIMIT_REGIONS,
    Customer,
    Rows,
    good,
    read_csv,
    whole_database,
    write_csv,
)
from tests.conftest import DEMO

AN, BICH = "Nguyễn Văn An", "Trần Thị Bích"


def export(app: App, path: Path) -> tuple[ExportReport, Rows]:
    with path.open("w", newline="", encoding="utf-8") as stream:
        report = export_contacts(app.db, stream)
    return report, read_csv(path)


def short(rows: Rows) -> list[tuple[str, ...]]:
    """(customer, code, service account, kW, contact, phone, email, language) of each exported row."""
    return [
        (
            r["customer_account"],
            r["access_code"],
            r["service_account"],
            r["demand_kw"],
            r["contact_name"],
            r["contact_phone"],
            r["contact_email"],
            r["contact_language"],
        )
        for r in rows
    ]


def test_the_export_has_the_imports_columns_and_every_service_account(empty_app: App, tmp_path: Path) -> None:
    import_file(empty_app.db, empty_app.hasher, DEMO)
    report, rows = export(empty_app, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()[0] == ",".join(COLUMNS)
    assert short(rows) == [
        ("700000001", "", "3-001-1001", "85.00", AN, "+17145550101", "an@phobolsa.example", "vi"),
        ("700000001", "", "3-001-1002", "120.00", AN, "+17145550101", "an@phobolsa.example", "vi"),
        ("700000001", "", "3-001-1002", "120.00", BICH, "+17145550102", "", "vi"),
        ("700000001", "", "3-001-1003", "60.00", "", "", "", ""),
        ("700000002", "", "3-002-2001", "240.00", "Maria Lopez", "+16265550100", "maria@sunrise.example", "en"),
        ("700000002", "", "3-002-2002", "150.00", "", "", "", ""),
    ]
    assert rows[0]["customer_name"] == "Phở Bolsa LLC" and rows[0]["service_address"] == "9200 Bolsa Ave Westminster"
    assert (report.rows, report.customers, report.service_accounts, report.contacts, report.left_out) == (
        6,
        2,
        5,
        3,
        [],
    )


def test_the_export_carries_the_customers_changes(empty_app: App, tmp_path: Path) -> None:
    import_file(empty_app.db, empty_app.hasher, DEMO)
    customer = Customer(empty_app)
    customer.edit(AN, "phone", "(714) 555-0199")
    customer.edit(AN, "language", "English")
    customer.unassign(AN, "*1001")
    customer.assign(BICH, "*1003")
    customer.add("Bob Added", "(626) 555-0188", "*1001")
    _report, rows = export(empty_app, tmp_path / "out.csv")
    assert short(rows)[:5] == [
        ("700000001", "", "3-001-1001", "85.00", "Bob Added", "+16265550188", "", "en"),
        ("700000001", "", "3-001-1002", "120.00", AN, "+17145550199", "an@phobolsa.example", "en"),
        ("700000001", "", "3-001-1002", "120.00", BICH, "+17145550102", "", "vi"),
        ("700000001", "", "3-001-1003", "60.00", BICH, "+17145550102", "", "vi"),
        ("700000002", "", "3-002-2001", "240.00", "Maria Lopez", "+16265550100", "maria@sunrise.example", "en"),
    ]


def test_importing_the_export_changes_nothing(empty_app: App, tmp_path: Path) -> None:
    import_file(empty_app.db, empty_app.hasher, DEMO)
    customer = Customer(empty_app)
    customer.edit(AN, "phone", "(714) 555-0199")
    customer.edit(AN, "name", "An Nguyen")
    customer.edit(BICH, "email", "bich@example.com")
    customer.edit(BICH, "language", "English")
    customer.unassign("An Nguyen", "*1001")
    customer.assign(BICH, "*1001", "*1003")
    customer.add("Bob Added", "(626) 555-0188", "*1001", "*1003")
    before = whole_database(empty_app)
    _report, _rows = export(empty_app, tmp_path / "export.csv")
    report = import_file(empty_app.db, empty_app.hasher, tmp_path / "export.csv")
    assert report.imported and report.bad == [] and report.error is None
    assert (
        report.customers_added,
        report.customers_updated,
        report.codes_hashed,
        report.service_accounts_added,
        report.service_accounts_updated,
        report.contacts_added,
        report.contacts_updated,
        report.assignments_added,
    ) == (0, 0, 0, 0, 0, 0, 0, 0)
    assert whole_database(empty_app) == before


def test_once_the_cis_has_taken_the_export_in_its_next_export_undoes_nothing(empty_app: App, tmp_path: Path) -> None:
    import_file(empty_app.db, empty_app.hasher, DEMO)
    customer = Customer(empty_app)
    customer.edit(BICH, "language", "English")
    _report, rows = export(empty_app, tmp_path / "export.csv")
    import_file(empty_app.db, empty_app.hasher, tmp_path / "export.csv")
    customer.edit(BICH, "email", "bich@example.com")  # the customer goes on changing things
    codes = {"700000001": "482913", "700000002": "731562"}  # the CIS writes its codes back in
    cis = write_csv(tmp_path / "cis.csv", [{**r, "access_code": codes[r["customer_account"]]} for r in rows])
    before = whole_database(empty_app)
    import_file(empty_app.db, empty_app.hasher, cis)
    assert whole_database(empty_app) == before


def test_what_the_format_cannot_say_is_left_out_and_reported(empty_app: App, tmp_path: Path) -> None:
    import_file(
        empty_app.db,
        empty_app.hasher,
        write_csv(
            tmp_path / "in.csv",
            [good(), good(contact_name="Email Only", contact_phone="", contact_email="only@example.com")],
        ),
    )
    customer = Customer(empty_app, "800000001", "S3cret")
    customer.unassign("Võ Văn Tư", "*0001")
    customer.edit("Email Only", "email", "N")
    report, rows = export(empty_app, tmp_path / "out.csv")
    assert short(rows) == [("800000001", "", "4-001-0001", "99.50", "", "", "", "")]
    assert report.left_out == [
        LeftOut("800000001", "Võ Văn Tư", "no_service_account"),
        LeftOut("800000001", "Email Only", "no_phone_or_email"),
    ]
    before = whole_database(empty_app)
    import_file(empty_app.db, empty_app.hasher, tmp_path / "out.csv")
    assert whole_database(empty_app) == before


def test_values_at_every_columns_limit_survive_the_round_trip(empty_app: App, tmp_path: Path) -> None:
    import_file(
        empty_app.db,
        empty_app.hasher,
        write_csv(tmp_path / "in.csv", [good(**AT_THE_LIMIT)]),
        regions=AT_THE_LIMIT_REGIONS,
    )
    before = whole_database(empty_app)
    _report, rows = export(empty_app, tmp_path / "out.csv")
    assert short(rows) == [
        (
            "9" * 20,
            "",
            AT_THE_LIMIT["service_account"],
            "99999999.99",
            AT_THE_LIMIT["contact_name"],
            "+84912345678",
            AT_THE_LIMIT["contact_email"],
            "vi",
        )
    ]
    assert rows[0]["customer_name"] == AT_THE_LIMIT["customer_name"]
    import_file(empty_app.db, empty_app.hasher, tmp_path / "out.csv")
    assert whole_database(empty_app) == before


def test_an_empty_database_exports_a_header_only(empty_app: App) -> None:
    stream = io.StringIO()
    assert export_contacts(empty_app.db, stream).rows == 0
    assert stream.getvalue() == ",".join(COLUMNS) + "\r\n"
