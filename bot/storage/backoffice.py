"""What support staff and the back office read and do from the terminal (``outagebot customer ...``).

Reads return plain dictionaries, ready for a table or ``--json``. Phone numbers, emails and chat
addresses are masked (the last four characters shown: enough to confirm with a caller, not enough to
text anyone); the numbers the customer reads off the bill (customer and service accounts) are shown
whole. Every action (unlock) is audited with the operator's name in the same transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import Connection, func, select, update

from bot.logs import mask_text
from bot.security import mask
from bot.storage.models import (
    AuditEntry,
    ChatSession,
    Contact,
    ContactAssignment,
    CustomerAccount,
    OptOut,
    OutboundMessage,
    ServiceAccount,
    table,
)

_ca, _sa, _co, _as = table(CustomerAccount), table(ServiceAccount), table(Contact), table(ContactAssignment)
_audit, _s, _oo, _om = table(AuditEntry), table(ChatSession), table(OptOut), table(OutboundMessage)


def _when(value: datetime | None, zone: tzinfo) -> str | None:
    return value.astimezone(zone).isoformat(timespec="seconds") if value is not None else None


def _masked_email(email: str | None) -> str | None:
    if not email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def customer_overview(conn: Connection, number: str, now: datetime, zone: tzinfo = UTC) -> dict[str, Any] | None:
    """A customer account as support staff see it (times in ``zone``), or None when there is no such account."""
    customer = conn.execute(select(_ca).where(_ca.c.number == number)).first()
    if customer is None:
        return None
    accounts = conn.execute(
        select(_sa.c.id, _sa.c.number, _sa.c.service_address, _sa.c.outage_group)
        .where(_sa.c.customer_id == customer.id)
        .order_by(_sa.c.number)
    ).all()
    numbers = {row.id: row.number for row in accounts}
    assigned: dict[int, list[str]] = {}
    for contact_id, account_id in conn.execute(
        select(_as.c.contact_id, _as.c.service_account_id)
        .join(_co, _co.c.id == _as.c.contact_id)
        .where(_co.c.customer_id == customer.id)
    ):
        assigned.setdefault(contact_id, []).append(numbers[account_id])
    contacts = conn.execute(select(_co).where(_co.c.customer_id == customer.id).order_by(_co.c.name, _co.c.id)).all()
    sessions = conn.execute(
        select(func.count(), func.max(_s.c.last_seen_at)).where(
            _s.c.customer_id == customer.id, _s.c.customer_version == customer.credential_version
        )
    ).one()
    last_change = conn.execute(select(func.max(_audit.c.at)).where(_audit.c.customer_id == customer.id)).scalar()
    locked = customer.locked_until is not None and customer.locked_until > now
    return {
        "customer_account": customer.number,
        "name": customer.name,
        "locked_until": _when(customer.locked_until, zone) if locked else None,
        "failed_attempts": customer.failed_attempts,
        "signed_in_sessions": int(sessions[0]),
        "last_seen": _when(sessions[1], zone),
        "last_audited": _when(last_change, zone),
        "service_accounts": [
            {"number": a.number, "address": a.service_address, "outage_group": a.outage_group} for a in accounts
        ],
        "contacts": [
            {
                "name": c.name,
                "phone": mask(c.phone) or None,
                "email": _masked_email(c.email),
                "language": c.language,
                "opted_out": c.opted_out_at is not None,
                "service_accounts": sorted(assigned.get(c.id, [])),
            }
            for c in contacts
        ],
    }


def unlock(conn: Connection, number: str, operator: str, now: datetime) -> bool | None:
    """Clear a customer account's lockout and failure count; audited. None: no such account.

    Returns whether it was locked. Sessions stay ended (a lockout ended them for good reason).
    """
    row = conn.execute(
        select(_ca.c.id, _ca.c.locked_until, _ca.c.failed_attempts).where(_ca.c.number == number).with_for_update()
    ).first()
    if row is None:
        return None
    was_locked = row.locked_until is not None and row.locked_until > now
    conn.execute(update(_ca).where(_ca.c.id == row.id).values(failed_attempts=0, locked_until=None))
    conn.execute(
        _audit.insert().values(
            at=now,
            channel="operator",
            address=operator[:128],
            customer_id=row.id,
            action="customer.unlock",
            details={"was_locked": was_locked, "failed_attempts": row.failed_attempts},
        )
    )
    return was_locked


def audit_entries(
    conn: Connection, customer: str | None = None, since: datetime | None = None, limit: int = 200, zone: tzinfo = UTC
) -> list[dict[str, Any]] | None:
    """The audit log, newest first; ``customer`` a Customer Account Number (None: no such account)."""
    query = (
        select(_audit, _ca.c.number)
        .outerjoin(_ca, _ca.c.id == _audit.c.customer_id)
        .order_by(_audit.c.at.desc(), _audit.c.id.desc())
        .limit(limit)
    )
    if customer is not None:
        customer_id = conn.execute(select(_ca.c.id).where(_ca.c.number == customer)).scalar()
        if customer_id is None:
            return None
        query = query.where(_audit.c.customer_id == customer_id)
    if since is not None:
        query = query.where(_audit.c.at >= since)
    return [
        {
            "at": _when(r.at, zone),
            "channel": r.channel,
            "by": r.address if r.channel in ("operator", "import") else mask(r.address),
            "customer_account": r.number,
            "action": r.action,
            "details": _masked_details(r.details),
        }
        for r in conn.execute(query)
    ]


def _masked_details(details: Any) -> Any:
    """Audit details with phone numbers and emails masked (a contact edit records old and new values)."""
    if isinstance(details, dict):
        return {key: _masked_details(value) for key, value in details.items()}
    if isinstance(details, list):
        return [_masked_details(value) for value in details]
    if isinstance(details, str):
        return mask_text(details)
    return details


def opt_outs(conn: Connection, zone: tzinfo = UTC) -> list[dict[str, Any]]:
    """Every opted-out address, newest first."""
    return [
        {
            "channel": r.channel,
            "address": mask(r.address),
            "keyword": r.keyword,
            "at": _when(r.opted_out_at, zone),
            # the provider refuses to send there too (Twilio's own words, 21610); else the opt-out is ours alone
            "provider_blocks": bool(r.provider_blocks),
            "reminded": _when(r.reminded_at, zone),  # the one reminder of how to opt back in
        }
        for r in conn.execute(select(_oo).order_by(_oo.c.opted_out_at.desc()))
    ]


def outbox(conn: Connection, status: str | None = None, limit: int = 200, zone: tzinfo = UTC) -> list[dict[str, Any]]:
    """Messages in the outbox, newest first; ``status`` (pending, failed, expired, ...) narrows them."""
    query = select(_om).order_by(_om.c.created_at.desc(), _om.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(_om.c.status == status)
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "channel": r.channel,
            "address": mask(r.address),
            "status": r.status,
            "attempts": r.attempts,
            "error_code": r.error_code,
            "created": _when(r.created_at, zone),
            "next_attempt": _when(r.next_attempt_at, zone) if r.status == "pending" else None,
        }
        for r in conn.execute(query)
    ]
