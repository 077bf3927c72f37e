"""Signed SMS webhook turns over HTTP: ``outagebot serve`` against the bare HTTP floor, side by side.

A second process (wrk, from Debian's ``wrk`` package) posts Twilio-signed incoming-message webhooks
to ``outagebot serve`` on a loopback port: every request has its own MessageSid and signature, comes
from one of ADDRESSES customers, and is a real committed turn (menu navigation and information
answers, no access-code check: that one is a deliberately slow hash, measured in ``bench/turns.py``).
In the same run the same client hits the floor: a bare Starlette route on the same uvicorn setup that
returns a fixed TwiML reply. Prints requests/s and latency p50/p99 for each, and the ratio.

Run: ``python bench/sms_webhook.py [--seconds 10] [--connections 16] [--postgres URL|none]``.
Bounded: each load lasts ``--seconds`` and targets only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "bot" / "demo_accounts.csv"
PUBLIC = "https://bench.example"
TOKEN = "bench-token"
ADDRESSES = 2000
BODIES = ["hi", "2", "3", "4", "5", "1", "0", "MENU", "2", "0"]
FLOOR_APP = '''
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Main menu. Please choose:</Message></Response>'
async def inbound(request):
    await request.body()
    return Response(TWIML, media_type="application/xml")
app = Starlette(routes=[Route("/sms/inbound", inbound, methods=["POST"])])
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(port)


def lua_script(path: Path, requests: int) -> None:
    """wrk script cycling through pre-signed requests (Lua computes no HMAC)."""
    validator = RequestValidator(TOKEN)
    lines = ["local r = {}"]
    for i in range(requests):
        params = {"MessageSid": f"SM{i:032x}", "AccountSid": "AC" + "0" * 32,
                  "From": f"+1714{2000000 + i % ADDRESSES:07d}", "To": "+16265550000",
                  "Body": BODIES[(i // ADDRESSES) % len(BODIES)], "NumMedia": "0"}
        body = "&".join(f"{k}={v.replace('+', '%2B').replace(' ', '+')}" for k, v in params.items())
        signature = validator.compute_signature(f"{PUBLIC}/sms/inbound", params)
        lines.append(f'r[{i + 1}] = {{"{body}", "{signature}"}}')
    lines += ["local i = 0",
              "request = function()",
              f"  i = i % {requests} + 1",
              '  return wrk.format("POST", "/sms/inbound", {["Content-Type"] = '
              '"application/x-www-form-urlencoded", ["X-Twilio-Signature"] = r[i][2]}, r[i][1])',
              "end"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def wrk(port: int, script: Path, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True,
                         timeout=seconds + 30).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            raise ValueError(out)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {"rps": float(rate.group(1)) if rate else 0.0, "p50": ms("50"), "p99": ms("99"),
            "errors": float(non2xx.group(1)) if non2xx else 0.0}


def serve(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[Any]:
    process = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port), "--workers",
                                str(workers)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(port)
    return process


def floor(tmp: Path, port: int, workers: int) -> subprocess.Popen[Any]:
    (tmp / "floor_app.py").write_text(FLOOR_APP, encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port),
                                "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
                               cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(port)
    return process


def stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def prepare(env: dict[str, str], url: str) -> None:
    if url.startswith("postgresql"):
        from sqlalchemy import text

        from bot.storage.db import make_engine, migrate
        engine = make_engine(url)
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_log, contact_assignments, contacts, sessions, service_accounts, "
                              "customer_accounts, processed_messages, opt_outs, outbound_messages "
                              "RESTART IDENTITY CASCADE"))
        engine.dispose()
    subprocess.run([sys.executable, "-m", "bot", "import-accounts", str(DEMO)], env=env, check=True,
                   capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=60_000, help="distinct pre-signed requests")
    parser.add_argument("--postgres", default=os.environ.get("OUTAGEBOT_TEST_POSTGRES_URL",
                                                            "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        script = tmp / "signed.lua"
        lua_script(script, args.requests)
        targets = [("SQLite", f"sqlite:///{tmp}/bench.db", 1)]
        if args.postgres.lower() != "none":
            targets.append(("PostgreSQL", args.postgres, 2))
        for name, url, workers in targets:
            env = {**os.environ, "OUTAGEBOT_DATABASE_URL": url, "OUTAGEBOT_PUBLIC_URL": PUBLIC,
                   "OUTAGEBOT_PEPPER": "bench",
                   "OUTAGEBOT_TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "OUTAGEBOT_TWILIO_AUTH_TOKEN": TOKEN,
                   "OUTAGEBOT_TWILIO_FROM": "+16265550000", "OUTAGEBOT_TWILIO_API_URL": "http://127.0.0.1:9",
                   "PYTHONPATH": str(ROOT)}
            prepare(env, url)
            port = free_port()
            process = floor(tmp, port, workers)
            try:
                results[f"floor, {workers} worker(s)"] = wrk(port, script, args.seconds, args.connections)
            finally:
                stop(process)
            port = free_port()
            process = serve(env, port, workers)
            try:
                results[f"outagebot on {name}, {workers} worker(s)"] = wrk(port, script, args.seconds,
                                                                            args.connections)
            finally:
                stop(process)
    print(f"wrk, 1 thread, {args.connections} connections, {args.seconds} s each; {args.requests} distinct signed "
          f"requests from {ADDRESSES} numbers")
    print(f"{'':38} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, r in results.items():
        print(f"{name:38} {r['rps']:8.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors']:8.0f}")
    names = list(results)
    for i in range(0, len(names), 2):
        floor_rps, ours = results[names[i]]["rps"], results[names[i + 1]]
        print(f"{names[i + 1]}: {ours['rps'] / floor_rps:.0%} of the floor's requests/s "
              f"(target >= 50%), {ours['rps']:.0f} turns/s (target >= 1000), p99 {ours['p99']:.1f} ms "
              "(target < 50)")


if __name__ == "__main__":
    main()
