"""Turn throughput and latency: our durable turn against python-telegram-bot's in-memory one.

Ours: the whole verify + add-contact conversation (12 customer messages, each one committed turn)
through ``Conversation.handle`` and rendered to text, on SQLite and on PostgreSQL.
Baseline, in the same run: python-telegram-bot 22's ``ConversationHandler`` running an equivalent
eight-message flow (start, account, code, add, name, phone, accounts, confirm) in memory, each
update parsed from JSON and answered with ``reply_text`` through an offline request that answers at
once. Nothing of it is durable.

Run: ``python bench/turns.py [--conversations 300] [--postgres URL]``. Prints medians and p99s and
the ratio (PTB's median update time / our median turn time; >= 1.0 means we are at least as fast).
The verification turn costs one scrypt hash by design; it is reported on its own line.

``--baseline REV`` compares with another version of the code in the same run: this script and the
one of ``REV`` (checked out with ``git archive``) run alternately as processes, ``--runs`` times each,
and the medians of their per-run figures are printed side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text

from bot.app import build
from bot.channels.base import Inbound, render_text
from bot.config import Settings
from bot.storage.db import make_engine, migrate
from bot.storage.models import CustomerAccount, ServiceAccount

CUSTOMERS = 200
CODE = "482913"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- ours ------------------------------------------------------------------------------------------


def seed(url: str, settings: Settings) -> None:
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "TRUNCATE audit_log, contact_assignments, contacts, sessions, service_accounts, "
                    "customer_accounts RESTART IDENTITY CASCADE"
                )
            )
    from bot.security import CodeHasher

    digest = CodeHasher(settings.pepper.get_secret_value().encode(), settings.scrypt_n).hash(CODE)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(CustomerAccount),
            [
                {
                    "number": f"9{i:08d}",
                    "name": f"Business {i}",
                    "access_code_hash": digest,
                    "failed_attempts": 0,
                    "updated_at": now,
                }
                for i in range(CUSTOMERS)
            ],
        )
        conn.execute(
            insert(ServiceAccount),
            [
                {
                    "customer_id": i + 1,
                    "number": f"5-{i:05d}-{j}",
                    "service_address": f"{j} Bolsa Ave",
                    "outage_group": f"A{j:03d}",
                    "medical": False,
                }
                for i in range(CUSTOMERS)
                for j in range(3)
            ],
        )
    engine.dispose()


def conversation(n: int) -> list[str]:
    """The 12 messages of verify + add contact; every conversation adds a different phone number."""
    name = f"Contact {chr(65 + n % 26)}{chr(65 + n // 26 % 26)}{chr(65 + n // 676 % 26)}"
    phone = f"+1 213 {200 + n // 10000 % 700:03d} {n % 10000:04d}"
    return ["", "2", "1", f"9{n % CUSTOMERS:08d}", CODE, "1", name, phone, "n", "1", "1,3", "y"]


class Ours:
    """Our service on one database, run in blocks of conversations."""

    def __init__(self, url: str, settings_kw: dict[str, Any]) -> None:
        settings = Settings(database_url=url, **settings_kw)
        seed(url, settings)
        self.app = build(settings, migrate_db=False)
        self.turns: list[float] = []
        self.verify: list[float] = []
        self.elapsed = 0.0
        self.conversations = 0
        self.block(20, record=False)  # warm-up

    def block(self, count: int, record: bool = True) -> None:
        handle, catalogs = self.app.conversation.handle, self.app.catalogs
        started = time.perf_counter()
        for _ in range(count):
            n = self.conversations = self.conversations + 1
            address = f"+1714{n:07d}"
            for i, message in enumerate(conversation(n)):
                t0 = time.perf_counter()
                reply = handle(Inbound("sms", address, message))
                render_text(reply, catalogs)
                if record:
                    (self.verify if i == 4 else self.turns).append(time.perf_counter() - t0)
            assert reply.state == "contacts.menu" and "Saved." in reply.messages[0].id, (n, reply)
        if record:
            self.elapsed += time.perf_counter() - started

    def result(self, conversations: int) -> dict[str, Any]:
        self.app.close()
        everything = self.turns + self.verify
        return {
            "conversations/s": conversations / self.elapsed,
            "turns": len(everything),
            "p50 all": percentile(everything, 0.5),
            "p99 all": percentile(everything, 0.99),
            "p50 non-verify": percentile(self.turns, 0.5),
            "p99 non-verify": percentile(self.turns, 0.99),
            "p50 verify": percentile(self.verify, 0.5),
        }


# -- python-telegram-bot's ConversationHandler, in memory ------------------------------------------

PTB_MESSAGES = ["/start", "700000001", CODE, "1", "Lê Thị Cúc", "(626) 555-0177", "1,3", "y"]


class PTB:
    """python-telegram-bot's ConversationHandler in memory, run in blocks of conversations."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.times: list[float] = []
        self.elapsed = 0.0
        self.conversations = 0
        self.update_id = 0
        self.application = self.loop.run_until_complete(_ptb_application())
        self.block(50, record=False)  # warm-up

    async def _one(self, chat_id: int, text_: str) -> float:
        from telegram import Update

        self.update_id += 1
        payload = {
            "update_id": self.update_id,
            "message": {
                "message_id": self.update_id,
                "date": 0,
                "text": text_,
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "c"},
                **(
                    {"entities": [{"type": "bot_command", "offset": 0, "length": len(text_)}]}
                    if text_.startswith("/")
                    else {}
                ),
            },
        }
        t0 = time.perf_counter()
        await self.application.process_update(Update.de_json(payload, self.application.bot))
        return time.perf_counter() - t0

    async def _block(self, count: int, record: bool) -> None:
        for _ in range(count):
            self.conversations += 1
            for message in PTB_MESSAGES:
                elapsed = await self._one(self.conversations, message)
                if record:
                    self.times.append(elapsed)

    def block(self, count: int, record: bool = True) -> None:
        started = time.perf_counter()
        self.loop.run_until_complete(self._block(count, record))
        if record:
            self.elapsed += time.perf_counter() - started

    def result(self, conversations: int) -> dict[str, Any]:
        self.loop.run_until_complete(self.application.shutdown())
        self.loop.close()
        return {
            "conversations/s": conversations / self.elapsed,
            "turns": len(self.times),
            "p50 all": percentile(self.times, 0.5),
            "p99 all": percentile(self.times, 0.99),
        }


