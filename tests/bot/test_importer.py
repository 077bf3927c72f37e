"""import-accounts: validate everything first against what the columns hold, import all or nothing."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from bot.app import App
from bot.i18n import Catalogs
from bot.importer import COLUMNS, BadRow, Row, import_file, read_rows
from bot.storage.models import (
    Contact,
    ContactAssignment,
    CustomerAccount,
    ImportSnapshot,
    ServiceAccount,
)
from tests.bot.cis import (
    AT_THE_LIMIT,
    AT_THE_LIMIT_REGIONS,
    Customer,
    audit_rows,
    count,
    demo_rows,
    details_text,
    edit,
    good,
    whole_database,
    write_csv,
)
from tests.conftest import DEMO, Chat, verified_chat

CATALOGS = Catalogs()


def reason(bad: BadRow, locale: str = "en") -> str:
    return "; ".join(CATALOGS.render(problem, locale) for problem in bad.problems)


def test_the_demo_file_imports_and_a_customer_can_verify(empty_app: App) -> None:
    report = import_file(empty_app.db, empty_app.hasher, DEMO)
    assert report.imported and report.bad == []
    assert (report.customers_added, report.service_accounts_added, report.contacts_added, report.assignments_added) == (
        2,
        5,
        3,
        4,
    )
    chat = verified_chat(empty_app, "vi")
    assert chat.state == "contacts.menu"


def test_reimporting_updates_in_place_and_keeps_what_customers_added(empty_app: App, tmp_path: Path) -> None:
    import_file(empty_app.db, empty_app.hasher, DEMO)
    chat = verified_chat(empty_app, "en")
    chat.run("1", "Added By Bot", "(626) 555-0188", "n", "2", "1", "y")
    before = (count(empty_app, Contact), count(empty_app, ContactAssignment))
    again = import_file(empty_app.db, empty_app.hasher, DEMO)
    assert (
        again.customers_added,
        again.customers_updated,
        again.codes_hashed,
        again.contacts_added,
        again.assignments_added,
    ) == (0, 0, 0, 0, 0)
    assert (count(empty_app, Contact), count(empty_app, ContactAssignment)) == before

    text = DEMO.read_text(encoding="utf-8").replace("Sunrise Bakery Inc.", "Sunrise Bakery LLC")
    text = text.replace("731562", "999111").replace("C105", "C199")
    changed = tmp_path / "changed.csv"
    changed.write_text(text, encoding="utf-8")
    report = import_file(empty_app.db, empty_app.hasher, changed)
    assert (report.customers_updated, report.codes_hashed, report.service_accounts_updated) == (1, 1, 1)
    other = Chat(empty_app, address="other")
    other.run("", "2", "1", "700000002")
    assert "Verified: Sunrise Bakery LLC" in other.say("999111")


def test_a_bad_row_stops_the_whole_import_and_every_bad_row_is_listed(empty_app: App, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        [
            good(),
            good(service_account="4-001-0002", contact_phone="12345"),
            good(service_account="4-001-0003", customer_account="12"),
            good(service_account="4-001-0004", access_code="other"),
            good(service_account="4-001-0005", contact_language="fr", demand_kw="lots"),
            good(service_account="4-001-0006", contact_name="", contact_phone="", contact_email=""),
        ],
    )
    report = import_file(empty_app.db, empty_app.hasher, path)
    assert not report.imported
    assert [(b.line, reason(b).split(" ")[0]) for b in report.bad] == [
        (3, "contact_phone"),
        (4, "customer_account"),
        (5, "customer_account"),
        (6, "demand_kw"),
    ]
    assert "on line 2" in reason(report.bad[2])
    assert "contact_language must be vi or en" in reason(report.bad[3])
    assert reason(report.bad[3], "vi") == (
        "demand_kw không phải là số kW: 'lots'; contact_language phải là vi hoặc en: 'fr'"
    )
    assert count(empty_app, CustomerAccount) == 0


def test_skip_invalid_imports_the_good_rows(empty_app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [good(), good(service_account="4-001-0002", contact_phone="12345")])
    report = import_file(empty_app.db, empty_app.hasher, path, skip_invalid=True)
    assert report.imported and len(report.bad) == 1
    assert count(empty_app, ServiceAccount) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,c\n1,2,3\n", "missing columns"),
        (",".join(COLUMNS) + "\n" + ",".join(["1"] * 12) + "\n", "more fields than columns"),
        (
            ",".join(COLUMNS) + "\n" + ",".join(good(contact_name="", contact_email="").values()) + "\n",
            "contact_name is required",
        ),
        (",".join(COLUMNS) + "\n" + ",".join(good(service_account="x;DROP").values()) + "\n", "service_account"),
        (
            ",".join(COLUMNS) + "\n" + ",".join(good(contact_name='"' + "x" * 200_000 + '"').values()) + "\n",
            "not readable as CSV",
        ),
    ],
)
def test_malformed_files_are_explained(text: str, expected: str) -> None:
    rows, bad = read_rows(io.StringIO(text))
    assert rows == [] and expected in reason(bad[0])


# -- consistency between rows ------------------------------------------------------------------------------

INCONSISTENT = [
    (
        "a customer with two names",
        [good(), good(service_account="4-001-0002", customer_name="Other")],
        "customer_account has another access_code or customer_name on line 2",
    ),
    (
        "a service account of two customers",
        [good(), good(customer_account="800000002")],
        "service_account belongs to another customer_account on line 2",
    ),
    (
        "a service account with two addresses",
        [good(), good(contact_phone="626-555-0112", service_address="2 Main")],
        "service_account has another service_address, outage_group or demand_kw on line 2",
    ),
    (
        "a contact with two names",
        [good(), good(service_account="4-001-0002", contact_name="Võ Tư")],
        "the same contact (by phone, else email) has another contact_name, contact_email or contact_language on line 2",
    ),
    (
        "a contact with two languages",
        [good(), good(service_account="4-001-0002", contact_language="en")],
        "the same contact (by phone, else email) has another",
    ),
]


@pytest.mark.parametrize(("rows", "expected"), [c[1:] for c in INCONSISTENT], ids=[c[0] for c in INCONSISTENT])
def test_rows_that_contradict_an_earlier_row_are_bad(rows: list[dict[str, str]], expected: str) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    parsed, bad = read_rows(io.StringIO(buffer.getvalue()))
    assert len(parsed) == 1 and len(bad) == 1 and expected in reason(bad[0])


def test_the_same_row_twice_is_one_row(empty_app: App, tmp_path: Path) -> None:
    report = import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / "twice.csv", [good(), good()]))
    assert report.bad == [] and (report.contacts_added, report.assignments_added) == (1, 1)


def test_no_access_code_is_stored_in_the_clear(empty_app: App) -> None:
    import_file(empty_app.db, empty_app.hasher, DEMO)
    with empty_app.db.engine.connect() as conn:
        hashes = [r[0] for r in conn.execute(select(CustomerAccount.access_code_hash))]
    assert all(h.startswith("scrypt$") and "482913" not in h and "731562" not in h for h in hashes)


# -- what the columns hold (item: validate against the models, on both databases) ----------------------------

OVER_THE_LIMIT = [  # (column, value, reason): each is a bad row, never a database error
    ("customer_account", "9" * 21, "customer_account must be 6 to 20 digits"),
    ("access_code", "c" * 65, "access_code must be at most 64 characters without spaces"),
    ("customer_name", "x" * 201, "customer_name is required (at most 200 characters)"),
    ("service_account", "9" * 21, "service_account must be 4 to 20 letters, digits or dashes"),
    ("service_address", "x" * 201, "service_address is required (at most 200 characters)"),
    ("outage_group", "G" * 21, "outage_group is required (at most 20 characters)"),
    ("demand_kw", "99999999.999", "demand_kw does not fit the database (at most 99999999.99 kW): '99999999.999'"),
    ("demand_kw", "100000000", "demand_kw does not fit the database"),
    ("demand_kw", "1e400", "demand_kw does not fit the database"),
    ("demand_kw", "-1", "demand_kw is not a number of kW"),
    ("demand_kw", "NaN", "demand_kw is not a number of kW"),
    ("contact_name", "x" * 101, "contact_name is longer than 100 characters"),
    ("contact_phone", "9" * 40, "contact_phone is not a valid phone number"),
    ("contact_email", "a" * 64 + "@" + "b" * 186 + ".com", "contact_email is not an email address"),
    ("contact_language", "x" * 10_000, "contact_language must be vi or en"),
    ("customer_name", "Phở\x00Bolsa", "customer_name contains a control character"),
    ("contact_name", "An\x1b[31m", "contact_name contains a control character"),
    ("service_address", "9200\x07Bolsa", "service_address contains a control character"),
]


def test_values_at_each_columns_limit_import_on_both_databases(empty_app: App, tmp_path: Path) -> None:
    report = import_file(
        empty_app.db,
        empty_app.hasher,
        write_csv(tmp_path / "limits.csv", [good(**AT_THE_LIMIT)]),
        regions=AT_THE_LIMIT_REGIONS,
    )
    assert report.imported and report.bad == [], [reason(b) for b in report.bad]
    with empty_app.db.engine.connect() as conn:
        stored = conn.execute(
            select(
                CustomerAccount.number,
                CustomerAccount.name,
                ServiceAccount.number,
                ServiceAccount.service_address,
                ServiceAccount.demand_kw,
                Contact.name,
                Contact.phone,
                Contact.email,
                Contact.language,
            )
            .join(ServiceAccount, ServiceAccount.customer_id == CustomerAccount.id)
            .join(Contact, Contact.customer_id == CustomerAccount.id)
        ).one()
    assert tuple(stored) == (
        AT_THE_LIMIT["customer_account"],
        AT_THE_LIMIT["customer_name"],
        AT_THE_LIMIT["service_account"],
        AT_THE_LIMIT["service_address"],
        Decimal("99999999.99"),
        AT_THE_LIMIT["contact_name"],
        "+84912345678",
        AT_THE_LIMIT["contact_email"],
        "vi",
    )


@pytest.mark.parametrize(
    ("column", "value", "expected"), OVER_THE_LIMIT, ids=[f"{c}-{i}" for i, (c, _v, _e) in enumerate(OVER_THE_LIMIT)]
)
def test_a_value_the_column_cannot_hold_is_a_bad_row_on_both_databases(
    empty_app: App, tmp_path: Path, column: str, value: str, expected: str
) -> None:
    path = write_csv(tmp_path / "huge.csv", [good(**{column: value})])
    report = import_file(empty_app.db, empty_app.hasher, path)
    assert not report.imported and report.error is None
    assert len(report.bad) == 1 and expected in reason(report.bad[0])
    assert count(empty_app, CustomerAccount) == 0


def test_demand_is_kept_to_the_hundredth_as_the_column_holds_it(empty_app: App, tmp_path: Path) -> None:
    rows = [good(demand_kw="1.005"), good(service_account="4-001-0002", demand_kw="2.5e1", contact_name="")]
    rows[1].update(contact_phone="", contact_email="", contact_language="")
    import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / "kw.csv", rows))
    with empty_app.db.engine.connect() as conn:
        kw = sorted(str(v) for v in conn.execute(select(ServiceAccount.demand_kw)).scalars())
    assert kw == ["1.01", "25.00"]


def test_text_is_stored_in_nfc(empty_app: App, tmp_path: Path) -> None:
    decomposed = "Nguye\u0302\u0303n Va\u0306n Tu\u031b"  # what some exports write for "Nguyễn Văn Tư"
    import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / "nfd.csv", [good(contact_name=decomposed)]))
    with empty_app.db.engine.connect() as conn:
        assert conn.execute(select(Contact.name)).scalar_one() == "Nguyễn Văn Tư"


# -- access codes -------------------------------------------------------------------------------------------


def credential(app: App, number: str = "700000002") -> tuple[int, int, datetime | None]:
    with app.db.engine.connect() as conn:
        row = conn.execute(
            select(
                CustomerAccount.credential_version, CustomerAccount.failed_attempts, CustomerAccount.locked_until
            ).where(CustomerAccount.number == number)
        ).one()
    return row[0], row[1], row[2]


def verifies(app: App, code: str, account: str = "700000002") -> bool:
    chat = Chat(app, address=f"check-{code}")
    chat.run("", "2", "1", account)
    return "Verified:" in chat.say(code)


@pytest.mark.parametrize(
    ("code", "bumped", "verifies_with"),
    [
        ("731562", 0, "731562"),  # the same code: nothing changes
        ("", 0, "731562"),  # empty: the customer account exists, so it keeps its code
        ("999111", 1, "999111"),  # a new code: sessions verified with the old one end at their next turn
    ],
)
def test_a_new_access_code_moves_the_credential_version(
    empty_app: App, tmp_path: Path, code: str, bumped: int, verifies_with: str
) -> None:
    import_file(empty_app.db, empty_app.hasher, DEMO)
    rows = edit(demo_rows(), {"customer_account": "700000002"}, access_code=code)
    report = import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / "codes.csv", rows))
    assert report.imported and report.bad == []
    assert (credential(empty_app)[0], report.codes_hashed) == (bumped, bumped)
    assert verifies(empty_app, verifies_with)


def test_a_new_access_code_ends_a_lockout(empty_app: App, tmp_path: Path) -> None:
    """The utility issues a new code to a locked-out customer: it works at once."""
    import_file(empty_app.db, empty_app.hasher, DEMO)
    guesser = Chat(empty_app, address="guesser")
    guesser.run("", "2", "1")
    for guess in ("111111", "222222", "333333", "444444", "555555"):
        guesser.run("700000002", guess)
    version, _failed, locked_until = credential(empty_app)
    assert locked_until is not None and not verifies(empty_app, "731562")
    rows = edit(demo_rows(), {"customer_account": "700000002"}, access_code="999111")
    import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / "new-code.csv", rows))
    assert credential(empty_app) == (version + 1, 0, None)
    assert verifies(empty_app, "999111")


def test_an_unchanged_code_leaves_a_lockout_alone(empty_app: App) -> None:
    import_file(empty_app.db, empty_app.hasher, DEMO)
    until = datetime.now(UTC) + timedelta(minutes=10)
    with empty_app.db.engine.begin() as conn:
        conn.execute(
            update(CustomerAccount)
            .where(CustomerAccount.number == "700000002")
            .values(failed_attempts=0, locked_until=until)
        )
    import_file(empty_app.db, empty_app.hasher, DEMO)
    assert credential(empty_app) == (0, 0, until)


def test_the_audit_says_a_code_changed_but_never_what_it_is(empty_app: App, tmp_path: Path) -> None:
    import_file(empty_app.db, empty_app.hasher, DEMO)
    rows = edit(demo_rows(), {"customer_account": "700000002"}, access_code="999111")
    import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / "codes.csv", rows))
    update_row = [d for a, _c, _addr, d in audit_rows(empty_app) if a == "import.customer.update"]
    assert update_row == [{"number": "700000002", "changes": {"access_code": "changed"}, "credential_version": 1}]
    everything = details_text(audit_rows(empty_app))
    with empty_app.db.engine.connect() as conn:
        hashes = list(conn.execute(select(CustomerAccount.access_code_hash)).scalars())
    assert "999111" not in everything and "731562" not in everything and "482913" not in everything
    assert "scrypt" not in everything and not any(h.split("$")[-1] in everything for h in hashes)


def test_an_empty_access_code_is_refused_for_a_new_customer_account(empty_app: App, tmp_path: Path) -> None:
    import_file(empty_app.db, empty_app.hasher, DEMO)
    rows = [*demo_rows(), good(access_code=""), good(access_code="", service_account="4-001-0002")]
    path = write_csv(tmp_path / "new.csv", rows)
    report = import_file(empty_app.db, empty_app.hasher, path)
    assert not report.imported
    assert [(b.line, reason(b)) for b in report.bad] == [
        (line, "access_code is empty: customer_account 800000001 is new and needs its access code") for line in (8, 9)
    ]
    skipped = import_file(empty_app.db, empty_app.hasher, path, skip_invalid=True)
    assert skipped.imported and len(skipped.bad) == 2 and count(empty_app, CustomerAccount) == 2


def test_a_customer_cannot_have_a_code_on_one_row_and_none_on_another() -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows([good(), good(service_account="4-001-0002", access_code="")])
    _rows, bad = read_rows(io.StringIO(buffer.getvalue()))
    assert "customer_account has another access_code or customer_name on line 2" in reason(bad[0])


# -- all or nothing -----------------------------------------------------------------------------------------

FAIL_ON_CHAU = {  # refuses one particular contact, for real, inside the database
    "sqlite": [
        """CREATE TRIGGER refuse_chau BEFORE INSERT ON contacts WHEN NEW.phone = '+17145550103'
                  BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"""
    ],
    "postgresql": [
        """CREATE FUNCTION refuse_chau() RETURNS trigger LANGUAGE plpgsql AS $$
                      BEGIN RAISE EXCEPTION 'refused by the test trigger'; END $$""",
        """CREATE TRIGGER refuse_chau BEFORE INSERT ON contacts FOR EACH ROW
                      WHEN (NEW.phone = '+17145550103') EXECUTE FUNCTION refuse_chau()""",
    ],
}


@pytest.fixture
def refusing_database(empty_app: App) -> App:
    with empty_app.db.engine.begin() as conn:
        for statement in FAIL_ON_CHAU[empty_app.db.dialect]:
            conn.execute(text(statement))
    yield empty_app  # type: ignore[misc]
    with empty_app.db.engine.begin() as conn:
        conn.execute(
            text(
                "DROP TRIGGER IF EXISTS refuse_chau" + (" ON contacts" if empty_app.db.dialect == "postgresql" else "")
            )
        )
        if empty_app.db.dialect == "postgresql":
            conn.execute(text("DROP FUNCTION IF EXISTS refuse_chau()"))


def chau_last(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The file with new customers, accounts and codes first, and the refused contact on its last row."""
    rows = edit(rows, {"customer_account": "700000002"}, access_code="999111", customer_name="Sunrise LLC")
    rows = edit(rows, {"service_account": "3-001-1003"}, outage_group="B099")
    new = [
        good(),
        good(service_account="4-001-0002", contact_phone="", contact_name="", contact_email="", contact_language=""),
    ]
    return [*rows, *new, {**rows[0], "contact_name": "Đỗ Minh Châu", "contact_phone": "(714) 555-0103"}]


