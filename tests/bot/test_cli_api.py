"""``outagebot api-token``, run as a real process, as an operator would."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.storage import api_tokens
from tests.bot.test_cli import run

PEPPER = {"OUTAGEBOT_PEPPER": "cli-api-pepper"}


def audit(tmp_path: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(tmp_path / "outagebot.db") as db:
        return db.execute("SELECT channel, address, action, details FROM audit_log ORDER BY id").fetchall()


def test_a_token_is_printed_once_and_stored_only_as_its_keyed_hash(tmp_path: Path) -> None:
    made = run(["api-token", "create", "oms", "--operator", "lan"], tmp_path, **PEPPER)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert len(token) == 43 and made.stdout == token + "\n"  # alone on standard output: a script can take it
    assert "API token oms made" in made.stderr and "it will not be shown again" in made.stderr
    with sqlite3.connect(tmp_path / "outagebot.db") as db:
        (stored,) = db.execute("SELECT token_hash FROM api_tokens WHERE name = 'oms'").fetchone()
    assert stored == api_tokens.digest(PEPPER["OUTAGEBOT_PEPPER"].encode(), token)
    listed = run(["api-token", "list"], tmp_path, **PEPPER)
    assert listed.returncode == 0 and "oms" in listed.stdout and token not in listed.stdout + listed.stderr
    assert audit(tmp_path) == [("cli", "lan", "api_token.create", '{"token": "oms"}')]


def test_a_name_is_used_once_and_must_be_a_name(tmp_path: Path) -> None:
    assert run(["api-token", "create", "oms"], tmp_path, **PEPPER).returncode == 0
    again = run(["api-token", "create", "oms"], tmp_path, **PEPPER)
    assert again.returncode == 1 and again.stdout == ""
    assert "There is already an API token called oms" in again.stderr
    spaced = run(["api-token", "create", "two words"], tmp_path, **PEPPER)
    assert spaced.returncode == 2 and "1 to 100 characters, without spaces" in spaced.stderr


def test_revoking_is_audited_and_said_once(tmp_path: Path) -> None:
    run(["api-token", "create", "oms"], tmp_path, **PEPPER)
    first = run(["api-token", "revoke", "oms", "--operator", "lan"], tmp_path, **PEPPER)
    assert first.returncode == 0 and "API token oms revoked" in first.stdout
    again = run(["api-token", "revoke", "oms"], tmp_path, **PEPPER)
    assert again.returncode == 0 and "API token oms was revoked already." in again.stdout
    unknown = run(["api-token", "revoke", "nobody"], tmp_path, **PEPPER)
    assert unknown.returncode == 1 and "No API token called nobody." in unknown.stderr
    assert [row[2] for row in audit(tmp_path)] == ["api_token.create", "api_token.revoke"]
    listed = run(["api-token", "list"], tmp_path, **PEPPER).stdout.splitlines()
    assert listed[0].split() == ["name", "made", "revoked"] and len(listed[1].split()) == 5  # name, made, revoked


def test_the_operator_reads_it_in_vietnamese(tmp_path: Path) -> None:
    made = run(["api-token", "create", "oms"], tmp_path, OUTAGEBOT_OPERATOR_LANGUAGE="vi", **PEPPER)
    assert "Đã tạo mã truy cập API oms" in made.stderr and "sẽ không được hiển thị lại" in made.stderr


def test_without_a_pepper_no_token_is_made(tmp_path: Path) -> None:
    made = run(["api-token", "create", "oms"], tmp_path)
    assert made.returncode == 4 and made.stdout == "" and "OUTAGEBOT_PEPPER" in made.stderr
