"""Bearer tokens of the HTTP API for the utility's outage-management system.

A token is shown once, when it is made, and never stored: the table keeps its keyed hash,
HMAC-SHA256 under the pepper that also keeps access codes (outside the database), so a copy of the
database alone yields no usable token and cannot even be checked against guesses. A token is 256
random bits, so one keyed hash suffices (a slow hash protects low-entropy secrets such as access
codes). Tokens are found by their hash (a unique index) and compared again in constant time; a
revoked token stays in the table, refused, so its name cannot be reused by mistake.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from bot.storage.models import ApiToken, AuditEntry, table

_t = table(ApiToken)
_audit = table(AuditEntry)
NAME_MAX = 100


def digest(pepper: bytes, token: str) -> str:
    """The keyed hash a token is stored and found by (64 hex digits)."""
    return hmac.new(pepper, token.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as operators see it (never the token itself)."""

    name: str
    created_at: datetime
    revoked_at: datetime | None


def valid_name(name: str) -> bool:
    """A name is 1-100 printable ASCII characters without spaces (it becomes ``api:<name>``)."""
    return 0 < len(name) <= NAME_MAX and all("!" <= ch <= "~" for ch in name)


def create(conn: Connection, pepper: bytes, name: str, operator: str, now: datetime) -> str | None:
    """Make a token called ``name``; returns it (the only time it exists in clear), or None when the
    name is taken (revoked tokens keep theirs). Audited as ``api_token.create``."""
    token = secrets.token_urlsafe(32)
    try:
        with conn.begin_nested():
            conn.execute(_t.insert().values(name=name, token_hash=digest(pepper, token), created_at=now))
    except IntegrityError:
        return None
    _audited(conn, "api_token.create", name, operator, now)
    return token


def revoke(conn: Connection, name: str, operator: str, now: datetime) -> bool | None:
    """Refuse the token called ``name`` from now on. Returns whether it was in use until now (False: it
    was revoked already), or None when there is no such token. Audited as ``api_token.revoke``."""
    row = conn.execute(select(_t.c.id, _t.c.revoked_at).where(_t.c.name == name).with_for_update()).first()
    if row is None:
        return None
    if row.revoked_at is not None:
        return False
    conn.execute(update(_t).where(_t.c.id == row.id).values(revoked_at=now))
    _audited(conn, "api_token.revoke", name, operator, now)
    return True


def tokens(conn: Connection) -> list[TokenInfo]:
    """Every token, in the order they were made."""
    rows = conn.execute(select(_t.c.name, _t.c.created_at, _t.c.revoked_at).order_by(_t.c.id))
    return [TokenInfo(str(r.name), r.created_at, r.revoked_at) for r in rows]


def holder(conn: Connection, pepper: bytes, token: str) -> str | None:
    """The name of the token ``token`` if it is one and not revoked, else None."""
    wanted = digest(pepper, token)
    row = conn.execute(select(_t.c.name, _t.c.token_hash, _t.c.revoked_at).where(_t.c.token_hash == wanted)).first()
    if row is None or not hmac.compare_digest(str(row.token_hash), wanted) or row.revoked_at is not None:
        return None
    return str(row.name)


def _audited(conn: Connection, action: str, name: str, operator: str, now: datetime) -> None:
    conn.execute(
        _audit.insert().values(
            at=now, channel="cli", address=operator[:128], customer_id=None, action=action, details={"token": name}
        )
    )