@pytest.mark.parametrize("before", ["an empty database", "the demo imported"])
def test_a_write_refused_late_leaves_nothing_of_the_file(refusing_database: App, tmp_path: Path, before: str) -> None:
    app = refusing_database
    if before == "the demo imported":
        import_file(app.db, app.hasher, DEMO)
        Customer(app).unassign("Nguyễn Văn An", "*1001")
    state = whole_database(app)
    with app.db.engine.connect() as conn:
        snapshots = conn.execute(select(ImportSnapshot.id, ImportSnapshot.contact_key)).all()
    report = import_file(app.db, app.hasher, write_csv(tmp_path / "late.csv", chau_last(demo_rows())))
    assert not report.imported and report.error is not None
    assert "refused by the test trigger" in CATALOGS.render(report.error, "en")
    assert whole_database(app) == state
    with app.db.engine.connect() as conn:
        assert conn.execute(select(ImportSnapshot.id, ImportSnapshot.contact_key)).all() == snapshots
    assert (report.customers_added, report.customers_updated, report.contacts_added) == (0, 0, 0)


def _one(**overrides: str) -> tuple[list[Row], list[BadRow]]:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerow(good(**overrides))
    return read_rows(io.StringIO(text.getvalue()))


@pytest.mark.parametrize(
    ("column", "value", "stored"),
    [
        ("customer_account", "８００ ０００ ００１", None),  # spaces are not part of the number in the file
        ("customer_account", "８０００００００１", "800000001"),
        ("customer_account", "٨٠٠٠٠٠٠٠١", "800000001"),
        ("customer_account", "80000000¹", None),
        ("customer_account", "⑧⓪⓪⓪⓪⓪⓪⓪①", None),
        ("access_code", "４８２９１３", "482913"),
        ("access_code", "S３cret", "S3cret"),
        ("contact_phone", "(６２６) ５５５-０１１１", "+16265550111"),
        ("contact_phone", "¹ 626 555 0111", None),
    ],
)
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