async def _ptb_application() -> Any:
    from telegram import Update
    from telegram.ext import Application, CommandHandler, ConversationHandler, MessageHandler, filters
    from telegram.request import BaseRequest

    sent = json.dumps(
        {"ok": True, "result": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "ok"}}
    ).encode()
    me = json.dumps({"ok": True, "result": {"id": 1, "is_bot": True, "first_name": "b", "username": "b_bot"}}).encode()

    class Offline(BaseRequest):
        """A request that answers at once, as if Telegram were infinitely fast."""

        @property
        def read_timeout(self) -> float | None:
            return None

        async def initialize(self) -> None:
            return None

        async def shutdown(self) -> None:
            return None

        async def do_request(self, url: str, method: str, request_data: Any = None, **_: Any) -> tuple[int, bytes]:
            return 200, me if url.endswith("getMe") else sent

    account, code, menu, name, phone, accounts, confirm = range(7)

    def step(reply: str, next_state: int) -> Any:
        async def callback(update: Update, context: Any) -> int:
            context.user_data.setdefault("slots", []).append(update.message.text)
            await update.message.reply_text(reply)
            return next_state

        return callback

    async def done(update: Update, context: Any) -> int:
        context.user_data.clear()
        await update.message.reply_text("Saved.")
        return ConversationHandler.END

    text_only = filters.TEXT & ~filters.COMMAND
    handler = ConversationHandler(
        entry_points=[CommandHandler("start", step("Customer Account Number?", account))],
        states={
            account: [MessageHandler(text_only, step("Access code?", code))],
            code: [MessageHandler(text_only, step("Verified. 1 Add ...", menu))],
            menu: [MessageHandler(text_only, step("Name?", name))],
            name: [MessageHandler(text_only, step("Mobile number?", phone))],
            phone: [MessageHandler(text_only, step("Which service accounts?", accounts))],
            accounts: [MessageHandler(text_only, step("Save? Y/N", confirm))],
            confirm: [MessageHandler(text_only, done)],
        },
        fallbacks=[],
    )
    application = Application.builder().token("1:x").request(Offline()).get_updates_request(Offline()).build()
    application.add_handler(handler)
    await application.initialize()
    return application


def _figures(output: str) -> dict[str, tuple[float, float]]:
    """(p50 turn, p50 no-verify) per database from one run's printout."""
    found = {}
    for line in output.splitlines():
        if line.startswith("outagebot on "):
            name, numbers = line[:38].strip(), line[38:].split()
            found[name] = (float(numbers[2]), float(numbers[4]))
    return found


