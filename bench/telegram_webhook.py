"""Telegram webhook turns over HTTP, beside the SMS route and the bare-route floor, in one run.

wrk (Debian's ``wrk``) posts Telegram updates to ``outagebot serve`` on a loopback port: each has its
own ``update_id``, the secret-token header, comes from one of ADDRESSES chats, and is a real committed
turn (menu navigation and information answers, typed as text) whose reply goes out through
python-telegram-bot to a local Bot API that answers at once (a few lines of asyncio here, so that the
reply's HTTP call costs what our side of it costs). In the same run, with the same wrk settings:

- the floor: a bare Starlette route on the same uvicorn setup, answering 200 to every update;
- the SMS route: the same menu turns as Twilio-signed webhooks to ``POST /sms/inbound``
  (``bench/sms_webhook.py``'s requests), the rate the issue asks Telegram to reach.

Run: ``python bench/telegram_webhook.py [--seconds 8] [--runs 3] [--postgres URL|none]``. Bounded: each
load lasts ``--seconds`` and targets only 127.0.0.1. PostgreSQL database ``outagebot_bench`` on the
given server is dropped and recreated.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sms_webhook as sms

ROOT = sms.ROOT
SECRET = "bench-secret-token-0001"
TOKEN = "123:bench"
ADDRESSES = 2000
FLOOR_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
async def webhook(request):
    await request.body()
    return Response(status_code=200)
app = Starlette(routes=[Route("/telegram/webhook", webhook, methods=["POST"])])
"""
# The Bot API, answered at once: sendMessage gets a Message, everything else True (keep-alive HTTP/1.1).
BOT_API = r"""
import asyncio, json, sys
MESSAGE = json.dumps({"ok": True, "result": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"},
                      "text": "ok"}}).encode()
TRUE = b'{"ok":true,"result":true}'
ME = b'{"ok":true,"result":{"id":123,"is_bot":true,"first_name":"Bench","username":"bench_bot"}}'
async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            path = head.split(b" ", 2)[1]
            body = MESSAGE if path.endswith(b"/sendMessage") else ME if path.endswith(b"/getMe") else TRUE
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def update(update_id: int, chat: int, text: str) -> str:
    person = {"id": chat, "is_bot": False, "first_name": "An", "language_code": "en"}
    message = {
        "message_id": update_id,
        "date": 1_700_000_000,
        "chat": {"id": chat, "type": "private"},
        "from": person,
        "text": text,
    }
    return json.dumps({"update_id": update_id, "message": message}, separators=(",", ":"))


def lua_script(path: Path, requests: int) -> None:
    """wrk script cycling through distinct updates: the same menu turns as the SMS bench."""
    lines = ["local r = {}"]
    for i in range(requests):
        body = update(i + 1, 9_000_000 + i % ADDRESSES, sms.BODIES[(i // ADDRESSES) % len(sms.BODIES)])
        lines.append(f"r[{i + 1}] = [[{body}]]")
    lines += [
        "local i = 0",
        "request = function()",
        f"  i = i % {requests} + 1",
        '  return wrk.format("POST", "/telegram/webhook", {["Content-Type"] = "application/json", '
        f'["X-Telegram-Bot-Api-Secret-Token"] = "{SECRET}"}}, r[i])',
        "end",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[Any]:
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=40_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/outagebot_bench")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of everything; medians are printed")
    args = parser.parse_args()
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        telegram_script, sms_script = tmp / "telegram.lua", tmp / "sms.lua"
        lua_script(telegram_script, args.requests)
        sms.lua_script(sms_script, args.requests)
        (tmp / "bot_api.py").write_text(BOT_API, encoding="utf-8")
        api_port = sms.free_port()
        api = start([sys.executable, "bot_api.py", str(api_port)], tmp)
        sms.wait_for(api_port)
        databases = [("SQLite", "sqlite", 1)]
        if args.postgres.lower() != "none":
            databases.append(("PostgreSQL", args.postgres, 2))
        try:
            for _run in range(args.runs):
                for db_name, url, workers in databases:
                    port = sms.free_port()
                    floor = sms.floor(tmp, port, workers, FLOOR_APP)
                    try:
                        figures = sms.wrk(port, telegram_script, args.seconds, args.connections)
                        rows.append((f"floor, {workers} worker(s)", figures))
                    finally:
                        sms.stop(floor)
                    target = sms.Target(
                        f"{db_name}, {workers} worker(s)",
                        ROOT,
                        f"sqlite:///{tmp}/bench.db" if url == "sqlite" else url,
                        workers,
                    )
                    for route, script in (
                        ("SMS /sms/inbound", sms_script),
                        ("Telegram /telegram/webhook", telegram_script),
                    ):
                        target.prepare()
                        port = sms.free_port()
                        env = {
                            **target.env(),
                            "OUTAGEBOT_TELEGRAM_TOKEN": TOKEN,
                            "OUTAGEBOT_TELEGRAM_SECRET": SECRET,
                            "OUTAGEBOT_TELEGRAM_API_URL": f"http://127.0.0.1:{api_port}",
                        }
                        server = start(
                            [sys.executable, "-m", "bot", "serve", "--port", str(port), "--workers", str(workers)],
                            ROOT,
                            env,
                        )
                        sms.wait_for(port)
                        time.sleep(1.0)  # setWebhook and the commands are set before the workers start
                        try:
                            rows.append(
                                (f"{route}, {target.label}", sms.wrk(port, script, args.seconds, args.connections))
                            )
                        finally:
                            sms.stop(server)
        finally:
            sms.stop(api)
    rows = sms._medians(rows)
    print(
        f"wrk, 1 thread, {args.connections} connections, {args.seconds} s each; {args.requests} distinct updates "
        f"(and signed SMS) from {ADDRESSES} chats; menu turns; medians of {args.runs} alternating runs"
    )
    print(f"{'':52} {'turns/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, r in rows:
        print(f"{name:52} {r['rps']:8.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors']:8.0f}")
    by_name = dict(rows)
    for db_name, _url, workers in databases:
        label = f"{db_name}, {workers} worker(s)"
        telegram = by_name[f"Telegram /telegram/webhook, {label}"]
        sms_rate = by_name[f"SMS /sms/inbound, {label}"]["rps"]
        floor_rate = by_name[f"floor, {workers} worker(s)"]["rps"]
        print(
            f"Telegram, {label}: {telegram['rps']:.0f} updates/s, p99 {telegram['p99']:.1f} ms, "
            f"{telegram['rps'] / sms_rate:.2f}x the SMS route, {telegram['rps'] / floor_rate:.0%} of the floor"
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