FAIL_AT_COMMIT = {  # accepts every statement, then refuses the commit: a deferred check on one contact
    "sqlite": [
        "CREATE TABLE refuse_at_commit (phone TEXT REFERENCES nowhere_at_all (phone) DEFERRABLE INITIALLY DEFERRED)",
        "CREATE TABLE nowhere_at_all (phone TEXT PRIMARY KEY)",
        """CREATE TRIGGER refuse_chau_later AFTER INSERT ON contacts WHEN NEW.phone = '+17145550103'
                  BEGIN INSERT INTO refuse_at_commit VALUES (NEW.phone); END""",
    ],
    "postgresql": [
        """CREATE FUNCTION refuse_chau_later() RETURNS trigger LANGUAGE plpgsql AS $$
                      BEGIN RAISE EXCEPTION 'refused at commit by the test trigger'; END $$""",
        """CREATE CONSTRAINT TRIGGER refuse_chau_later AFTER INSERT ON contacts DEFERRABLE INITIALLY
                      DEFERRED FOR EACH ROW WHEN (NEW.phone = '+17145550103') EXECUTE FUNCTION refuse_chau_later()""",
    ],
}


def test_a_commit_the_database_refuses_is_reported_and_leaves_nothing(empty_app: App, tmp_path: Path) -> None:
    dialect = empty_app.db.dialect
    with empty_app.db.engine.begin() as conn:
        for statement in FAIL_AT_COMMIT[dialect]:
            conn.execute(text(statement))
    try:
        report = import_file(empty_app.db, empty_app.hasher, write_csv(tmp_path / "late.csv", chau_last(demo_rows())))
        assert not report.imported and report.error is not None
        assert "whether the file was imported is not known" in CATALOGS.render(report.error, "en")
        assert count(empty_app, CustomerAccount) == 0 and count(empty_app, Contact) == 0
        # the refused commit left nothing open: the same process goes on serving turns
        assert "rotating outage alerts" in Chat(empty_app, address="after-the-refusal").say("")
    finally:
        with empty_app.db.engine.begin() as conn:
            if dialect == "postgresql":
                conn.execute(text("DROP TRIGGER IF EXISTS refuse_chau_later ON contacts"))
                conn.execute(text("DROP FUNCTION IF EXISTS refuse_chau_later()"))


