"""The audit rows of one import: every change it makes, written in its transaction.

Channel ``import``, address the file's name, the customer account concerned, and details with the old
and new values. An access code is never written, nor its hash: only that it changed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from bot.storage.bulk import insert_many
from bot.storage.models import AuditEntry, table

CHANNEL = "import"
_audit = table(AuditEntry)
_ADDRESS_MAX = int(getattr(_audit.c.address.type, "length", 128) or 128)


def jsonable(value: Any) -> Any:
    """A value as the audit's JSON holds it (kW as text, exactly as stored)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"old": ..., "new": ...}}`` for every field whose value differs."""
    return {k: {"old": jsonable(old.get(k)), "new": jsonable(v)} for k, v in new.items() if old.get(k) != v}


class ImportAudit:
    """Collects an import's audit rows and writes them in one statement at the end of its transaction."""

    def __init__(self, source: str, now: datetime) -> None:
        self.address = source[:_ADDRESS_MAX]
        self.now = now
        self.rows: list[dict[str, Any]] = []

    def __call__(self, action: str, customer_id: int, **details: Any) -> None:
        """Record one change (``action`` such as ``import.contact.update``)."""
        self.rows.append(
            {
                "at": self.now,
                "channel": CHANNEL,
                "address": self.address,
                "customer_id": customer_id,
                "action": action,
                "details": {k: jsonable(v) for k, v in details.items()},
            }
        )

    def write(self, conn: Connection) -> None:
        """Insert what was recorded (in the import's transaction)."""
        insert_many(conn, _audit, self.rows)
        self.rows = []
