"""``outagebot alert ...`` and ``outagebot worker``, run as real processes, as an operator would."""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.bot.test_cli import run
from tests.peers import twilio

ZONE = ZoneInfo("America/Los_Angeles")


def when(hours: float) -> str:
    """A time ``hours`` from now as an operator types it, in the utility's zone."""
    return (datetime.now(ZONE) + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M")


@pytest.fixture
def demo(tmp_path: Path, twilio_api: str) -> dict[str, str]:
    """A demo database and the environment of an operator whose Twilio is the stand-in."""
    assert run(["seed-demo"], tmp_path).returncode == 0
    twilio.SENT.clear()
    return {
        "OUTAGEBOT_PUBLIC_URL": "https://bot.example.test",
        "OUTAGEBOT_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "OUTAGEBOT_TWILIO_AUTH_TOKEN": "test-auth-token",
        "OUTAGEBOT_TWILIO_FROM": "+16265550000",
        "OUTAGEBOT_TWILIO_API_URL": twilio_api,
        "OUTAGEBOT_PACING": "false",
    }


def alerts_in(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "outagebot.db") as conn:
        return int(conn.execute("SELECT count(*) FROM alerts").fetchone()[0])


def test_a_dry_run_shows_both_languages_and_the_recipients_and_creates_nothing(
    tmp_path: Path, demo: dict[str, str]
) -> None:
    args = ["alert", "send", "--kind", "advance", "--groups", "a012, A013,C104", "--start", when(2), "--end", when(4)]
    shown = run([*args, "--dry-run"], tmp_path, **demo)
    assert shown.returncode == 0, shown.stderr
    assert "SCE: dự kiến cắt điện luân phiên" in shown.stderr and "SCE: rotating outage planned" in shown.stderr
    assert "3 recipients: 3 by SMS, 0 on Telegram; 2 in Vietnamese, 1 in English." in shown.stderr
    assert "Dry run: nothing was created." in shown.stderr
    as_json = json.loads(run([*args, "--dry-run", "--json"], tmp_path, **demo).stdout)
    assert as_json["recipients"] == 3 and as_json["groups"] == ["A012", "A013", "C104"]
    assert as_json["messages"]["vi"]["segments"] <= 3 and as_json["messages"]["en"]["encoding"] == "GSM-7"
    assert alerts_in(tmp_path) == 0 and twilio.SENT == []


@pytest.mark.parametrize(
    ("groups", "start", "end", "says"),
    [
        ("A012,Z999", 2, 4, "No service account or subscriber is in these groups: Z999. Nothing was created."),
        ("A012", 4, 2, "The start must be before the end."),
        ("A012", -5, -3, "That window is already over"),
    ],
)
def test_bad_groups_or_windows_are_clear_errors_and_create_nothing(
    tmp_path: Path, demo: dict[str, str], groups: str, start: float, end: float, says: str
) -> None:
    args = ["alert", "send", "--kind", "advance", "--groups", groups, "--start", when(start), "--end", when(end)]
    refused = run([*args, "--yes"], tmp_path, **demo)
    assert refused.returncode == 2 and says in refused.stderr
    assert alerts_in(tmp_path) == 0 and twilio.SENT == []


def test_without_a_terminal_sending_needs_yes(tmp_path: Path, demo: dict[str, str]) -> None:
    args = ["alert", "send", "--kind", "test", "--groups", "A012", "--start", when(1), "--end", when(2)]
    refused = run(args, tmp_path, **demo)
    assert refused.returncode == 2 and "add --yes" in refused.stderr and alerts_in(tmp_path) == 0


def test_send_waits_until_every_delivery_is_final_then_status_report_and_list_tell_the_story(
    tmp_path: Path, demo: dict[str, str]
) -> None:
    args = ["alert", "send", "--kind", "advance", "--groups", "A012,A013,C104", "--start", when(2), "--end", when(4)]
    sent = run([*args, "--yes", "--json", "--note", "Cooling Center: 100 Main St"], tmp_path, **demo)
    assert sent.returncode == 0, sent.stderr
    result = json.loads(sent.stdout)
    assert result["recipients"] == 3 and result["deliveries"]["open"] == 0
    assert result["deliveries"]["by_status"] == {"accepted": 3}
    assert sorted(twilio.SENT) == ["+16265550100", "+17145550101", "+17145550102"]
    alert_id = str(result["id"])

    status = json.loads(run(["alert", "status", alert_id, "--json"], tmp_path, **demo).stdout)
    assert status["deliveries"]["by_channel"] == {"sms": {"accepted": 3}} and status["deliveries"]["sms_segments"] >= 3
    assert status["note"] == {"en": "Cooling Center: 100 Main St", "vi": "Cooling Center: 100 Main St"}
    listed = run(["alert", "list"], tmp_path, **demo).stdout
    assert "advance" in listed and "A012, A013, C104" in listed

    report = tmp_path / "report.csv"
    assert run(["alert", "report", alert_id, str(report)], tmp_path, **demo).returncode == 0
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    assert len(rows) == 3 and {r["status"] for r in rows} == {"accepted"}
    assert all(r["destination"].startswith("*") and "555" not in r["destination"] for r in rows)  # masked
    run(["alert", "report", alert_id, str(report), "--full"], tmp_path, **demo)
    assert {r["destination"] for r in csv.DictReader(report.open(encoding="utf-8"))} == set(twilio.SENT)


def test_no_wait_leaves_the_sending_to_a_worker_and_cancel_stops_it(tmp_path: Path, demo: dict[str, str]) -> None:
    args = ["alert", "send", "--kind", "advance", "--groups", "A012,A013,C104", "--start", when(2), "--end", when(4)]
    first = json.loads(run([*args, "--yes", "--no-wait", "--json"], tmp_path, **demo).stdout)
    second = json.loads(run([*args, "--yes", "--no-wait", "--json"], tmp_path, **demo).stdout)
    assert twilio.SENT == []
    cancelled = run(["alert", "cancel", str(second["id"])], tmp_path, **demo)
    assert f"Alert {second['id']} cancelled: 3 deliveries stopped." in cancelled.stdout
    worked = run(["worker", "--until-idle"], tmp_path, **demo)
    assert worked.returncode == 0, worked.stderr
    assert "Worker sending on sms." in worked.stderr and "sent 3." in worked.stderr
    assert len(twilio.SENT) == 3  # the first alert only
    status = json.loads(run(["alert", "status", str(first["id"]), "--json"], tmp_path, **demo).stdout)
    assert status["deliveries"]["by_status"] == {"accepted": 3}


def test_an_unknown_alert_is_a_clear_error(tmp_path: Path, demo: dict[str, str]) -> None:
    for args in (["alert", "status", "42"], ["alert", "cancel", "42"], ["alert", "report", "42", "r.csv"]):
        result = run(args, tmp_path, **demo)
        assert result.returncode == 1 and "No alert 42." in result.stderr