# -- one rule for emails and phones, in the import and in the dialogs ----------------------------------------

EMAILS = [
    "tu@example.com",
    "Maria.Lopez@Sunrise.Example",
    "x@-bad-.com",
    "a@b",
    "user@localhost",
    "x@[1.2.3.4]",
    "two@@example.com",
    "nguyễn@ví.vn",
    "a" * 65 + "@example.com",
    " spaced@example.com ",
]
PHONES = [
    "626-555-0111",
    "+1 604 555 0123",
    "+44 7700 900123",
    "+1 876 555 0123",
    "+84 912 345 678",
    "(626) 555-01",
    "+1 800 555 0123",
]


@pytest.mark.parametrize("email", EMAILS)
def test_the_import_and_the_dialogs_agree_on_an_email(email: str) -> None:
    from dialogs.fields import email_address

    rows, bad = read_rows(io.StringIO(_csv([good(contact_email=email)])))
    assert (email_address(email) is None) == bool(bad), [reason(b) for b in bad]
    if rows:
        assert rows[0].email == email_address(email)


@pytest.mark.parametrize("phone", PHONES)
def test_the_import_and_the_dialogs_agree_on_a_number(phone: str) -> None:
    from dialogs.fields import alert_number

    rows, bad = read_rows(io.StringIO(_csv([good(contact_phone=phone)])))
    dialog = alert_number(phone, "US", ("US", "CA"))
    assert isinstance(dialog, str) == bool(rows), [reason(b) for b in bad]
    if rows:
        assert rows[0].phone == dialog
    else:
        assert "outside the regions alerts go to (US, CA)" in reason(bad[0]) or "not a valid" in reason(bad[0])


def _csv(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
