"""A verified session lasts only as long as what it proved: revocation, lockout, code changes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update

from bot.app import App
from bot.storage.accounts import revoke_sessions
from bot.storage.models import AuditEntry, CustomerAccount
from tests.conftest import Chat, verified_chat

AGAIN = "For your security, please verify your account again."


def revoke(app: App, number: str = "700000001") -> int | None:
    return app.db.run(lambda conn: revoke_sessions(conn, number, "operator", "support-7", datetime.now(UTC)))


def test_support_revokes_every_session_of_a_customer_at_its_next_message(app: App) -> None:
    first = verified_chat(app, "en", address="+17145550301")
    second = verified_chat(app, "vi", address="+17145550302")
    bystander = verified_chat(app, "en", address="+17145550303", account="700000002", code="731562")
    first.say("1")  # standing in the middle of adding a contact
    assert revoke(app) == 2
    reply = first.say("Lê Thị Cúc")
    assert AGAIN in reply and first.state == "menu"
    assert "Để bảo mật, xin quý khách xác minh lại tài khoản." in second.say("1")
    assert "Add new contact" in bystander.say("")  # another customer: untouched
    with app.db.engine.connect() as conn:
        entry = conn.execute(
            select(AuditEntry.action, AuditEntry.channel, AuditEntry.address, AuditEntry.details).where(
                AuditEntry.action == "sessions.revoke"
            )
        ).one()
    assert tuple(entry) == ("sessions.revoke", "operator", "support-7", {"sessions": 2})
    assert "Verified" in first.run("1", "700000001", "482913")  # the code still works: verify again


def test_revoking_an_unknown_account_changes_nothing(app: App) -> None:
    assert revoke(app, "799999999") is None


def test_a_lockout_signs_out_the_sessions_verified_on_that_account(app: App) -> None:
    owner = verified_chat(app, "en", address="+17145550304")
    attacker = Chat(app, address="+17145550305")
    attacker.run("", "2")
    for _ in range(5):
        attacker.run("1", "700000001", "000000")
    assert AGAIN in owner.say("1")


def test_a_changed_access_code_signs_out_the_sessions_verified_with_the_old_one(app: App) -> None:
    owner = verified_chat(app, "en", address="+17145550306")
    with app.db.engine.begin() as conn:  # what import-accounts does when the CIS issues a new code
        conn.execute(
            update(CustomerAccount)
            .where(CustomerAccount.number == "700000001")
            .values(
                access_code_hash=app.hasher.hash("555555"), credential_version=CustomerAccount.credential_version + 1
            )
        )
    assert AGAIN in owner.say("2")
    assert "could not verify" in owner.run("1", "700000001", "482913")
    assert "Verified" in owner.run("1", "700000001", "555555")


def test_the_revoke_command_for_support_staff(app: App, tmp_path: Path) -> None:
    verified_chat(app, "en", address="+17145550307")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTAGEBOT_")}
    env["OUTAGEBOT_DATABASE_URL"] = app.settings.database_url
    done = subprocess.run(
        [sys.executable, "-m", "bot", "sessions", "revoke", "700000001", "--operator", "lan"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Customer account *****0001: signed-in sessions: 1. They end at their next message."
    unknown = subprocess.run(
        [sys.executable, "-m", "bot", "sessions", "revoke", "799999999"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert unknown.returncode == 1 and "No customer account *****9999." in unknown.stderr


def test_sessions_from_before_credential_versions_verify_again(app: App) -> None:
    owner = verified_chat(app, "en", address="+17145550308")
    with app.db.engine.begin() as conn:  # a row written before migration 0003
        conn.exec_driver_sql("UPDATE sessions SET customer_version = NULL")
    assert AGAIN in owner.say("1")
