"""Running the synchronous turn code from the web server's event loop without ever blocking it.

The turn code (``bot.conversation``, the repositories, the dialogs) is plain synchronous code on a
SQLAlchemy ``Connection``. The web server must never let one turn's wait stall the others, so each
database gets the runner that suits it:

- :class:`InlineSQLite`: a SQLite turn costs a few hundred microseconds of CPU and no I/O wait worth
  the name, so it runs right in the event loop (measured: handing it to a thread and back cost more
  than the turn, ``bench/sms_webhook.py``). It never sleeps in SQLite's busy handler: when the write
  lock is held elsewhere (an import, the CLI, the outbox thread) the attempt fails at once and the
  loop waits with ``asyncio.sleep`` before trying again, up to ``Waits.lock_seconds``.
- :class:`GreenletPostgres`: on PostgreSQL every statement is a network round trip and a commit waits
  for the WAL flush, so turns must overlap. The same synchronous code runs in a greenlet on
  SQLAlchemy's asyncio engine (psycopg's async connection): each statement awaits the server and
  the loop serves other customers meanwhile. Turns of different customers run concurrently in one
  worker and their commits overlap (PostgreSQL flushes them together).

Both offer ``run`` (one transaction), ``read`` (no transaction) and ``offload`` (slow CPU work such as
an access-code hash, on a small thread pool so that it neither blocks the loop nor takes every core).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.storage.db import (
    Busy,
    Database,
    Waits,
    in_transaction,
    outside_transaction,
    postgres_connect_args,
    postgres_url,
)

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

    async def close(self) -> None:
        """Release connections and threads."""
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

    async def close(self) -> None:
        """Stop the hashing threads (the database belongs to the caller)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


class GreenletPostgres:
    """PostgreSQL work as greenlets on SQLAlchemy's asyncio engine: many turns in flight per worker."""

    def __init__(self, url: str, waits: Waits, *, pool_size: int = 10) -> None:
        self.waits = waits
        self.engine: AsyncEngine = create_async_engine(
            postgres_url(url, asyncio=True), pool_size=pool_size, max_overflow=2 * pool_size,
            pool_timeout=waits.lock_seconds, connect_args=postgres_connect_args(waits))
        # A guard against a server that stops answering without closing the connection (no RST):
        # lock_timeout and statement_timeout are enforced by the server, so the client needs its own.
        self.deadline = waits.connect_seconds + waits.lock_seconds + waits.statement_seconds + 1.0
        self._pool = _hash_pool()

    async def _with_connection(self, work: Callable[[Connection], T]) -> T:
        async with asyncio.timeout(self.deadline), self.engine.connect() as conn:
            return await conn.run_sync(work)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one transaction, its statements awaited in a greenlet."""
        return await self._with_connection(lambda conn: in_transaction(conn, work))

    async def read(self, work: Callable[[Connection], T]) -> T:
        """``work`` outside a transaction."""
        return await self._with_connection(lambda conn: outside_transaction(conn, work))

    async def offload(self, work: Callable[..., T], *args: Any) -> T:
        """CPU-heavy ``work`` on the hashing threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    async def close(self) -> None:
        """Close the pool and stop the hashing threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):
            await self.engine.dispose()


def runner_for(db: Database, url: str, *, pool_size: int = 10) -> Runner:
    """The runner that suits the database behind ``db``."""
    if db.dialect == "sqlite":
        return InlineSQLite(db)
    return GreenletPostgres(url, db.waits, pool_size=pool_size)
