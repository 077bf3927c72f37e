"""Alert fan-out: planning a million deliveries beside a hand-written INSERT ... SELECT, and dispatching them.

Data (generated in the database by one INSERT ... SELECT a table: ``generate_series`` on PostgreSQL,
a recursive CTE on SQLite). For C customer accounts (C is chosen so that the alert has about
``--scales`` destinations), customer ``c`` has two service accounts, in groups ``c % 50`` and
another one (``1 + (c // 50) % 49`` further on), and two contacts: contact 0 on both accounts, contact
1 on the second only. One customer in 25 shares its contact 1 with the next customer's contact 0 (a
person on two businesses: one destination, two rows to merge); 5% of contacts have a Telegram chat
linked; 0.5% are opted out (``contacts.opted_out_at``); 2% of numbers have an SMS opt-out
(``opt_outs``: half of those are Telegram-linked and keep Telegram). Subscribers: C/10 by SMS (half of
them numbers that are also contacts) and C/50 by Telegram (half of them chats a contact linked, so
the number is their destination). Languages mixed. The alert (``advance``) covers 40 of the 50 groups,
so the planner has to leave a fifth of the data out.

Planner: ``bot.storage.alerts.create`` (the real code, in its own transaction, commit included)
against the floor: the alert row, its groups and one hand-written ``INSERT INTO outbound_messages
(...) SELECT ...`` of the same rows, on the DBAPI connection, then commit. Each run is a fresh child
process (its peak RSS is the planner's memory) on an emptied deliveries table; ours and the floor
alternate, starting with each in turn. Before the timed runs, both plan once and their rows are
compared (EXCEPT, both ways): the same destinations, channels, addresses, fallbacks and languages.

Dispatch (PostgreSQL, when this checkout has ``outagebot worker``): a loopback provider (``--provider
-processes`` processes on one SO_REUSEPORT port answering Twilio's ``Messages.json`` with a Message
and the Bot API's ``sendMessage`` with a Message, at once) stands in for both providers, so the real
twilio client and python-telegram-bot's Bot run; pacing is off. 1, 2 and 4 ``outagebot worker
--until-idle`` processes send one alert's deliveries; the time is from start to all exited, then every
delivery must be final and the provider must have had exactly one request for each. Each worker's
peak RSS is also taken with the 100,000 and 1,000,000-destination alerts due (``--rss-seconds`` of
sending, then SIGTERM): it holds a batch, never the alert.

Run: ``python bench/fanout.py [--quick] [--runs 3] [--postgres URL|none] [--dispatch-deliveries 30000]``.
PostgreSQL databases named ``bench_fanout*`` are created on the given server and dropped at the end,
also when interrupted; SQLite files live in a temporary directory. Ports 22000-22999.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GROUPS = 50
ALERT_GROUPS = tuple(f"G{g:02d}" for g in range(40))
DESTINATIONS_PER_CUSTOMER = 1.761  # measured: destinations of the alert / customer accounts generated
PORTS = range(22000, 23000)
FIELDS = "destination, channel, address, fallback_address, locale"

# -- synthetic data ---------------------------------------------------------------------------------


def seq(dialect: str, n: int) -> str:
    """A FROM source of one column ``i`` = 0 .. n-1."""
    if dialect == "postgresql":
        return f"generate_series(0, {n - 1}) AS s(i)"
    return f"(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {n - 1}) SELECT i FROM s)"


def pad(dialect: str, expr: str, width: int) -> str:
    if dialect == "postgresql":
        return f"lpad(({expr})::text, {width}, '0')"
    return f"printf('%0{width}d', {expr})"


def generate(dialect: str, customers: int, execute: Any) -> None:
    """Fill an empty, migrated database with the shape the module's docstring describes."""
    n = customers
    now = "'2026-12-01 00:00:00'" + ("::timestamp" if dialect == "postgresql" else "")
    true = "true" if dialect == "postgresql" else "1"
    false = "false" if dialect == "postgresql" else "0"
    other = f"((i + 1 + (i / {GROUPS}) % {GROUPS - 1}) % {GROUPS})"  # the second account's group, never the first's
    statements = [
        f"INSERT INTO customer_accounts (id, number, name, access_code_hash, failed_attempts, credential_version,"
        f" updated_at) SELECT i + 1, '8' || {pad(dialect, 'i', 9)}, 'Doanh nghiệp ' || i, 'x', 0, 0, {now}"
        f" FROM {seq(dialect, n)}",
        f"INSERT INTO service_accounts (id, customer_id, number, service_address, outage_group, medical)"
        f" SELECT 2 * i + 1 + a.k, i + 1, '7' || {pad(dialect, 'i', 9)} || a.k, (100 + i) || ' Bolsa Ave',"
        f" 'G' || {pad(dialect, f'CASE a.k WHEN 0 THEN i % {GROUPS} ELSE {other} END', 2)}, {false}"
        f" FROM {seq(dialect, n)} CROSS JOIN (SELECT 0 AS k UNION ALL SELECT 1) AS a",
        # contact k of customer c: +1714c (k=0) or +1626c (k=1); 1 in 25 customers' contact 1 is the next
        # customer's contact 0 (two businesses, one person).
        f"INSERT INTO contacts (id, customer_id, name, phone, language, telegram_chat_id, opted_out_at, created_at,"
        f" updated_at) SELECT 2 * i + 1 + a.k, i + 1, 'Người ' || a.k,"
        f" CASE WHEN a.k = 0 THEN '+1714' || {pad(dialect, 'i', 7)}"
        f"      WHEN i % 25 = 0 AND i + 1 < {n} THEN '+1714' || {pad(dialect, 'i + 1', 7)}"
        f"      ELSE '+1626' || {pad(dialect, 'i', 7)} END,"
        f" CASE WHEN (i + a.k) % 3 = 0 THEN 'en' ELSE 'vi' END,"
        f" CASE WHEN i % 20 = 1 + 10 * a.k THEN 1000000000 + 2 * i + a.k END,"
        f" CASE WHEN a.k = 1 AND i % 100 = 2 THEN {now} END, {now}, {now}"
        f" FROM {seq(dialect, n)} CROSS JOIN (SELECT 0 AS k UNION ALL SELECT 1) AS a",
        f"INSERT INTO contact_assignments (contact_id, service_account_id)"
        f" SELECT 2 * i + 1, 2 * i + 1 FROM {seq(dialect, n)}"
        f" UNION ALL SELECT 2 * i + 1, 2 * i + 2 FROM {seq(dialect, n)}"
        f" UNION ALL SELECT 2 * i + 2, 2 * i + 2 FROM {seq(dialect, n)}",
        # SMS opt-outs: contact 0's number for c % 100 in (3, 21, 41, 61) (21, 41 and 61 are Telegram-linked)
        f"INSERT INTO opt_outs (channel, address, keyword, opted_out_at, provider_blocks)"
        f" SELECT 'sms', '+1714' || {pad(dialect, 'i', 7)}, 'STOP', {now}, {true}"
        f" FROM {seq(dialect, n)} WHERE i % 100 IN (3, 21, 41, 61)",
        # SMS subscribers: even j a contact's number, odd j a number of their own
        f"INSERT INTO subscriptions (channel, address, outage_group, locale, created_at)"
        f" SELECT 'sms', CASE WHEN i % 2 = 0 THEN '+1714' || {pad(dialect, '(i * 7) % ' + str(n), 7)}"
        f" ELSE '+1408' || {pad(dialect, 'i', 7)} END, 'G' || {pad(dialect, f'(i * 3) % {GROUPS}', 2)},"
        f" CASE WHEN i % 2 = 0 THEN 'vi' ELSE 'en' END, {now} FROM {seq(dialect, n // 10)}",
        # Telegram subscribers: even j the chat a contact linked (its number is the destination), odd j a chat alone
        f"INSERT INTO subscriptions (channel, address, outage_group, locale, created_at)"
        f" SELECT 'telegram', CASE WHEN i % 2 = 0 THEN '' || (1000000000 + 2 * (20 * i + 1))"
        f" ELSE '' || (2000000000 + i) END, 'G' || {pad(dialect, f'(i * 11) % {GROUPS}', 2)}, 'vi', {now}"
        f" FROM {seq(dialect, n // 50)}",
    ]
    for statement in statements:
        execute(statement)
    execute("ANALYZE")


