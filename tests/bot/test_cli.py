"""The ``outagebot`` command, run as a real process, as a user or a script would."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def run(
    args: list[str], tmp_path: Path, stdin: str = "", timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """``outagebot ARGS`` in ``tmp_path``: on the default database (``./outagebot.db``) unless told otherwise."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OUTAGEBOT_")}
    environ.update({"OUTAGEBOT_SCRYPT_N": "16", **env})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environ,
        timeout=timeout,
        check=False,
    )


OTHER_DB = {"OUTAGEBOT_PEPPER": "cli-test-pepper"}  # a configured deployment: its own pepper and database


def test_a_scripted_vietnamese_conversation_on_a_fresh_database(tmp_path: Path) -> None:
    script = "1\n700000001\n482913\n1\nLê Thị Cúc\n714.555.0177\nk\n1\ntat ca\nc\n"
    result = run(["chat", "--lang", "vi"], tmp_path, script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Menu chính:\n1 Người liên lạc\n")  # --lang chose the language: no question
    assert "Đã xác minh: Phở Bolsa LLC." in out
    assert "Thêm Lê Thị Cúc?\n(714) 555-0177\nTiếng Việt\nTẤT CẢ 3 tài khoản dịch vụ\nC/K" in out
    assert "Đã lưu. Lê Thị Cúc sẽ nhận cảnh báo cho 3 tài khoản dịch vụ." in out
    assert "Loaded the demo accounts" in result.stderr
    assert f"Database: {tmp_path / 'outagebot.db'}" in result.stderr


def test_chat_on_the_default_database_makes_a_pepper_once_readable_by_the_owner_only(tmp_path: Path) -> None:
    first = run(["chat", "--lang", "en"], tmp_path, "1\n700000002\n731562\n")
    pepper = tmp_path / "outagebot.db.pepper"
    assert "Made a secret pepper for this demo database in " + str(pepper) in first.stderr
    assert pepper.stat().st_mode & 0o777 == 0o600 and len(pepper.read_text().strip()) >= 32
    assert "Verified: Sunrise Bakery Inc. Please choose:" in first.stdout
    again = run(["chat", "--lang", "en", "--address", "other"], tmp_path, "1\n700000002\n731562\n")
    assert "Made a secret pepper" not in again.stderr  # the same pepper, so the codes still verify
    assert "Verified: Sunrise Bakery Inc. Please choose:" in again.stdout


@pytest.mark.parametrize("args", [["serve", "--port", "1"], ["import-accounts", "README.md"]])
def test_serve_and_import_refuse_to_start_without_a_pepper(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "README.md").write_text("customer_account\n", encoding="utf-8")
    result = run(args, tmp_path, timeout=30)
    assert result.returncode == 4
    assert result.stderr.strip().splitlines() == [
        "OUTAGEBOT_PEPPER (or OUTAGEBOT_PEPPER_FILE) is not set: it keeps access codes safe and must come "
        "from outside the database"
    ]
    assert not (tmp_path / "outagebot.db.pepper").exists()


def test_a_pepper_file_is_read_and_an_empty_one_refused(tmp_path: Path) -> None:
    secret = tmp_path / "pepper"
    secret.write_text("", encoding="utf-8")
    refused = run(
        ["import-accounts", str(ROOT / "bot" / "demo_accounts.csv")], tmp_path, OUTAGEBOT_PEPPER_FILE=str(secret)
    )
    assert refused.returncode == 4 and "is empty" in refused.stderr
    secret.write_text("from-a-file\n", encoding="utf-8")
    ok = run(["import-accounts", str(ROOT / "bot" / "demo_accounts.csv")], tmp_path, OUTAGEBOT_PEPPER_FILE=str(secret))
    assert ok.returncode == 0, ok.stderr
    chat = run(["chat", "--lang", "en"], tmp_path, "1\n700000002\n731562\n", OUTAGEBOT_PEPPER_FILE=str(secret))
    assert "Verified: Sunrise Bakery Inc. Please choose:" in chat.stdout


def test_chat_on_another_empty_database_loads_no_demo_accounts(tmp_path: Path) -> None:
    prod = {"OUTAGEBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}", **OTHER_DB}
    assert run(["db", "upgrade"], tmp_path, **prod).returncode == 0
    result = run(["chat", "--lang", "en"], tmp_path, "", **prod)
    assert result.returncode == 0
    assert "Loaded the demo accounts" not in result.stderr
    assert "no customer accounts yet: load them with outagebot import-accounts FILE.csv" in result.stderr


def test_seed_demo_refuses_a_database_with_other_customers(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text(
        "customer_account,access_code,customer_name,service_account,service_address,outage_group,"
        "demand_kw,contact_name,contact_phone,contact_email,contact_language\n"
        "712345678,1,Real Customer,3-009-0001,1 Main St,A001,,,,,\n",
        encoding="utf-8",
    )
    url = {"OUTAGEBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}", **OTHER_DB}
    assert run(["db", "upgrade"], tmp_path, **url).returncode == 0
    assert run(["import-accounts", str(other)], tmp_path, **url).returncode == 0
    result = run(["seed-demo"], tmp_path, **url)
    assert result.returncode == 4 and "holds other customers" in result.stderr


def test_seed_demo_refuses_postgresql(tmp_path: Path) -> None:
    result = run(["seed-demo"], tmp_path, OUTAGEBOT_DATABASE_URL="postgresql://nobody@127.0.0.1:9/none", **OTHER_DB)
    assert result.returncode == 4 and "never into PostgreSQL" in result.stderr


def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    result = run(["serve", "--workers", "2"], tmp_path, **OTHER_DB)
    assert result.returncode == 2 and "--workers above 1 needs PostgreSQL" in result.stderr


def test_bare_outagebot_prints_help_and_succeeds_and_version_prints_the_version(tmp_path: Path) -> None:
    bare = run([], tmp_path)
    assert bare.returncode == 0 and "import-accounts" in bare.stdout and "serve" in bare.stdout
    version = run(["--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("outagebot ") and version.stdout.strip()[-1].isdigit()


def test_help_shows_allowed_values_and_the_settings_a_command_reads(tmp_path: Path) -> None:
    chat = run(["chat", "--help"], tmp_path, COLUMNS="200")
    assert "[vi|en]" in chat.stdout and "OUTAGEBOT_PEPPER_FILE" in chat.stdout
    serve = run(["serve", "--help"], tmp_path, COLUMNS="200")
    assert "OUTAGEBOT_TWILIO_AUTH_TOKEN" in serve.stdout and "OUTAGEBOT_DB_POOL_SIZE" in serve.stdout


def test_a_dotenv_file_in_the_current_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OUTAGEBOT_OPERATOR_LANGUAGE=vi\nOTHER_TOOL_SETTING=ignored\n", encoding="utf-8")
    result = run(["dialogs"], tmp_path)
    assert result.returncode == 0 and "trạng thái" in result.stdout


def test_settings_shows_values_and_never_a_secret(tmp_path: Path) -> None:
    result = run(
        ["settings"],
        tmp_path,
        OUTAGEBOT_PEPPER="pepper-value-1234",
        OUTAGEBOT_DATABASE_URL="postgresql://bot:db-password-5678@db.example/outagebot",
        OUTAGEBOT_TWILIO_AUTH_TOKEN="token-value-9012",
        OUTAGEBOT_LOCKOUT_FAILURES="7",
    )
    assert result.returncode == 0
    lines = set(result.stdout.splitlines())
    assert "OUTAGEBOT_PEPPER=(set)" in lines and "OUTAGEBOT_TWILIO_AUTH_TOKEN=(set)" in lines
    assert "OUTAGEBOT_LOCKOUT_FAILURES=7  (default: 5)" in lines
    assert "postgresql://bot:***@db.example/outagebot" in result.stdout
    for secret in ("pepper-value-1234", "db-password-5678", "token-value-9012"):
        assert secret not in result.stdout + result.stderr


def test_serve_on_a_port_that_is_taken_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run(["serve", "--port", str(port)], tmp_path, timeout=60, **OTHER_DB)
    assert result.returncode == 4
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


def test_serve_refuses_a_port_out_of_range(tmp_path: Path) -> None:
    result = run(["serve", "--port", "70000"], tmp_path, **OTHER_DB)
    assert result.returncode == 2 and "--port" in result.stderr and "65535" in result.stderr


def test_a_scripted_english_conversation_and_a_second_session(tmp_path: Path) -> None:
    first = run(["chat", "--lang", "en"], tmp_path, "1\n700000002\n731562\n6\n")
    assert "1 Maria Lopez, (626) 555-0100: *2001" in first.stdout
    again = run(["chat", "--address", "someone-else"], tmp_path, "2\n4\n")
    assert "Customer Support: 1-800-990-7788." in again.stdout
    assert "Loaded the demo accounts" not in again.stderr


def test_dialogs_prints_a_mermaid_diagram(tmp_path: Path) -> None:
    result = run(["dialogs", "--mermaid"], tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("stateDiagram-v2\n") and "verify_code --> contacts_menu" in result.stdout
    assert "graph and catalogs OK" in run(["dialogs"], tmp_path).stdout


def test_import_accounts_reports_bad_rows_and_imports_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        (ROOT / "bot" / "demo_accounts.csv").read_text(encoding="utf-8")
        + "700000003,1,X,3-003-0001,Somewhere,G,abc,,,,\n",
        encoding="utf-8",
    )
    result = run(["import-accounts", str(bad)], tmp_path, **OTHER_DB)
    assert result.returncode == 1
    assert "line 8: demand_kw is not a number of kW: 'abc'" in result.stderr
    assert "1 bad row of 7; nothing imported. Fix it" in result.stderr  # singular
    ok = run(["import-accounts", "--skip-invalid", str(bad)], tmp_path, **OTHER_DB)
    assert ok.returncode == 3 and "imported 6 of 7 rows" in ok.stdout


def test_import_reports_speak_the_operators_language(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_account,access_code\n1,2\n", encoding="utf-8")
    result = run(["import-accounts", str(bad)], tmp_path, OUTAGEBOT_OPERATOR_LANGUAGE="vi", **OTHER_DB)
    assert result.returncode == 1
    assert "dòng 1: thiếu cột: customer_name, service_account" in result.stderr
    assert "1 dòng sai trên 1 dòng; chưa nhập gì." in result.stderr


def test_import_accounts_refuses_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("customer_account\n700000009\nCafé Bolsa\n".encode("latin-1"))
    result = run(["import-accounts", str(path)], tmp_path, **OTHER_DB)
    assert result.returncode == 2 and "latin1.csv, line 3: not UTF-8 text" in result.stderr


def test_seed_demo_and_python_dash_m(tmp_path: Path) -> None:
    result = run(["seed-demo"], tmp_path)
    assert result.returncode == 0 and "700000001" in result.stdout


def test_bad_settings_are_refused_clearly(tmp_path: Path) -> None:
    result = run(["dialogs"], tmp_path, OUTAGEBOT_TIMEZONE="Mars/Olympus")
    assert result.returncode != 0 and "timezone" in result.stderr


@pytest.mark.parametrize("lang", ["fr", "VIET"])
def test_chat_refuses_an_unknown_language(tmp_path: Path, lang: str) -> None:
    result = run(["chat", "--lang", lang], tmp_path)
    assert result.returncode == 2 and "--lang must be vi or en" in result.stderr


def demo_pepper(tmp_path: Path) -> dict[str, str]:
    """The pepper seed-demo made beside the default database (an import must be given its pepper)."""
    return {"OUTAGEBOT_PEPPER_FILE": str(tmp_path / "outagebot.db.pepper")}


def test_export_contacts_writes_the_import_format_and_never_overwrites_by_accident(tmp_path: Path) -> None:
    assert run(["seed-demo"], tmp_path).returncode == 0
    out = tmp_path / "contacts.csv"
    result = run(["export-contacts", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "exported 6 rows" in result.stdout and "access_code is left empty" in result.stdout
    text = out.read_text(encoding="utf-8")
    assert text.startswith("customer_account,access_code,customer_name,") and "Nguyễn Văn An" in text
    again = run(["export-contacts", str(out)], tmp_path, OUTAGEBOT_OPERATOR_LANGUAGE="vi")
    assert again.returncode == 2 and "đã tồn tại; chưa ghi gì (dùng --overwrite" in again.stderr
    assert out.read_text(encoding="utf-8") == text
    assert run(["export-contacts", "--overwrite", str(out)], tmp_path).returncode == 0
    nowhere = run(["export-contacts", str(tmp_path / "no-such-folder" / "x.csv")], tmp_path)
    assert nowhere.returncode == 2 and "cannot write it" in nowhere.stderr and "Traceback" not in nowhere.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")) == []
    reimport = run(["import-accounts", str(out)], tmp_path, **demo_pepper(tmp_path))
    assert reimport.returncode == 0, reimport.stderr
    assert "contacts +0 ~0, assignments +0; 4 contact rows unchanged" in reimport.stdout


def test_a_write_the_database_refuses_is_reported_and_nothing_is_imported(tmp_path: Path) -> None:
    assert run(["seed-demo"], tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "outagebot.db") as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON contacts WHEN NEW.phone = '+17145550177' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
        )
    path = tmp_path / "more.csv"
    path.write_text(
        (ROOT / "bot" / "demo_accounts.csv").read_text(encoding="utf-8").replace("Inc.", "Co.")
        + "700000001,482913,Phở Bolsa LLC,3-001-1003,10130 Westminster Ave Garden Grove,B021,60,"
        "Lê Thị Cúc,714.555.0177,,vi\n",
        encoding="utf-8",
    )
    result = run(["import-accounts", str(path)], tmp_path, OUTAGEBOT_OPERATOR_LANGUAGE="vi", **demo_pepper(tmp_path))
    assert result.returncode == 5 and "Traceback" not in result.stderr
    assert (
        "cơ sở dữ liệu từ chối một thao tác ghi nên không có gì trong tập tin được nhập: refused by the test "
        "trigger" in result.stderr
    )
    with sqlite3.connect(tmp_path / "outagebot.db") as db:
        assert db.execute("SELECT name FROM customer_accounts WHERE number = '700000002'").fetchone() == (
            "Sunrise Bakery Inc.",
        )
        assert db.execute("SELECT count(*) FROM audit_log WHERE address = 'more.csv'").fetchone() == (0,)


def test_in_a_terminal_the_access_code_is_not_echoed_and_quit_leaves(tmp_path: Path) -> None:
    import pty
    import select
    import time

    primary, secondary = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OUTAGEBOT_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "chat", "--lang", "en"],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        cwd=tmp_path,
        env={**environ, "OUTAGEBOT_SCRYPT_N": "16"},
        close_fds=True,
    )
    os.close(secondary)
    screen, seen = b"", 0  # everything shown, and how much of it the test has read

    def read_until(marker: bytes, seconds: float = 60) -> None:
        nonlocal screen, seen
        deadline = time.monotonic() + seconds
        while marker not in screen[seen:]:
            assert time.monotonic() < deadline, screen.decode(errors="replace")
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                screen += os.read(primary, 4096)
        seen = screen.index(marker, seen) + len(marker)

    try:
        read_until(b"Type quit, exit or tho")
        for answer, marker in (  # --lang en: the main menu is the first thing shown
            (b"1", b"Customer Account Number"),
            (b"700000002", b"access code"),
            (b"731562", b"Verified"),
        ):
            read_until(b"> ")
            time.sleep(0.2)  # the prompt is on screen; let the terminal settle into (no-)echo mode
            os.write(primary, answer + b"\r")
            read_until(marker)
        typed = screen[screen.rindex(b"access code") :]
        assert b"Verified" in typed and b"731562" not in typed  # the code typed was not echoed
        read_until(b"> ")
        os.write(primary, b"quit\r")
        assert process.wait(30) == 0
    finally:
        process.kill()
        os.close(primary)


@pytest.mark.parametrize(
    "args",
    [
        ["export-contacts", "out.csv"],
        ["sessions", "revoke", "700000001"],
        ["import-accounts", str(ROOT / "bot" / "demo_accounts.csv")],
        ["serve"],
    ],
)
def test_an_unreachable_database_is_one_line_naming_it_without_its_password(tmp_path: Path, args: list[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]  # nothing listens here once the block ends
    url = f"postgresql://bot:secret-password@127.0.0.1:{port}/outagebot"
    result = run(args, tmp_path, OUTAGEBOT_DATABASE_URL=url, **OTHER_DB)
    assert result.returncode == 6, result.stderr
    line = [x for x in result.stderr.splitlines() if "database" in x]
    assert len(line) == 1 and f"postgresql://bot:***@127.0.0.1:{port}/outagebot" in line[0]
    assert "Traceback" not in result.stderr and "secret-password" not in result.stderr


def test_debug_shows_the_traceback_of_a_database_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    result = run(
        ["--debug", "export-contacts", "out.csv"],
        tmp_path,
        OUTAGEBOT_DATABASE_URL=f"postgresql://bot@127.0.0.1:{port}/outagebot",
    )
    assert result.returncode == 1 and "Traceback" in result.stderr and "OperationalError" in result.stderr


@pytest.mark.parametrize("url", ["mysql://bot@db.example/outagebot", "not a url"])
def test_a_database_url_that_cannot_be_used_is_a_configuration_error(tmp_path: Path, url: str) -> None:
    result = run(["export-contacts", "out.csv"], tmp_path, OUTAGEBOT_DATABASE_URL=url)
    assert result.returncode == 4 and "OUTAGEBOT_DATABASE_URL cannot be used" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_shared_database_changes_schema_only_by_db_upgrade(tmp_path: Path) -> None:
    """Several hosts share a production database: starting a command never migrates it."""
    prod = {"OUTAGEBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}", **OTHER_DB}
    demo = str(ROOT / "bot" / "demo_accounts.csv")
    refused = run(["import-accounts", demo], tmp_path, **prod)
    assert refused.returncode == 4 and "has no schema yet: run outagebot db upgrade first" in refused.stderr
    assert run(["serve"], tmp_path, **prod).returncode == 4
    current = run(["db", "current"], tmp_path, **prod)
    assert current.returncode == 4 and "this version needs 0007" in current.stdout
    upgraded = run(["db", "upgrade"], tmp_path, **prod)
    assert upgraded.returncode == 0 and "schema - -> 0007" in upgraded.stdout
    assert run(["db", "current"], tmp_path, **prod).stdout.strip() == "0007 (the newest)"
    history = run(["db", "history"], tmp_path, **prod).stdout.splitlines()
    assert [line.split()[0] for line in history] == [
        "0007",
        "0006",
        "0005",
        "0004",
        "0003",
        "0002",
        "0001",
    ] and "*" in history[0]
    assert run(["import-accounts", demo], tmp_path, **prod).returncode == 0


def test_a_database_behind_or_ahead_of_the_code_is_refused_with_what_to_do(tmp_path: Path) -> None:
    from alembic import command

    from bot.storage.db import alembic_config, make_engine

    prod = {"OUTAGEBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}", **OTHER_DB}
    assert run(["db", "upgrade"], tmp_path, **prod).returncode == 0
    engine = make_engine(prod["OUTAGEBOT_DATABASE_URL"])
    try:
        command.downgrade(alembic_config(engine), "0003")  # as an older version of outagebot left it
        behind = run(["export-contacts", "out.csv"], tmp_path, **prod)
        assert behind.returncode == 4 and "is at schema 0003; this version needs 0007" in behind.stderr
        assert run(["db", "upgrade"], tmp_path, **prod).returncode == 0
        with engine.begin() as conn:  # as a newer version of outagebot left it
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
        ahead = run(["serve"], tmp_path, **prod)
        assert ahead.returncode == 4 and "which this version of outagebot does not know" in ahead.stderr
        assert run(["db", "upgrade"], tmp_path, **prod).returncode == 4
    finally:
        engine.dispose()
    assert not (tmp_path / "out.csv").exists()


def test_support_staff_see_a_customer_unlock_it_and_read_the_audit_log(tmp_path: Path) -> None:
    import json

    wrong = "".join("1\n700000002\n000000\n" for _ in range(5))
    run(["chat", "--lang", "en", "--address", "caller"], tmp_path, "2\n" + wrong)
    shown = run(["customer", "show", "700000002"], tmp_path)
    assert shown.returncode == 0 and "Sunrise Bakery Inc." in shown.stdout and "locked until" in shown.stdout
    assert "********0100" in shown.stdout and "6265550100" not in shown.stdout  # Maria's number, masked
    as_json = json.loads(run(["customer", "show", "700000002", "--json"], tmp_path).stdout)
    assert as_json["locked_until"] and [a["number"] for a in as_json["service_accounts"]] == [
        "3-002-2001",
        "3-002-2002",
    ]
    unlocked = run(["customer", "unlock", "700000002", "--operator", "lan"], tmp_path)
    assert unlocked.returncode == 0 and "unlocked" in unlocked.stdout
    audit = json.loads(run(["audit", "--customer", "700000002", "--json"], tmp_path).stdout)
    assert audit[0]["action"] == "customer.unlock" and audit[0]["by"] == "lan"
    assert [e["action"] for e in audit].count("verify.failure") == 5
    assert json.loads(run(["customer", "show", "700000002", "--json"], tmp_path).stdout)["locked_until"] is None
    for args in (
        ["customer", "show", "799999999"],
        ["customer", "unlock", "799999999"],
        ["audit", "--customer", "799999999"],
    ):
        missing = run(args, tmp_path)
        assert missing.returncode == 1 and "No customer account *****9999." in missing.stderr


def test_opt_outs_and_the_outbox_for_the_back_office(tmp_path: Path) -> None:
    import json

    add = "2\n1\n700000002\n731562\n1\nAnh Tran\n(626) 555-0190\nn\n2\n1\ny\n"
    run(["chat", "--lang", "en", "--address", "owner"], tmp_path, add)
    queued = json.loads(run(["outbox", "--json"], tmp_path).stdout)
    assert [(m["address"], m["status"]) for m in queued] == [("********0190", "pending")]
    assert run(["outbox", "--status", "failed"], tmp_path).stdout.strip() == "(none)"
    assert run(["optouts"], tmp_path).stdout.strip() == "(none)"
    assert "--since takes a date" in run(["audit", "--since", "yesterday"], tmp_path).stderr


def test_opt_outs_say_who_blocks_them_and_when_the_reminder_went(tmp_path: Path) -> None:
    """STOP is Twilio's word: Twilio blocks the number too. NGỪNG is ours alone: we answer its next
    message once with how to opt back in, and the operator sees when."""
    import json
    from datetime import UTC, datetime

    from sqlalchemy import create_engine

    from bot.storage import optouts

    url = f"sqlite:///{tmp_path / 'prod.db'}"
    assert run(["db", "upgrade"], tmp_path, OUTAGEBOT_DATABASE_URL=url, **OTHER_DB).returncode == 0
    engine = create_engine(url)
    with engine.begin() as conn:
        optouts.opt_out(
            conn, "sms", "+17145550111", "STOP", datetime(2026, 11, 2, 17, tzinfo=UTC), provider_blocks=True
        )
        optouts.opt_out(
            conn, "sms", "+17145550122", "NGUNG", datetime(2026, 11, 3, 17, tzinfo=UTC), provider_blocks=False
        )
        optouts.remind(conn, "sms", "+17145550122", datetime(2026, 11, 4, 17, tzinfo=UTC))
    engine.dispose()
    env = {"OUTAGEBOT_DATABASE_URL": url, "OUTAGEBOT_TIMEZONE": "America/Los_Angeles", **OTHER_DB}
    found = json.loads(run(["optouts", "--json"], tmp_path, **env).stdout)
    assert [(o["address"], o["provider_blocks"], o["reminded"]) for o in found] == [
        ("********0122", False, "2026-11-04T09:00:00-08:00"),
        ("********0111", True, None),
    ]
    table = run(["optouts"], tmp_path, **env).stdout.splitlines()
    assert table[0].split() == ["time", "channel", "address", "keyword", "blocked", "by", "reminded"]
    assert "NGUNG" in table[1] and "us only" in table[1] and table[1].endswith("2026-11-04T09:00:00-08:00")
    assert "STOP" in table[2] and "provider and us" in table[2] and table[2].endswith(" -")
    vi = run(["optouts"], tmp_path, OUTAGEBOT_OPERATOR_LANGUAGE="vi", **env).stdout
    assert "bên chặn" in vi and "chỉ hệ thống" in vi and "nhà cung cấp và hệ thống" in vi


def test_many_bad_rows_show_fifty_and_write_every_one_to_a_report(tmp_path: Path) -> None:
    header = (ROOT / "bot" / "demo_accounts.csv").read_text(encoding="utf-8").splitlines()[0]
    rows = [f"70000{i:04d},1,Shop {i},3-009-{i:04d},1 Main St,G{i},,Chủ {i},(626) 555-{i:04d},,fr" for i in range(120)]
    bad = tmp_path / "export.csv"
    bad.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    result = run(["import-accounts", str(bad)], tmp_path, **OTHER_DB)
    assert result.returncode == 1
    shown = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert len(shown) == 50 and shown[0] == "line 2: contact_language must be vi or en: 'fr'"
    assert f"... and 70 more: every bad row is listed in {tmp_path / 'export.csv.errors.txt'}" in result.stderr
    assert "120 bad rows of 120; nothing imported. Fix them" in result.stderr  # plural
    listed = (tmp_path / "export.csv.errors.txt").read_text(encoding="utf-8").splitlines()
    assert len(listed) == 120 and listed[-1] == "line 121: contact_language must be vi or en: 'fr'"
    elsewhere = run(["import-accounts", str(bad), "--report", str(tmp_path / "all.txt")], tmp_path, **OTHER_DB)
    assert elsewhere.returncode == 1 and len((tmp_path / "all.txt").read_text(encoding="utf-8").splitlines()) == 120


def test_serve_says_where_it_listens(tmp_path: Path) -> None:
    from tests.peers.twilio import free_port, wait_for_port

    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OUTAGEBOT_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**environ, **OTHER_DB},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, 60)
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=30)
    assert f"Listening on http://127.0.0.1:{port} with 1 worker; database sqlite:///./outagebot.db" in err


def test_on_the_demo_database_every_command_reads_the_pepper_chat_made(tmp_path: Path) -> None:
    assert run(["chat", "--lang", "en"], tmp_path, "2\n5\n").returncode == 0  # makes outagebot.db.pepper
    imported = run(["import-accounts", str(ROOT / "bot" / "demo_accounts.csv")], tmp_path)
    assert imported.returncode == 0, imported.stderr
    verified = run(["chat", "--lang", "en", "--address", "again"], tmp_path, "1\n700000002\n731562\n")
    assert "Verified: Sunrise Bakery Inc. Please choose:" in verified.stdout  # the same pepper hashed the codes


def test_operator_lists_refuse_an_unknown_status_and_carry_no_padding(tmp_path: Path) -> None:
    run(["chat", "--lang", "en"], tmp_path, "2\n1\n700000002\n000000\n")
    bogus = run(["outbox", "--status", "bogus"], tmp_path)
    assert bogus.returncode == 2 and "--status must be one of" in bogus.stderr
    audit = run(["audit"], tmp_path).stdout.splitlines()
    assert len(audit) >= 2 and all(line == line.rstrip() for line in audit)
