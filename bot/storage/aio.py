"""Running the synchronous turn code from the web server's event loop without ever blocking it.

The turn code (``bot.conversation``, the repositories, the dialogs) is plain synchronous code on a
SQLAlchemy ``Connection``. The web server must never let one turn's wait stall the others, so each
database gets the runner that suits it:

- :class:`InlineSQLite`: a SQLite turn costs a few hundred microseconds of CPU and waits for no
  network, so it runs right in the event loop (measured: handing it to a thread and back cost more
  than the turn, ``bench/sms_webhook.py``). It never sleeps in SQLite's busy handler: when the write
  lock is held elsewhere (an import, the CLI, the outbox thread) the attempt fails at once and the
  loop waits with ``asyncio.sleep`` before trying again, up to ``Waits.lock_seconds``.
- :class:`ThreadedPostgres`: on PostgreSQL every statement is a network round trip and a commit waits
  for the WAL flush, so turns must overlap. Each turn runs on one of a pool of threads, each with
  its own long-lived connection (synchronous psycopg): a turn waiting for a row lock or a slow server
  holds one thread, never the loop, and the commits of different customers overlap. Measured
  against the same code on SQLAlchemy's asyncio engine (greenlets over psycopg's async connection):
  the threads served 1.3 to 2.4 times as many turns (every awaited round trip costs more CPU in
  asyncio than a blocking one, and a turn makes four).

Both offer ``run`` (one transaction), ``read`` (no transaction), ``offload`` (CPU-heavy work such as an
access-code hash, on a small pool that leaves a core to the loop) and ``blocking`` (work that waits
on the network, such as sending the outbox).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection

from bot.storage.db import Busy, Database

T = TypeVar("T")


class Runner(Protocol):
    """How the event loop runs synchronous database work."""

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one transaction."""
        ...

    async def read(self, work: Callable[[Connection], T]) -> T:
        """``work`` outside any transaction."""
        ...

    async def offload(self, work: Callable[..., T], *args: Any) -> T:
        """CPU-heavy ``work`` off the loop."""
        ...

    async def blocking(self, work: Callable[..., T], *args: Any) -> T:
        """``work`` that waits on the network (and may use the database), off the loop."""
        ...

    async def close(self) -> None:
        """Stop the threads."""
        ...


def _hash_pool() -> ThreadPoolExecutor:
    # Leave a core to the loop: scrypt saturates what it gets.
    return ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1), thread_name_prefix="outagebot-hash")


class InlineSQLite:
    """SQLite work run in the loop, waiting for the write lock with ``asyncio.sleep`` (never blocking)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.waits = db.waits
        self._pool = _hash_pool()
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outagebot-io")

    async def _retrying(self, attempt: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.waits.lock_seconds
        delay = 0.0005
        while True:
            try:
                return attempt()
            except Busy:
                if loop.time() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one SQLite transaction, taken without blocking the loop."""
        return await self._retrying(lambda: self.db.run(work, wait=False))

    async def read(self, work: Callable[[Connection], T]) -> T:
        """``work`` outside a transaction."""
        return await self._retrying(lambda: self.db.read(work, wait=False))

    async def offload(self, work: Callable[..., T], *args: Any) -> T:
        """CPU-heavy ``work`` on the hashing threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    async def blocking(self, work: Callable[..., T], *args: Any) -> T:
        """Network-bound ``work`` on one thread (it shares the database's one connection, under its lock)."""
        return await asyncio.get_running_loop().run_in_executor(self._io, work, *args)

    async def close(self) -> None:
        """Stop the threads (the database belongs to the caller)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._io.shutdown(wait=False, cancel_futures=True)


class ThreadedPostgres:
    """PostgreSQL work on a pool of threads, each with its own long-lived connection."""

    def __init__(self, db: Database, *, threads: int = 20) -> None:
        self.db = db
        self.waits = db.waits
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="outagebot-db")
        self._pool = _hash_pool()

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one transaction, on a database thread."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.db.run, work)

    async def read(self, work: Callable[[Connection], T]) -> T:
        """``work`` outside a transaction, on a database thread."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.db.read, work)

    async def offload(self, work: Callable[..., T], *args: Any) -> T:
        """CPU-heavy ``work`` on the hashing threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    async def blocking(self, work: Callable[..., T], *args: Any) -> T:
        """Network-bound ``work`` on a database thread (its connection is reused, not a new one)."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, work, *args)

    async def close(self) -> None:
        """Stop the threads (the database belongs to the caller)."""
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._pool.shutdown(wait=False, cancel_futures=True)


def runner_for(db: Database, *, threads: int = 20) -> Runner:
    """The runner that suits the database behind ``db``."""
    if db.dialect == "sqlite":
        return InlineSQLite(db)
    return ThreadedPostgres(db, threads=threads)