# -- the planner, ours and the floor ----------------------------------------------------------------

FLOOR_SQL = """
INSERT INTO outbound_messages (alert_id, destination, channel, address, fallback_address, locale, kind, params,
                               status, attempts, next_attempt_at, created_at, updated_at)
SELECT {alert}, dest,
       CASE WHEN max(chat) IS NOT NULL THEN 'telegram' ELSE 'sms' END,
       coalesce(max(chat), dest),
       CASE WHEN max(chat) IS NOT NULL AND dest NOT LIKE 'tg:%' THEN dest END,
       max(locale), 'alert', {json}, 'pending', 0, {now}, {now}, {now}
FROM (
    SELECT c.phone AS dest, CAST(c.telegram_chat_id AS VARCHAR) AS chat, c.language AS locale
    FROM contacts c
    JOIN contact_assignments ca ON ca.contact_id = c.id
    JOIN service_accounts sa ON sa.id = ca.service_account_id
    WHERE sa.outage_group IN (SELECT outage_group FROM alert_groups WHERE alert_id = {alert})
      AND c.phone IS NOT NULL AND c.opted_out_at IS NULL
    UNION ALL
    SELECT s.address, NULL, s.locale FROM subscriptions s
    WHERE s.channel = 'sms' AND s.outage_group IN (SELECT outage_group FROM alert_groups WHERE alert_id = {alert})
    UNION ALL
    SELECT coalesce((SELECT c.phone FROM contacts c
                     WHERE c.telegram_chat_id = CAST(s.address AS BIGINT) AND c.phone IS NOT NULL LIMIT 1),
                    'tg:' || s.address),
           s.address, s.locale
    FROM subscriptions s
    WHERE s.channel = 'telegram'
      AND s.outage_group IN (SELECT outage_group FROM alert_groups WHERE alert_id = {alert})
) r
GROUP BY dest
HAVING max(chat) IS NOT NULL OR NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.channel = 'sms' AND o.address = dest)
"""


