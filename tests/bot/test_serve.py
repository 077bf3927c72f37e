"""End to end: a real ``outagebot serve`` process on a loopback port, texted as Twilio would."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from twilio.request_validator import RequestValidator

from bot.storage.models import OutboundMessage
from tests.peers.twilio import free_port, wait_for_port
from tests.serving import PUBLIC, TOKEN, environment, import_demo


@pytest.fixture
def server(tmp_path: Path, twilio_api: str, database_url: str) -> Iterator[tuple[str, str]]:
    env = environment(database_url, twilio_api)
    import_demo(env)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, 30)
        yield f"http://127.0.0.1:{port}", database_url
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=10)
        assert "SMS webhooks on: https://sms.utility.example/sms/inbound" in err


def conversation(base: str, number: str, texts: list[str]) -> list[str]:
    replies = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for i, body in enumerate(texts):
            params = {"MessageSid": f"SM{number[-4:]}{i:028d}", "From": number, "To": "+16265550000", "Body": body}
            signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/sms/inbound", params)
            response = client.post("/sms/inbound", data=params, headers={"X-Twilio-Signature": signature})
            assert response.status_code == 200
            replies.append(response.text)
        forged = client.post(
            "/sms/inbound",
            data={"MessageSid": "SM1", "From": number, "Body": "1"},
            headers={"X-Twilio-Signature": "forged"},
        )
        assert forged.status_code == 403
    return replies


@pytest.mark.parametrize(
    ("number", "texts", "words"),
    [
        (
            "+17145550131",
            ["chào", "1", "1", "700000001", "482913", "1", "Lê Thị Cúc", "(626) 555-0177", "k", "1", "tat ca", "c"],
            "Đã lưu. Lê Thị Cúc sẽ nhận cảnh báo cho 3 tài khoản dịch vụ.",
        ),
        (
            "+17145550132",
            ["hello", "2", "1", "700000002", "731562", "1", "Anh Tran", "(626) 555-0178", "n", "2", "1-2", "y"],
            "Saved. Anh Tran will get alerts for 2 service accounts.",
        ),
    ],
)
def test_a_whole_conversation_over_http(server: tuple[str, str], number: str, texts: list[str], words: str) -> None:
    base, database_url = server
    replies = conversation(base, number, texts)
    assert words in replies[-1]
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:  # the notice goes out after the reply, in the background
        with engine.connect() as conn:
            status = conn.execute(select(OutboundMessage.status)).scalar()
        if status == "accepted":
            break
        time.sleep(0.2)
    engine.dispose()
    assert status == "accepted"


def test_serve_purges_old_replies_and_idle_sessions_on_its_own(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from tests.serving import Phone, Server, environment, import_demo

    url = f"sqlite:///{tmp_path / 'outagebot.db'}"
    env = environment(url, OUTAGEBOT_OUTBOX_INTERVAL_SECONDS="0.3", OUTAGEBOT_PURGE_INTERVAL_SECONDS="0.5")
    import_demo(env)
    with Server(env) as server:
        old, recent = Phone(server.base, "+17145550501"), Phone(server.base, "+17145550502")
        old.run("", "2")
        recent.run("", "2")
        engine = create_engine(url)
        long_ago = (datetime.now(UTC) - timedelta(days=40)).replace(tzinfo=None)
        with engine.begin() as conn:  # as if 40 days had passed for one of the two
            conn.execute(
                text("UPDATE sessions SET last_seen_at = :t WHERE address = :a"), {"t": long_ago, "a": old.number}
            )
            conn.execute(
                text("UPDATE processed_messages SET created_at = :t WHERE reply LIKE '%Main menu%'"), {"t": long_ago}
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                sessions = [r[0] for r in conn.execute(text("SELECT address FROM sessions"))]
                replies = conn.execute(text("SELECT count(*) FROM processed_messages")).scalar_one()
            if sessions == [recent.number] and replies == 2:  # one purge pass removes replies, then sessions:
                break  # a pass may have read the replies before the ageing above committed, and the sessions after
            time.sleep(0.2)
        engine.dispose()
    assert sessions == [recent.number]
    assert replies == 2  # the first messages ("", no menu yet) of both phones: recent enough to keep
