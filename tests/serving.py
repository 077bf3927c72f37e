"""A real ``outagebot serve`` process on a loopback port, and phones that text it as Twilio would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from tests.peers.twilio import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "bot" / "demo_accounts.csv"
PUBLIC = "https://sms.utility.example"
TOKEN = "e2e-auth-token"


def environment(database_url: str, twilio_api: str = "http://127.0.0.1:9", **extra: str) -> dict[str, str]:
    """What a deployment sets: the database, a pepper, Twilio; cheap hashes unless told otherwise."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OUTAGEBOT_")}
    return {
        **base,
        "OUTAGEBOT_DATABASE_URL": database_url,
        "OUTAGEBOT_SCRYPT_N": "1024",
        "OUTAGEBOT_PEPPER": "e2e",
        "OUTAGEBOT_PUBLIC_URL": PUBLIC,
        "OUTAGEBOT_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "OUTAGEBOT_TWILIO_AUTH_TOKEN": TOKEN,
        "OUTAGEBOT_TWILIO_FROM": "+16265550000",
        "OUTAGEBOT_TWILIO_API_URL": twilio_api,
        **extra,
    }


def import_demo(env: dict[str, str]) -> None:
    """``outagebot db upgrade`` and ``outagebot import-accounts`` of the demo file, as an operator would."""
    subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120
    )
    subprocess.run(
        [sys.executable, "-m", "bot", "import-accounts", str(DEMO)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


class Server:
    """``outagebot serve`` with ``workers`` processes; stopped (and its stderr kept) on exit."""

    def __init__(self, env: dict[str, str], workers: int = 1, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", str(self.port), "--workers", str(workers), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr = ""
        self.client = httpx.Client(base_url=self.base, timeout=30)
        try:
            wait_for_port(self.port, 60)
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def wait_healthy(self, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.client.get("/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("serve did not become healthy")

    def healthz(self) -> tuple[int, float]:
        """The health check's status and how long it took (seconds)."""
        started = time.perf_counter()
        status = self.client.get("/healthz").status_code
        return status, time.perf_counter() - started

    def status_callback(self, sid: str, state: str, error_code: str = "") -> int:
        """Twilio's signed delivery-status callback for message ``sid``; the HTTP status answered."""
        params = {"MessageSid": sid, "MessageStatus": state, **({"ErrorCode": error_code} if error_code else {})}
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/sms/status", params)
        return self.client.post("/sms/status", data=params, headers={"X-Twilio-Signature": signature}).status_code

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            _out, self.stderr = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _out, self.stderr = self.process.communicate(timeout=10)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Phone:
    """One customer's phone texting ``server`` (each message its own MessageSid, signed)."""

    def __init__(self, base: str, number: str) -> None:
        self.base, self.number = base, number
        self.client = httpx.Client(base_url=base, timeout=30)

    def post(self, body: str, sid: str | None = None) -> httpx.Response:
        params = {
            "MessageSid": sid or f"SM{uuid.uuid4().hex}",
            "AccountSid": "AC" + "0" * 32,
            "From": self.number,
            "To": "+16265550000",
            "Body": body,
        }
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/sms/inbound", params)
        return self.client.post("/sms/inbound", data=params, headers={"X-Twilio-Signature": signature})

    def say(self, body: str) -> str:
        response = self.post(body)
        assert response.status_code == 200, response.text
        return response.text

    def run(self, *bodies: str) -> str:
        reply = ""
        for body in bodies:
            reply = self.say(body)
        return reply

    def close(self) -> None:
        self.client.close()