def window() -> tuple[datetime, datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now, now + timedelta(hours=20), now + timedelta(hours=22)


def plan_ours(url: str) -> tuple[float, int]:
    """``bot.storage.alerts.create`` in its own transaction: (seconds, deliveries)."""
    from bot.storage.alerts import AlertRequest, create
    from bot.storage.db import BATCH_WAITS, make_engine

    engine = make_engine(url, BATCH_WAITS)  # a turn's 5 s statement limit would stop a large plan
    now, start, end = window()
    request = AlertRequest("advance", ALERT_GROUPS, start, end)
    with engine.connect():  # connected before the clock starts, as the floor is
        pass
    t0 = time.perf_counter()
    with engine.begin() as conn:
        created = create(conn, request, now, "cli:bench")
    seconds = time.perf_counter() - t0
    engine.dispose()
    return seconds, created.recipients


def _dbapi(url: str) -> Any:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000"):
            conn.execute(f"PRAGMA {pragma}")
        return conn
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))


def plan_floor(url: str) -> tuple[float, int]:
    """The floor: the alert row, its groups and one hand-written INSERT ... SELECT, then commit."""
    conn = _dbapi(url)
    sqlite = isinstance(conn, sqlite3.Connection)
    mark = "?" if sqlite else "%s"
    now, start, end = (t.replace(tzinfo=None) for t in window())
    stamp = f"'{now.isoformat(' ')}'" if sqlite else f"'{now.isoformat(' ')}'::timestamp"
    json_empty = "'{}'" if sqlite else "'{}'::json"
    t0 = time.perf_counter()
    cur = conn.cursor()
    if sqlite:
        cur.execute("BEGIN IMMEDIATE")
    cur.execute(
        "INSERT INTO alerts (kind, starts_at, ends_at, status, recipients, created_by, created_at)"
        f" VALUES ('advance', {mark}, {mark}, 'sending', 0, 'floor', {mark}) RETURNING id",
        (start, end, now) if not sqlite else (start.isoformat(" "), end.isoformat(" "), now.isoformat(" ")),
    )
    alert = int(cur.fetchone()[0])
    cur.executemany(
        f"INSERT INTO alert_groups (alert_id, outage_group) VALUES ({alert}, {mark})", [(g,) for g in ALERT_GROUPS]
    )
    cur.execute(FLOOR_SQL.format(alert=alert, now=stamp, json=json_empty))
    rows = cur.rowcount
    cur.execute(f"UPDATE alerts SET recipients = {rows} WHERE id = {alert}")
    if sqlite:
        cur.execute("COMMIT")
    else:
        conn.commit()
    seconds = time.perf_counter() - t0
    conn.close()
    return seconds, rows


