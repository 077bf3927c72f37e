"""Signed SMS webhook turns over HTTP: ``outagebot serve`` now, the baseline, and the bare HTTP floor, in one run.

A second process (wrk, from Debian's ``wrk`` package) posts Twilio-signed incoming-message webhooks
to ``outagebot serve`` on a loopback port: every request has its own MessageSid and signature, comes
from one of ADDRESSES customers, and is a real committed turn (menu navigation and information
answers). In the same run the same client hits the floor (a bare Starlette route on the same uvicorn
setup returning fixed TwiML) and the baseline: the code at ``--baseline`` (default: the landed main
the hardening issue measured, fdf572a), checked out with ``git archive`` into a temporary directory.

Then a second load, the verification mix: one request in twelve is an access-code check (a wrong
code for an unknown account: a full scrypt hash at the production cost), the rest are menu turns.
wrk cannot tell request kinds apart, so this load comes from a small asyncio HTTP client of ours
that records each request's kind and latency; it reports the p99 of the other turns, which the
hash must not inflate.

Run: ``python bench/sms_webhook.py [--seconds 8] [--runs 3] [--postgres URL|none] [--baseline REV|none]``.
Bounded: each load lasts ``--seconds`` and targets only 127.0.0.1. PostgreSQL databases
``outagebot_bench`` and ``outagebot_bench_baseline`` on the given server are dropped and recreated.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "bot" / "demo_accounts.csv"
PUBLIC = "https://bench.example"
TOKEN = "bench-token"
ADDRESSES = 2000
BODIES = ["hi", "2", "3", "4", "5", "1", "0", "MENU", "2", "0"]
BASELINE = "fdf572a"
FLOOR_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Main menu. Please choose:</Message></Response>'
async def inbound(request):
    await request.body()
    return Response(TWIML, media_type="application/xml")
app = Starlette(routes=[Route("/sms/inbound", inbound, methods=["POST"])])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(port)


def form(number: str, body: str) -> tuple[str, str]:
    """A signed incoming-message form: (urlencoded body, X-Twilio-Signature)."""
    params = {
        "MessageSid": f"SM{uuid.uuid4().hex}",
        "AccountSid": "AC" + "0" * 32,
        "From": number,
        "To": "+16265550000",
        "Body": body,
        "NumMedia": "0",
    }
    return urlencode(params), RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/sms/inbound", params)


def lua_script(path: Path, requests: int) -> None:
    """wrk script cycling through pre-signed menu turns (Lua computes no HMAC)."""
    lines = ["local r = {}"]
    for i in range(requests):
        body, signature = form(f"+1714{2000000 + i % ADDRESSES:07d}", BODIES[(i // ADDRESSES) % len(BODIES)])
        lines.append(f'r[{i + 1}] = {{"{body}", "{signature}"}}')
    lines += [
        "local i = 0",
        "request = function()",
        f"  i = i % {requests} + 1",
        '  return wrk.format("POST", "/sms/inbound", {["Content-Type"] = '
        '"application/x-www-form-urlencoded", ["X-Twilio-Signature"] = r[i][2]}, r[i][1])',
        "end",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def wrk(port: int, script: Path, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            raise ValueError(out)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "rps": float(rate.group(1)) if rate else 0.0,
        "p50": ms("50"),
        "p99": ms("99"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


# -- the verification mix: an asyncio client that knows each request's kind -------------------------


def mix_plan(connections: int, per_connection: int) -> list[list[tuple[str, bytes]]]:
    """Per connection, raw HTTP requests tagged "code" or "turn"; one in twelve is a code check.

    Each phone belongs to one connection (its messages stay in order). A verifying phone alternates an
    (unknown) account number and a wrong code, at most five codes each (under the address throttle);
    every other phone navigates the menu.
    """
    plan: list[list[tuple[str, bytes]]] = []
    phone = 0
    for _c in range(connections):
        requests: list[tuple[str, bytes]] = []
        while len(requests) < per_connection:
            phone += 1
            number = f"+1626{3000000 + phone:07d}"
            if phone % 6 == 0:  # a verifier: English, "1" (contacts), then account / code pairs
                steps = [("turn", "hi"), ("turn", "2"), ("turn", "1")]
                for attempt in range(5):
                    steps += [("turn", f"79{phone:05d}{attempt:02d}"), ("code", f"{random.randrange(10**6):06d}")]
            else:
                steps = [("turn", b) for b in BODIES[:5]]
            for kind, body in steps:
                encoded, signature = form(number, body)
                raw = (
                    f"POST /sms/inbound HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {signature}\r\n"
                    f"Content-Length: {len(encoded)}\r\n\r\n{encoded}"
                ).encode()
                requests.append((kind, raw))
        plan.append(requests)
    return plan


async def _connection(
    port: int, requests: list[tuple[str, bytes]], until: float, out: list[tuple[str, float, int]]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    try:
        for kind, raw in requests:
            if loop.time() > until:
                return
            started = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            out.append((kind, time.perf_counter() - started, int(head[9:12])))
    finally:
        writer.close()


def verification_mix(port: int, plan: list[list[tuple[str, bytes]]], seconds: float) -> dict[str, float]:
    out: list[tuple[str, float, int]] = []

    async def main() -> float:
        until = asyncio.get_running_loop().time() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(_connection(port, requests, until, out) for requests in plan))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    codes = sorted(latency for kind, latency, _s in out if kind == "code")
    turns = sorted(latency for kind, latency, _s in out if kind == "turn")

    def q(values: list[float], p: float) -> float:
        return values[min(len(values) - 1, int(p * len(values)))] * 1000 if values else float("nan")

    return {
        "rps": len(out) / elapsed,
        "codes": len(codes),
        "turns": len(turns),
        "errors": sum(status != 200 for *_, status in out),
        "code p50": q(codes, 0.5),
        "code p99": q(codes, 0.99),
        "turn p50": q(turns, 0.5),
        "turn p99": q(turns, 0.99),
    }


# -- the processes under test ----------------------------------------------------------------------


@dataclass
class Target:
    """A version of the code (ours, or the baseline checked out elsewhere) on one database."""

    label: str
    code: Path
    url: str
    workers: int

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("OUTAGEBOT_")}
        return {
            **base,
            "OUTAGEBOT_DATABASE_URL": self.url,
            "OUTAGEBOT_PUBLIC_URL": PUBLIC,
            "OUTAGEBOT_PEPPER": "bench",
            "OUTAGEBOT_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "OUTAGEBOT_TWILIO_AUTH_TOKEN": TOKEN,
            "OUTAGEBOT_TWILIO_FROM": "+16265550000",
            "OUTAGEBOT_TWILIO_API_URL": "http://127.0.0.1:9",
            "PYTHONPATH": str(self.code),
        }

    def prepare(self) -> None:
        """A fresh database with the demo accounts (the baseline's own command for it)."""
        if self.url.startswith("postgresql"):
            admin, name = self.url.rsplit("/", 1)
            for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
                subprocess.run(["psql", f"{admin}/postgres", "-qc", sql], check=True, capture_output=True)
        else:
            Path(self.url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        ours = (self.code / "bot" / "storage" / "aio.py").exists()
        explicit = "db_cli" in (self.code / "bot" / "cli.py").read_text(encoding="utf-8")  # `outagebot db upgrade`
        commands = [["db", "upgrade"]] if explicit else []
        commands.append(["import-accounts", str(DEMO)] if ours else ["seed-demo"])
        for command in commands:
            subprocess.run(
                [sys.executable, "-m", "bot", *command], env=self.env(), cwd=self.code, check=True, capture_output=True
            )

    def serve(self, port: int) -> subprocess.Popen[Any]:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", str(port), "--workers", str(self.workers)],
            env=self.env(),
            cwd=self.code,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(port)
        return process


def floor(tmp: Path, port: int, workers: int, app: str = FLOOR_APP) -> subprocess.Popen[Any]:
    """A bare Starlette route (``app``, the SMS one by default) on the same uvicorn setup."""
    (tmp / "floor_app.py").write_text(app, encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "floor_app:app",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(port)
    return process


def stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _medians(results: list[tuple[str, dict[str, float]]]) -> list[tuple[str, dict[str, float]]]:
    """One row per name, each figure the median of that name's runs (in first-seen order)."""
    import statistics

    grouped: dict[str, list[dict[str, float]]] = {}
    for name, figures in results:
        grouped.setdefault(name, []).append(figures)
    return [
        (name, {key: statistics.median(run[key] for run in runs) for key in runs[0]}) for name, runs in grouped.items()
    ]


def checkout(rev: str, into: Path) -> Path:
    """The files of ``rev`` (``git archive``), to run side by side with the working tree."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=40_000, help="distinct pre-signed requests for wrk")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/outagebot_bench")
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with, or 'none'")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of everything; medians are printed")
    args = parser.parse_args()
    rows: list[tuple[str, dict[str, float]]] = []
    mixes: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        script = tmp / "signed.lua"
        lua_script(script, args.requests)
        plan = mix_plan(args.connections, 400)
        codes: list[tuple[str, Path]] = [("now", ROOT)]
        if args.baseline.lower() != "none":
            codes.append((f"baseline {args.baseline}", checkout(args.baseline, tmp / "baseline")))
        databases = [("SQLite", "sqlite", 1)]
        if args.postgres.lower() != "none":
            databases.append(("PostgreSQL", args.postgres, 2))
        for _run in range(args.runs):  # alternately, so that the machine's noise hits every version alike
            for db_name, url, workers in databases:
                port = free_port()
                process = floor(tmp, port, workers)
                try:
                    rows.append((f"floor, {workers} worker(s)", wrk(port, script, args.seconds, args.connections)))
                finally:
                    stop(process)
                for label, code in codes:
                    suffix = "" if label == "now" else "_baseline"
                    target = Target(
                        f"{label}, {db_name}, {workers} worker(s)",
                        code,
                        f"sqlite:///{tmp}/bench{suffix}.db" if url == "sqlite" else url + suffix,
                        workers,
                    )
                    target.prepare()
                    port = free_port()
                    process = target.serve(port)
                    try:
                        rows.append((target.label, wrk(port, script, args.seconds, args.connections)))
                    finally:
                        stop(process)
                    target.prepare()
                    port = free_port()
                    process = target.serve(port)
                    try:
                        mixes.append((target.label, verification_mix(port, plan, args.seconds)))
                    finally:
                        stop(process)
    rows, mixes = _medians(rows), _medians(mixes)
    print(
        f"wrk, 1 thread, {args.connections} connections, {args.seconds} s each; {args.requests} distinct signed "
        f"requests from {ADDRESSES} numbers; menu turns; medians of {args.runs} alternating runs"
    )
    print(f"{'':44} {'turns/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, r in rows:
        print(f"{name:44} {r['rps']:8.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors']:8.0f}")
    print(
        f"\nverification mix (1 in 12 an access-code check at the default scrypt cost), {args.connections} "
        f"connections, {args.seconds} s, our asyncio client"
    )
    print(
        f"{'':44} {'turns/s':>8} {'checks':>7} {'check p50':>10} {'check p99':>10} {'other p50':>10} "
        f"{'other p99':>10} {'non-2xx':>8}"
    )
    for name, m in mixes:
        print(
            f"{name:44} {m['rps']:8.0f} {m['codes']:7.0f} {m['code p50']:10.1f} {m['code p99']:10.1f} "
            f"{m['turn p50']:10.1f} {m['turn p99']:10.1f} {m['errors']:8.0f}"
        )
    by_name = dict(rows)
    for name, r in rows:
        if name.startswith("now"):
            workers = name.rsplit(", ", 1)[1].split()[0]
            floor_rps = by_name[f"floor, {workers} worker(s)"]["rps"]
            same = name.split(", ", 1)[1]
            base = next((b for n, b in rows if n.startswith("baseline") and n.split(", ", 1)[1] == same), None)
            versus = f", {r['rps'] / base['rps']:.2f}x the baseline's turns/s" if base else ""
            print(
                f"{name}: {r['rps']:.0f} turns/s, p99 {r['p99']:.1f} ms, {r['rps'] / floor_rps:.0%} of the floor"
                f"{versus}"
            )


if __name__ == "__main__":
    main()