def compare(args: argparse.Namespace) -> None:
    """This version against ``args.baseline``, alternately, each on databases of its own."""
    import statistics
    import subprocess

    from bench.sms_webhook import checkout

    runs: dict[str, list[dict[str, tuple[float, float]]]] = {"now": [], f"baseline {args.baseline}": []}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {
            "now": Path(__file__).resolve().parent.parent,
            f"baseline {args.baseline}": checkout(args.baseline, Path(tmp) / "baseline"),
        }
        for _ in range(args.runs):
            for label, tree in trees.items():
                postgres = "none"
                if args.postgres.lower() != "none":
                    postgres = args.postgres + ("_baseline" if label != "now" else "")
                    admin, name = postgres.rsplit("/", 1)
                    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
                        subprocess.run(["psql", f"{admin}/postgres", "-qc", sql], check=True, capture_output=True)
                out = subprocess.run(
                    [
                        sys.executable,
                        str(tree / "bench" / "turns.py"),
                        "--conversations",
                        str(args.conversations),
                        "--rounds",
                        str(args.rounds),
                        "--postgres",
                        postgres,
                        "--scrypt-n",
                        str(args.scrypt_n),
                    ],
                    env={**os.environ, "PYTHONPATH": str(tree)},
                    cwd=tree,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                runs[label].append(_figures(out))
    print(f"{args.runs} runs each, alternately; medians of the runs' p50s, microseconds per turn")
    print(f"{'':28} {'database':12} {'p50 turn':>9} {'p50 no-verify':>14}")
    for label, results in runs.items():
        for database in results[0]:
            p50 = statistics.median(r[database][0] for r in results)
            plain = statistics.median(r[database][1] for r in results)
            print(f"{label:28} {database.split()[2]:12} {p50:9.0f} {plain:14.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=300, help="per database (PTB runs 3 times as many)")
    parser.add_argument("--rounds", type=int, default=6, help="blocks interleaved, so noise hits all alike")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("OUTAGEBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL URL, or 'none'",
    )
    parser.add_argument("--scrypt-n", type=int, default=8192)
    parser.add_argument("--baseline", help="git revision to compare with (e.g. fdf572a)")
    parser.add_argument("--runs", type=int, default=3, help="with --baseline: runs of each version")
    args = parser.parse_args()
    if args.baseline:
        compare(args)
        return
    settings_kw = {"pepper": "bench", "scrypt_n": args.scrypt_n}
    per_round = max(1, args.conversations // args.rounds)
    total = per_round * args.rounds

    with tempfile.TemporaryDirectory() as tmp:
        runners: dict[str, Any] = {
            "PTB 22 ConversationHandler (memory)": PTB(),
            "outagebot on SQLite (durable)": Ours(f"sqlite:///{tmp}/bench.db", settings_kw),
        }
        if args.postgres.lower() != "none":
            runners["outagebot on PostgreSQL (durable)"] = Ours(args.postgres, settings_kw)
        for _ in range(args.rounds):
            for name, runner in runners.items():
                runner.block(per_round * 3 if name.startswith("PTB") else per_round)
        results = {
            name: runner.result(total * 3 if name.startswith("PTB") else total) for name, runner in runners.items()
        }

    print(
        f"{total} conversations per database in {args.rounds} interleaved rounds (PTB: {total * 3}); "
        f"scrypt N=2^{args.scrypt_n.bit_length() - 1}; times in microseconds"
    )
    print(
        f"{'':38} {'conv/s':>7} {'turns':>6} {'p50 turn':>9} {'p99 turn':>9} {'p50 no-verify':>14} "
        f"{'p99 no-verify':>14} {'verify p50':>11}"
    )
    for name, r in results.items():
        print(
            f"{name:38} {r['conversations/s']:7.1f} {r['turns']:6d} {r['p50 all'] * 1e6:9.0f} "
            f"{r['p99 all'] * 1e6:9.0f} {r.get('p50 non-verify', r['p50 all']) * 1e6:14.0f} "
            f"{r.get('p99 non-verify', r['p99 all']) * 1e6:14.0f} {r.get('p50 verify', 0) * 1e6:11.0f}"
        )
    ptb = results["PTB 22 ConversationHandler (memory)"]["p50 all"]
    for name, r in results.items():
        if name.startswith("outagebot"):
            print(f"ratio (PTB p50 update / our p50 turn), {name}: {ptb / r['p50 all']:.2f}")


if __name__ == "__main__":
    main()