def empty_deliveries(url: str) -> None:
    """Every alert and delivery gone, the table as after a fresh start (PostgreSQL: TRUNCATE)."""
    conn = _dbapi(url)
    if isinstance(conn, sqlite3.Connection):
        conn.execute("DELETE FROM outbound_messages")
        conn.execute("DELETE FROM alert_groups")
        conn.execute("DELETE FROM alerts")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        conn.execute("TRUNCATE outbound_messages, alert_groups, alerts RESTART IDENTITY")
        conn.commit()
        conn.execute("CHECKPOINT")
    conn.close()


def compare_plans(url: str) -> tuple[int, int, int]:
    """Plan with ours and the floor (untimed) and compare their rows: (ours, floor, rows that differ)."""
    empty_deliveries(url)
    _, ours = plan_ours(url)
    _, floor = plan_floor(url)
    conn = _dbapi(url)
    ids = [int(r[0]) for r in conn.execute("SELECT id FROM alerts ORDER BY id").fetchall()]
    differ = 0
    for a, b in ((ids[0], ids[1]), (ids[1], ids[0])):
        (n,) = conn.execute(
            f"SELECT count(*) FROM (SELECT {FIELDS} FROM outbound_messages WHERE alert_id = {a}"
            f" EXCEPT SELECT {FIELDS} FROM outbound_messages WHERE alert_id = {b}) d"
        ).fetchone()
        differ += int(n)
    conn.close()
    return ours, floor, differ


# -- child processes: every run is one, so that its peak RSS is its own -----------------------------

CHILDREN: list[subprocess.Popen[Any]] = []
LOGS: dict[int, Any] = {}


@dataclass
class Exited:
    seconds: float  # wall time from start to exit, as the parent saw it
    rss_mb: float  # the child's peak resident set (VmHWM, read while it ran)
    cpu: float  # the child's own CPU seconds (user + system)
    status: int
    output: str


def spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[Any]:
    """A child whose output goes to a file (read by :func:`reap`)."""
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by reap()
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    LOGS[proc.pid] = log
    CHILDREN.append(proc)
    return proc


def peak_rss(pid: int) -> float:
    """VmHWM of a running process in MB (0 when gone). Not ru_maxrss: a child's starts at its parent's."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def reap(proc: subprocess.Popen[Any], started: float, timeout: float | None = None) -> Exited:
    """Wait for ``proc``, following its peak RSS; SIGTERM it after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    rss = 0.0
    while True:
        rss = max(rss, peak_rss(proc.pid))
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline and time.monotonic() > deadline:
            proc.send_signal(signal.SIGTERM)
            deadline = None
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    log = LOGS.pop(proc.pid)
    log.seek(0)
    output = log.read()
    log.close()
    CHILDREN.remove(proc)
    return Exited(seconds, rss, usage.ru_utime + usage.ru_stime, proc.returncode, output)


def stop_children() -> None:
    for proc in list(CHILDREN):
        if proc.poll() is None:
            proc.terminate()
    for proc in list(CHILDREN):
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        CHILDREN.remove(proc)


def child_run(which: str, url: str) -> dict[str, float]:
    """One planner run in a child process: its own seconds, rows and peak RSS."""
    proc = spawn([sys.executable, __file__, "--child", which, url])
    done = reap(proc, time.perf_counter())
    if done.status != 0:
        raise RuntimeError(f"{which} failed: {done.output}")
    figures = json.loads(done.output.strip().splitlines()[-1])
    return {"seconds": figures["seconds"], "rows": figures["rows"], "rss": max(done.rss_mb, figures["rss"])}


# -- databases --------------------------------------------------------------------------------------


