"""What a re-import owns: the CIS's accounts, and only the contact rows the CIS really changed.

Each case: what the customer did through the bot, what the CIS changed in its next export, and the
contacts of customer 700000001 afterwards, as (name, phone, email, language, service accounts). The demo
export gives it Nguyễn Văn An on 3-001-1001 and 3-001-1002, and Trần Thị Bích on 3-001-1002.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete

from bot.app import App
from bot.importer import import_file
from bot.storage.models import Contact
from tests.bot.cis import (
    Customer,
    Rows,
    audit_rows,
    contacts_of,
    count,
    demo_rows,
    edit,
    whole_database,
    write_csv,
)

AN, BICH = "Nguyễn Văn An", "Trần Thị Bích"
AN_ROWS = {"contact_name": AN}
Action = tuple[str, ...]


def same(rows: Rows) -> Rows:
    return rows


def cis_adds_an_on_1003(rows: Rows) -> Rows:
    extra = {
        **rows[0],
        "service_account": "3-001-1003",
        "service_address": "10130 Westminster Ave Garden Grove",
        "outage_group": "B021",
        "demand_kw": "60",
    }
    return [*rows, extra]


def cis_adds(name: str, phone: str, language: str = "vi") -> Callable[[Rows], Rows]:
    def change(rows: Rows) -> Rows:
        return [
            *rows,
            {
                **rows[0],
                "contact_name": name,
                "contact_phone": phone,
                "contact_email": "",
                "contact_language": language,
            },
        ]

    return change


def cis_drops_bich(rows: Rows) -> Rows:
    return [r for r in rows if r["contact_name"] != BICH]


CASES: list[tuple[str, list[Action], Callable[[Rows], Rows], set[tuple[str, str | None, str | None, str, str]]]] = [
    # -- the same file again: nothing the customer did is undone ----------------------------------------
    (
        "nothing changed anywhere",
        [],
        same,
        {
            (AN, "+17145550101", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "bot removed An from 1001",
        [("unassign", AN, "*1001")],
        same,
        {
            (AN, "+17145550101", "an@phobolsa.example", "vi", "3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "bot changed An's phone",
        [("edit", AN, "phone", "(714) 555-0199")],
        same,
        {
            (AN, "+17145550199", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "bot changed An's name",
        [("edit", AN, "name", "An Nguyen")],
        same,
        {
            ("An Nguyen", "+17145550101", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "bot changed An's email",
        [("edit", AN, "email", "an@gmail.example")],
        same,
        {
            (AN, "+17145550101", "an@gmail.example", "vi", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "bot removed An's email",
        [("edit", AN, "email", "N")],
        same,
        {(AN, "+17145550101", None, "vi", "3-001-1001 3-001-1002"), (BICH, "+17145550102", None, "vi", "3-001-1002")},
    ),
    (
        "bot changed An's language",
        [("edit", AN, "language", "English")],
        same,
        {
            (AN, "+17145550101", "an@phobolsa.example", "en", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "bot added Bích to 1001 and a new contact",
        [("assign", BICH, "*1001"), ("add", "Bob Added", "(626) 555-0188", "*1003")],
        same,
        {
            (AN, "+17145550101", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1001 3-001-1002"),
            ("Bob Added", "+16265550188", None, "en", "3-001-1003"),
        },
    ),
    (
        "bot did everything to An at once",
        [
            ("edit", AN, "phone", "(714) 555-0199"),
            ("unassign", AN, "*1002"),
            ("edit", AN, "language", "English"),
            ("edit", AN, "name", "An Nguyen"),
        ],
        same,
        {
            ("An Nguyen", "+17145550199", "an@phobolsa.example", "en", "3-001-1001"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    # -- the CIS changed a row: what it changed applies, and only that ----------------------------------
    (
        "CIS renamed An; bot had changed her language",
        [("edit", AN, "language", "English")],
        lambda rows: edit(rows, AN_ROWS, contact_name="Nguyễn Thị An"),
        {
            ("Nguyễn Thị An", "+17145550101", "an@phobolsa.example", "en", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "CIS and bot both renamed An: the later change, the CIS's, stands",
        [("edit", AN, "name", "An Nguyen")],
        lambda rows: edit(rows, AN_ROWS, contact_name="Nguyễn Thị An"),
        {
            ("Nguyễn Thị An", "+17145550101", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "CIS changed An's email; bot had changed her phone",
        [("edit", AN, "phone", "(714) 555-0199")],
        lambda rows: edit(rows, AN_ROWS, contact_email="an@new.example"),
        {
            (AN, "+17145550199", "an@new.example", "vi", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "CIS put An on 1003; bot had removed her from 1001",
        [("unassign", AN, "*1001")],
        cis_adds_an_on_1003,
        {
            (AN, "+17145550101", "an@phobolsa.example", "vi", "3-001-1002 3-001-1003"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "CIS changed An's phone: the same person, a new number",
        [("edit", AN, "language", "English"), ("unassign", AN, "*1001")],
        lambda rows: edit(rows, AN_ROWS, contact_phone="(714) 555-0155"),
        {
            (AN, "+17145550155", "an@phobolsa.example", "en", "3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "CIS changed An's phone after the bot had changed it",
        [("edit", AN, "phone", "(714) 555-0199")],
        lambda rows: edit(rows, AN_ROWS, contact_phone="(714) 555-0155"),
        {
            (AN, "+17145550155", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "CIS changed An's phone and name at once: a new person",
        [],
        lambda rows: edit(rows, AN_ROWS, contact_phone="(714) 555-0155", contact_name="Lý Văn Minh"),
        {
            (AN, "+17145550101", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
            ("Lý Văn Minh", "+17145550155", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "CIS gave Bích an email in place of her phone: the same person",
        [("assign", BICH, "*1003")],
        lambda rows: edit(rows, {"contact_name": BICH}, contact_phone="", contact_email="bich@example.com"),
        {
            (AN, "+17145550101", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
            (BICH, None, "bich@example.com", "vi", "3-001-1002 3-001-1003"),
        },
    ),
    (
        "CIS added a second An with another number: the first one stays as she is",
        [],
        cis_adds(AN, "(714) 555-0155"),
        {
            (AN, "+17145550101", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
            (AN, "+17145550155", None, "vi", "3-001-1001"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
    (
        "CIS added a contact",
        [],
        cis_adds("Đỗ Minh Châu", "(714) 555-0103"),
        {
            (AN, "+17145550101", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
            ("Đỗ Minh Châu", "+17145550103", None, "vi", "3-001-1001"),
        },
    ),
    (
        "CIS added the contact the customer had added: the CIS's row applies",
        [("add", "Bob", "(714) 555-0103", "*1003")],
        cis_adds("Đỗ Minh Châu", "(714) 555-0103"),
        {
            (AN, "+17145550101", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
            ("Đỗ Minh Châu", "+17145550103", None, "vi", "3-001-1001 3-001-1003"),
        },
    ),
    (
        "CIS left Bích out of its export: nothing is deleted",
        [],
        cis_drops_bich,
        {
            (AN, "+17145550101", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
            (BICH, "+17145550102", None, "vi", "3-001-1002"),
        },
    ),
]


def act(customer: Customer, action: Action) -> None:
    kind, *args = action
    getattr(customer, kind)(*args)


@pytest.mark.parametrize(("bot", "cis", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_reimport_keeps_what_customers_did_and_applies_what_the_cis_changed(
    empty_app: App,
    tmp_path: Path,
    bot: list[Action],
    cis: Callable[[Rows], Rows],
    expected: set[tuple[str, str | None, str | None, str, str]],
) -> None:
    first = write_csv(tmp_path / "cis-monday.csv", demo_rows())
    assert import_file(empty_app.db, empty_app.hasher, first).imported
    customer = Customer(empty_app)
    for action in bot:
        act(customer, action)
    again = write_csv(tmp_path / "cis-tuesday.csv", cis(demo_rows()))
    report = import_file(empty_app.db, empty_app.hasher, again)
    assert report.imported and report.error is None
    assert contacts_of(empty_app) == expected
    assert contacts_of(empty_app, "700000002") == {
        ("Maria Lopez", "+16265550100", "maria@sunrise.example", "en", "3-002-2001")
    }
    # and the same file once more changes nothing at all
    before = whole_database(empty_app)
    report = import_file(empty_app.db, empty_app.hasher, again)
    assert (
        report.customers_updated,
        report.service_accounts_updated,
        report.contacts_added,
        report.contacts_updated,
        report.assignments_added,
    ) == (0, 0, 0, 0, 0)
    assert whole_database(empty_app) == before


def test_the_same_file_again_writes_no_contact_and_no_audit_row(empty_app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cis.csv", demo_rows())
    import_file(empty_app.db, empty_app.hasher, path)
    Customer(empty_app).unassign(AN, "*1001")
    before = whole_database(empty_app)
    report = import_file(empty_app.db, empty_app.hasher, path)
    assert whole_database(empty_app) == before
    assert (report.rows_unchanged, report.contacts_added, report.assignments_added) == (4, 0, 0)


def test_a_contact_deleted_since_comes_back_only_when_the_cis_changes_its_row(empty_app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cis.csv", demo_rows())
    import_file(empty_app.db, empty_app.hasher, path)
    with empty_app.db.engine.begin() as conn:  # the bot cannot delete a contact (yet); an operator can
        conn.execute(delete(Contact).where(Contact.name == BICH))
    import_file(empty_app.db, empty_app.hasher, path)
    assert BICH not in {c[0] for c in contacts_of(empty_app)}
    changed = write_csv(tmp_path / "changed.csv", edit(demo_rows(), {"contact_name": BICH}, contact_language="en"))
    import_file(empty_app.db, empty_app.hasher, changed)
    assert (BICH, "+17145550102", None, "en", "3-001-1002") in contacts_of(empty_app)


def test_a_customer_adding_the_new_cis_number_first_keeps_one_contact(empty_app: App, tmp_path: Path) -> None:
    """The CIS moves An to 0155, which the customer had already added as a contact of its own."""
    import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / "a.csv", demo_rows()))
    Customer(empty_app).add("An Mobile", "(714) 555-0155", "*1003")
    moved = write_csv(tmp_path / "b.csv", edit(demo_rows(), AN_ROWS, contact_phone="(714) 555-0155"))
    report = import_file(empty_app.db, empty_app.hasher, moved)
    assert report.imported
    assert contacts_of(empty_app) == {
        (AN, "+17145550101", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002"),
        (AN, "+17145550155", "an@phobolsa.example", "vi", "3-001-1001 3-001-1002 3-001-1003"),
        (BICH, "+17145550102", None, "vi", "3-001-1002"),
    }


def test_a_service_account_moved_to_another_customer_loses_the_old_customers_contacts(
    empty_app: App, tmp_path: Path
) -> None:
    import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / "a.csv", demo_rows()))
    sold = [r for r in demo_rows() if r["service_account"] != "3-001-1001"] + [
        {
            **demo_rows()[4],
            "service_account": "3-001-1001",
            "contact_name": "",
            "contact_phone": "",
            "contact_email": "",
            "contact_language": "",
        }
    ]
    import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / "b.csv", sold))
    assert contacts_of(empty_app) == {
        (AN, "+17145550101", "an@phobolsa.example", "vi", "3-001-1002"),
        (BICH, "+17145550102", None, "vi", "3-001-1002"),
    }
    assert contacts_of(empty_app, "700000002") == {
        ("Maria Lopez", "+16265550100", "maria@sunrise.example", "en", "3-002-2001")
    }
    moved = [d for a, _c, _addr, d in audit_rows(empty_app) if a == "import.service_account.update"]
    assert moved[0]["changes"]["customer_account"] == {"old": "700000001", "new": "700000002"}
    assert count(empty_app, Contact) == 3


# -- the audit -----------------------------------------------------------------------------------------------


def test_every_change_an_import_makes_is_audited_with_the_files_name(empty_app: App, tmp_path: Path) -> None:
    import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / "cis-2026-11-27.csv", demo_rows()))
    rows = audit_rows(empty_app)
    assert {addr for _a, _c, addr, _d in rows} == {"cis-2026-11-27.csv"}
    assert all(customer is not None for _a, customer, _addr, _d in rows)
    actions = [a for a, *_ in rows]
    assert {a: actions.count(a) for a in actions} == {
        "import.customer.add": 2,
        "import.service_account.add": 2,
        "import.contact.add": 3,
        "import.assign": 3,
    }
    an = next(d for a, _c, _addr, d in rows if a == "import.contact.add" and d["name"] == AN)
    assert an == {
        "contact_id": an["contact_id"],
        "name": AN,
        "phone": "+17145550101",
        "email": "an@phobolsa.example",
        "language": "vi",
    }
    accounts = next(d for a, _c, _addr, d in rows if a == "import.service_account.add")["service_accounts"]
    assert [a["number"] for a in accounts] == ["3-001-1001", "3-001-1002", "3-001-1003"]
    assert accounts[0] == {
        "number": "3-001-1001",
        "service_address": "9200 Bolsa Ave Westminster",
        "outage_group": "A012",
        "demand_kw": "85.00",
    }
    assigned = next(d for a, _c, _addr, d in rows if a == "import.assign" and d["contact_id"] == an["contact_id"])
    assert assigned["service_accounts"] == ["3-001-1001", "3-001-1002"]


def test_a_file_name_longer_than_the_audit_holds_is_cut_not_refused(empty_app: App, tmp_path: Path) -> None:
    name = "cis-export-" + "x" * 200 + ".csv"  # 215 characters, more than audit_log.address holds
    report = import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / name, demo_rows()))
    assert report.imported and report.error is None
    assert {addr for _a, _c, addr, _d in audit_rows(empty_app)} == {name[:128]}


def test_updates_are_audited_with_old_and_new_values(empty_app: App, tmp_path: Path) -> None:
    import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / "a.csv", demo_rows()))
    rows = edit(demo_rows(), {"customer_account": "700000002"}, customer_name="Sunrise Bakery LLC")
    rows = edit(rows, {"service_account": "3-002-2002"}, outage_group="C199", demand_kw="151.25")
    rows = edit(rows, {"contact_name": "Maria Lopez"}, contact_language="vi")
    import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / "b.csv", rows))
    changes = [(a, d) for a, _c, addr, d in audit_rows(empty_app) if addr == "b.csv"]
    assert [a for a, _d in changes] == [
        "import.customer.update",
        "import.service_account.update",
        "import.contact.update",
    ]
    assert changes[0][1]["changes"] == {"name": {"old": "Sunrise Bakery Inc.", "new": "Sunrise Bakery LLC"}}
    assert changes[1][1] == {
        "number": "3-002-2002",
        "changes": {"outage_group": {"old": "C105", "new": "C199"}, "demand_kw": {"old": "150.00", "new": "151.25"}},
    }
    assert changes[2][1]["changes"] == {"language": {"old": "en", "new": "vi"}}