class Postgres:
    """``bench_fanout*`` databases on the given server, dropped on :meth:`drop_all`."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self.server = make_url(url).set(drivername="postgresql+psycopg")
        self.created: list[str] = []

    def create(self, name: str) -> str:
        assert name.startswith("bench_fanout")
        import psycopg

        with psycopg.connect(
            self.server.set(database="postgres", drivername="postgresql").render_as_string(False), autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.server.set(database=name).render_as_string(False)

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(
            self.server.set(database="postgres", drivername="postgresql").render_as_string(False), autocommit=True
        ) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def prepare(url: str, customers: int) -> tuple[float, int]:
    """Migrate and fill a new database; returns (seconds the data took, destinations of the alert)."""
    from bot.storage.db import make_engine, migrate

    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    conn = _dbapi(url)
    dialect = "sqlite" if isinstance(conn, sqlite3.Connection) else "postgresql"
    t0 = time.perf_counter()
    if dialect == "postgresql":
        conn.autocommit = True
    generate(dialect, customers, conn.execute)
    seconds = time.perf_counter() - t0
    conn.close()
    return seconds, 0


# -- the loopback provider ---------------------------------------------------------------------------


def provider(port: int, out: str) -> None:
    """Answer Twilio's Messages.json (201, a Message) and the Bot API (sendMessage: a Message; getMe: a
    bot; anything else: true) at once, on a SO_REUSEPORT socket; on SIGTERM write what was received
    (requests per address and channel) to ``out`` as JSON."""
    import uvloop

    received: dict[str, Counter[str]] = {"sms": Counter(), "telegram": Counter(), "other": Counter()}
    counter = [0]
    me = json.dumps(
        {"ok": True, "result": {"id": 123456, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}}
    )
    stamp = "Mon, 01 Dec 2026 00:00:00 +0000"

    def answer(path: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        counter[0] += 1
        if content_type.startswith("application/json"):
            params = {k: str(v) for k, v in json.loads(body or b"{}").items()}
        else:
            params = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if path.endswith("/Messages.json"):
            received["sms"][params.get("To", "")] += 1
            account = path.split("/")[3]
            sid = f"SM{os.getpid():08x}{counter[0]:024x}"
            message = {
                "account_sid": account, "api_version": "2010-04-01", "body": params.get("Body", ""),
                "date_created": stamp, "date_updated": stamp, "date_sent": None, "direction": "outbound-api",
                "error_code": None, "error_message": None, "from": params.get("From"),
                "messaging_service_sid": params.get("MessagingServiceSid"), "num_media": "0", "num_segments": "1",
                "price": None, "price_unit": "USD", "sid": sid, "status": "queued", "to": params.get("To"),
                "subresource_uris": {"media": f"/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json"},
                "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
            }  # fmt: skip
            return json.dumps(message).encode(), "201 Created"
        if path.endswith("/sendMessage"):
            chat = params.get("chat_id", "")
            received["telegram"][chat] += 1
            result = {
                "message_id": counter[0], "date": int(time.time()),
                "chat": {"id": int(chat) if chat.lstrip("-").isdigit() else 0, "type": "private"},
                "text": params.get("text", ""),
            }  # fmt: skip
            return json.dumps({"ok": True, "result": result}).encode(), "200 OK"
        received["other"][path] += 1
        if path.endswith("/getMe"):
            return me.encode(), "200 OK"
        return b'{"ok":true,"result":true}', "200 OK"

    class Http(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
                length = int(headers.get("content-length", "0"))
                if len(self.buffer) < end + 4 + length:
                    return
                body = self.buffer[end + 4 : end + 4 + length]
                self.buffer = self.buffer[end + 4 + length :]
                reply, status = answer(head[0].split(" ")[1], body, headers.get("content-type", ""))
                self.transport.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n".encode()
                    + f"Content-Length: {len(reply)}\r\n\r\n".encode()
                    + reply
                )

    async def main() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Http, sock=sock, backlog=1024)
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        loop.add_signal_handler(signal.SIGUSR1, dump)
        async with server:
            await stopped.wait()
        dump()

    def dump() -> None:
        Path(out + ".tmp").write_text(json.dumps({k: dict(v) for k, v in received.items()}))
        Path(out + ".tmp").replace(out)

    uvloop.run(main())


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 22000-22999")


class Provider:
    """``processes`` provider processes sharing one port; :meth:`received` totals what they counted."""

    def __init__(self, processes: int, tmp: Path) -> None:
        self.port = free_port()
        self.files = [tmp / f"provider{i}.json" for i in range(processes)]
        self.procs = [
            spawn([sys.executable, __file__, "--child", "provider", str(self.port), str(f)]) for f in self.files
        ]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise TimeoutError("the provider did not start")

    def received(self) -> dict[str, Counter[str]]:
        """What every process received so far (each writes its counts on SIGUSR1)."""
        for f in self.files:
            f.unlink(missing_ok=True)
        for proc in self.procs:
            proc.send_signal(signal.SIGUSR1)
        total: dict[str, Counter[str]] = {"sms": Counter(), "telegram": Counter(), "other": Counter()}
        for f in self.files:
            deadline = time.monotonic() + 10
            while not f.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            for kind, counts in json.loads(f.read_text()).items():
                total[kind].update(counts)
        return total

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            with contextlib.suppress(Exception):
                reap(proc, 0, timeout=5)


# -- dispatch -----------------------------------------------------------------------------------------


def worker_command() -> list[str] | None:
    """``outagebot worker --until-idle``; before the CLI has it, the same ``bot.worker.work`` from here."""
    cli = (ROOT / "bot" / "cli.py").read_text(encoding="utf-8")
    if '"worker"' in cli or "def worker(" in cli:
        return [sys.executable, "-m", "bot", "worker", "--until-idle"]
    if (ROOT / "bot" / "worker.py").exists():
        return [sys.executable, __file__, "--child", "worker"]
    return None


def run_worker() -> None:
    """What ``outagebot worker --until-idle`` runs (for checkouts whose CLI does not have it yet)."""
    from bot.app import build
    from bot.config import Settings
    from bot.worker import work

    app = build(Settings(), migrate_db=False)
    stats = asyncio.run(work(app, until_idle=True))
    print(json.dumps({"claimed": stats.claimed, "sent": stats.sent}))


def worker_env(url: str, port: int) -> dict[str, str]:
    base = f"http://127.0.0.1:{port}"
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("OUTAGEBOT_")},
        "PYTHONPATH": str(ROOT),
        "OUTAGEBOT_DATABASE_URL": url,
        "OUTAGEBOT_PEPPER": "bench-pepper",
        "OUTAGEBOT_PUBLIC_URL": "https://bench.example",
        "OUTAGEBOT_TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2,
        "OUTAGEBOT_TWILIO_AUTH_TOKEN": "bench-token",
        "OUTAGEBOT_TWILIO_FROM": "+16265550000",
        "OUTAGEBOT_TWILIO_API_URL": base,
        "OUTAGEBOT_TELEGRAM_TOKEN": "123456:ABCbenchbenchbenchbenchbenchbenchbe",
        "OUTAGEBOT_TELEGRAM_API_URL": base,
        "OUTAGEBOT_PACING": "false",
        # With pacing off the dispatcher still spaces a chunk's sends by these rates: set to their maximum.
        "OUTAGEBOT_SMS_PER_SECOND": "10000",
        "OUTAGEBOT_TELEGRAM_PER_SECOND": "1000",
        "OUTAGEBOT_LOG_LEVEL": "WARNING",
    }


def start_workers(url: str, port: int, workers: int) -> tuple[list[subprocess.Popen[Any]], float]:
    env = worker_env(url, port)
    started = time.perf_counter()
    command = worker_command()
    assert command is not None
    procs = [spawn(command, env=env) for _ in range(workers)]
    return procs, started


def open_deliveries(url: str) -> dict[str, int]:
    conn = _dbapi(url)
    counts = {str(s): int(n) for s, n in conn.execute("SELECT status, count(*) FROM outbound_messages GROUP BY status")}
    conn.close()
    return counts


def dispatch_run(url: str, provider: Provider, workers: int) -> dict[str, float]:
    """Plan the alert afresh, send it with ``workers`` workers; check every delivery is final and sent once."""
    empty_deliveries(url)
    _, planned = plan_ours(url)
    conn = _dbapi(url)
    expected = Counter(str(a) for (a,) in conn.execute("SELECT address FROM outbound_messages"))
    conn.close()
    before = provider.received()
    procs, started = start_workers(url, provider.port, workers)
    exits = [reap(p, started) for p in procs]
    seconds = max(e.seconds for e in exits)
    after = provider.received()
    got = (after["sms"] + after["telegram"]) - (before["sms"] + before["telegram"])
    statuses = open_deliveries(url)
    problems = []
    if any(e.status != 0 for e in exits):
        problems.append(f"worker exit statuses {[e.status for e in exits]}")
        problems += [e.output[-800:] for e in exits if e.status != 0][:1]
    if statuses.get("pending", 0) or statuses.get("sending", 0):
        problems.append(f"not final: {statuses}")
    if got != expected:
        extra = sum((got - expected).values())
        missing = sum((expected - got).values())
        problems.append(f"provider: {extra} requests beyond one a delivery, {missing} deliveries never requested")
    if problems:
        print(f"  !! {workers} worker(s): " + "; ".join(problems))
    return {
        "planned": planned,
        "seconds": seconds,
        "rate": planned / seconds,
        "rss": max(e.rss_mb for e in exits),
        "cpu_ms": sum(e.cpu for e in exits) * 1000 / max(1, planned),  # worker CPU a delivery, start-up included
        "ok": float(not problems),
    }


def worker_rss(url: str, provider: Provider, seconds: float) -> tuple[float, int]:
    """One worker sending from a table of due deliveries for ``seconds``, then SIGTERM: (peak RSS MB, sent)."""
    before = provider.received()
    procs, started = start_workers(url, provider.port, 1)
    done = reap(procs[0], started, timeout=seconds)
    after = provider.received()
    sent = sum(((after["sms"] + after["telegram"]) - (before["sms"] + before["telegram"])).values())
    return done.rss_mb, sent


# -- the run ------------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def planner_rounds(url: str, runs: int) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {"ours": [], "floor": []}
    for r in range(runs):
        order = ("ours", "floor") if r % 2 == 0 else ("floor", "ours")
        for which in order:
            empty_deliveries(url)
            out[which].append(child_run(which, url))
    return out


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """SIGTERM (and SIGHUP) raise KeyboardInterrupt, so that the cleanup below runs for them too."""

    def raise_interrupt(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    old = {s: signal.signal(s, raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each: a smoke test")
    parser.add_argument("--runs", type=int, default=None, help="runs of each planner (default 3; --quick 1)")
    parser.add_argument("--scales", default=None, help="destinations per alert (default 100000,1000000; --quick 20000)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("OUTAGEBOT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--dispatch-deliveries", type=int, default=None, help="default 30000; --quick 3000")
    parser.add_argument("--dispatch-runs", type=int, default=None, help="default 3; --quick 1")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--provider-processes", type=int, default=2)
    parser.add_argument(
        "--rss-seconds", type=float, default=None, help="worker RSS probe length (default 20; --quick 5)"
    )
    parser.add_argument("--parts", default="planner,dispatch", help="what to run: planner, dispatch or both")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "provider":
            provider(int(args.child[1]), args.child[2])
            return
        if args.child[0] == "worker":
            run_worker()
            return
        seconds, rows = (plan_ours if args.child[0] == "ours" else plan_floor)(args.child[1])
        print(json.dumps({"seconds": seconds, "rows": rows, "rss": peak_rss(os.getpid())}))
        return
    runs = args.runs or (1 if args.quick else 3)
    scales = [int(s) for s in (args.scales or ("20000" if args.quick else "100000,1000000")).split(",")]
    if "planner" not in args.parts:
        scales = []
    dispatch_n = args.dispatch_deliveries or (3000 if args.quick else 30000)
    dispatch_runs = args.dispatch_runs or (1 if args.quick else 3)
    rss_seconds = args.rss_seconds or (5.0 if args.quick else 20.0)
    pg = Postgres(args.postgres) if args.postgres.lower() != "none" else None
    has_worker = worker_command() is not None
    planner: list[tuple[str, int, dict[str, Any]]] = []
    dispatch: dict[int, list[dict[str, float]]] = {}
    worker_memory: list[tuple[int, float, int]] = []
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {runs} run(s) of each planner a size")
    with interrupts_as_exceptions(), tempfile.TemporaryDirectory(prefix="bench_fanout") as tmp_name:
        tmp = Path(tmp_name)
        prov: Provider | None = None
        try:
            if pg and has_worker:
                prov = Provider(args.provider_processes, tmp)
            for scale in scales:
                customers = max(100, round(scale / DESTINATIONS_PER_CUSTOMER))
                targets: list[tuple[str, str]] = []
                if pg:
                    targets.append(("PostgreSQL", pg.create(f"bench_fanout_{scale}")))
                if args.sqlite:
                    targets.append(("SQLite", f"sqlite:///{tmp}/fanout_{scale}.db"))
                for name, url in targets:
                    made, _ = prepare(url, customers)
                    ours_rows, floor_rows, differ = compare_plans(url)
                    print(
                        f"{name} {scale:,}: {customers:,} customer accounts generated in {made:.1f} s; "
                        f"ours planned {ours_rows:,}, the floor {floor_rows:,}, rows that differ: {differ}"
                    )
                    if ours_rows != floor_rows or differ:
                        print("  !! ours and the floor disagree")
                    rounds = planner_rounds(url, runs)
                    planner.append((name, ours_rows, rounds))
                    row = summarize(name, ours_rows, rounds)
                    print("  " + row)
                    if name == "PostgreSQL" and prov is not None:
                        rss, sent = worker_rss(url, prov, rss_seconds)
                        worker_memory.append((ours_rows, rss, sent))
                        print(
                            f"  one worker, {ours_rows:,} due: peak RSS {rss:.0f} MB"
                            f" after {sent:,} sent in {rss_seconds:.0f} s"
                        )
                    if name == "PostgreSQL" and pg:
                        pg.drop_all()
                    else:
                        for suffix in ("", "-wal", "-shm"):
                            Path(f"{tmp}/fanout_{scale}.db{suffix}").unlink(missing_ok=True)
            if pg and prov is not None and "dispatch" in args.parts:
                url = pg.create("bench_fanout_dispatch")
                prepare(url, max(100, round(dispatch_n / DESTINATIONS_PER_CUSTOMER)))
                counts = [int(w) for w in args.workers.split(",")]
                for _ in range(dispatch_runs):
                    for workers in counts:
                        dispatch.setdefault(workers, []).append(dispatch_run(url, prov, workers))
            elif pg:
                print("dispatch: skipped (this checkout has no `outagebot worker`)")
        finally:
            if prov is not None:
                prov.stop()
            stop_children()
            if pg:
                pg.drop_all()
    report(planner, dispatch, worker_memory)


def summarize(name: str, rows: int, rounds: dict[str, list[dict[str, float]]]) -> str:
    ours = median([r["seconds"] for r in rounds["ours"]])
    floor = median([r["seconds"] for r in rounds["floor"]])
    return (
        f"{name:10} {rows:>10,} {ours:8.2f} {floor:8.2f} {ours / floor:6.2f}x"
        f" {max(r['rss'] for r in rounds['ours']):8.0f} {max(r['rss'] for r in rounds['floor']):8.0f}"
    )


def report(
    planner: list[tuple[str, int, dict[str, Any]]],
    dispatch: dict[int, list[dict[str, float]]],
    worker_memory: list[tuple[int, float, int]],
) -> None:
    print()
    print("Planner: bot.storage.alerts.create against one hand-written INSERT ... SELECT (medians; peak RSS, max)")
    print(f"{'':10} {'rows':>10} {'ours s':>8} {'floor s':>8} {'ratio':>7} {'ours MB':>8} {'floor MB':>8}")
    for name, rows, rounds in planner:
        print(summarize(name, rows, rounds))
    if dispatch:
        base = median([r["rate"] for r in dispatch[min(dispatch)]])
        print()
        print("Dispatch on PostgreSQL, loopback provider, pacing off (medians)")
        print(
            f"{'workers':>7} {'deliveries':>10} {'seconds':>8} {'sends/s':>8} {'per worker':>10}"
            f" {'scaling':>8} {'worker MB':>9} {'CPU ms/send':>11} {'checked':>8}"
        )
        for workers, results in dispatch.items():
            rate = median([r["rate"] for r in results])
            print(
                f"{workers:7d} {int(results[0]['planned']):10,} {median([r['seconds'] for r in results]):8.1f}"
                f" {rate:8.0f} {rate / workers:10.0f} {rate / base:7.2f}x {max(r['rss'] for r in results):9.0f}"
                f" {median([r['cpu_ms'] for r in results]):11.2f}"
                f" {'ok' if all(r['ok'] for r in results) else 'FAILED':>8}"
            )
    for rows, rss, sent in worker_memory:
        print(f"one worker with {rows:,} deliveries due: peak RSS {rss:.0f} MB ({sent:,} sent before SIGTERM)")


if __name__ == "__main__":
    main()
