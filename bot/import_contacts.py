"""The contacts of an import, merged with what customers changed through the bot.

The CIS names a contact by its phone, else its email, within its customer (``contact_key``).
``import_snapshots`` remembers, for each contact the CIS named, what its rows said when they were last
imported (name, phone, email, language, the service accounts they put it on) and which of our
contacts they feed. For each contact in the file:

- **known and unchanged** (it says what it said last time): nothing is written. What the customer
  did through the bot stands: a removal from a service account, a new phone, name, email, language.
- **known and changed**: only the fields the CIS changed are written, to the contact the row feeds
  (even if the customer gave it another phone since); only service accounts new to it are assigned.
- **new to the import**: the customer's contact with that phone (else email) takes the row's values,
  or else a new contact is created; either way it is assigned to all the row's service accounts.
- **a CIS phone change**: a changed number looks like a new contact, because the number is the name.
  When a contact new to the import has the same name (ignoring case and accents) as exactly one
  contact the CIS named before and no longer names in this file, it is that contact with a new number:
  its phone (and email, if that changed too) is written, and nothing else the customer did is undone.
  A phone and a name changed at once make a new contact.

Nothing absent from the file is unassigned or deleted, and its snapshot rows stay, so an export that
leaves a contact out and a later one that brings it back unchanged do not undo anything either.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, insert, select, update

from bot.cis_csv import Row, contact_key
from bot.import_audit import ImportAudit, changes
from bot.storage.bulk import insert_many
from bot.storage.models import Contact, ContactAssignment, ImportSnapshot, table
from dialogs.text import fold

_co = table(Contact)
_as = table(ContactAssignment)
_snap = table(ImportSnapshot)
_FIELDS = ("name", "phone", "email", "language")
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Said:
    """What a CIS row says about its contact (or what one of our contacts holds now)."""

    name: str
    phone: str | None
    email: str | None
    language: str

    @property
    def key(self) -> str:
        return contact_key(self.phone, self.email)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "phone": self.phone, "email": self.email, "language": self.language}

    def changed_to(self, other: Said) -> dict[str, Any]:
        """The fields ``other`` says differently, with its values."""
        return {f: getattr(other, f) for f in _FIELDS if getattr(self, f) != getattr(other, f)}


@dataclass(eq=False)
class Target:
    """One of our contacts this import may write to; ``id`` is None until a new one is inserted."""

    id: int | None
    said: Said
    before: Said | None = None  # its values before this import changed them (None: created by it)


@dataclass
class _Wanted:
    said: Said
    accounts: set[str] = field(default_factory=set)  # service account numbers


@dataclass
class _Known:
    said: Said
    contact_id: int | None
    accounts: set[str]


@dataclass
class ContactCounts:
    """What the merge wrote."""

    added: int = 0
    updated: int = 0
    assigned: int = 0
    unchanged: int = 0


@dataclass
class _Plan:
    counts: ContactCounts = field(default_factory=ContactCounts)
    created: list[tuple[int, Target]] = field(default_factory=list)
    updated: dict[Target, int] = field(default_factory=dict)  # target -> customer id
    links: list[tuple[int, Target, set[str]]] = field(default_factory=list)
    forget: list[tuple[int, str]] = field(default_factory=list)
    remember: list[tuple[int, str, Said, Target, set[str]]] = field(default_factory=list)

    def create(self, customer_id: int, said: Said) -> Target:
        target = Target(None, said)
        self.created.append((customer_id, target))
        return target

    def apply(self, customer_id: int, target: Target, values: dict[str, Any]) -> None:
        """Write ``values`` to ``target`` where they differ from what it holds."""
        values = {k: v for k, v in values.items() if getattr(target.said, k) != v}
        if not values:
            return
        if target.id is not None and target.before is None:
            target.before = target.said
            self.updated[target] = customer_id
        target.said = replace(target.said, **values)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _load(
    conn: Connection, customers: Iterable[int]
) -> tuple[dict[int, dict[str, _Known]], dict[int, dict[int, Target]]]:
    known: dict[int, dict[str, _Known]] = {}
    contacts: dict[int, dict[int, Target]] = {}
    for chunk in _chunks(sorted(set(customers))):
        for s in conn.execute(
            select(
                _snap.c.customer_id,
                _snap.c.contact_key,
                _snap.c.contact_id,
                _snap.c.name,
                _snap.c.phone,
                _snap.c.email,
                _snap.c.language,
                _snap.c.service_accounts,
            ).where(_snap.c.customer_id.in_(chunk))
        ):
            known.setdefault(s.customer_id, {})[s.contact_key] = _Known(
                Said(s.name, s.phone, s.email, s.language), s.contact_id, set(s.service_accounts)
            )
        for c in conn.execute(
            select(_co.c.id, _co.c.customer_id, _co.c.name, _co.c.phone, _co.c.email, _co.c.language)
            .where(_co.c.customer_id.in_(chunk))
            .order_by(_co.c.id)
        ):
            contacts.setdefault(c.customer_id, {})[c.id] = Target(c.id, Said(c.name, c.phone, c.email, c.language))
    return known, contacts


def _renumbered(
    wanted: dict[str, _Wanted], known: dict[str, _Known], contacts: dict[int, Target], by_key: dict[str, Target]
) -> dict[str, tuple[Target, list[str]]]:
    """Keys new to the import that are a contact the CIS named before under another key (a new number).

    Returns the new key -> (that contact, the old keys it had in the snapshot).
    """
    named = {by_key[k].id for k in wanted if k in by_key} | {known[k].contact_id for k in wanted if k in known}
    gone: dict[str, dict[int, list[str]]] = {}
    for key, was in known.items():
        if key not in wanted and was.contact_id in contacts and was.contact_id not in named:
            gone.setdefault(fold(was.said.name), {}).setdefault(was.contact_id, []).append(key)
    fresh: dict[str, list[str]] = {}
    for key, want in wanted.items():
        if key not in known and key not in by_key:
            fresh.setdefault(fold(want.said.name), []).append(key)
    found: dict[str, tuple[Target, list[str]]] = {}
    for name, keys in fresh.items():
        candidates = gone.get(name, {})
        if len(keys) == 1 and len(candidates) == 1:
            ((contact_id, old_keys),) = candidates.items()
            found[keys[0]] = (contacts[contact_id], old_keys)
    return found


def _merge_customer(
    customer_id: int, wanted: dict[str, _Wanted], known: dict[str, _Known], contacts: dict[int, Target], plan: _Plan
) -> None:
    by_key: dict[str, Target] = {}
    for target in contacts.values():  # ordered by id: with two email-only contacts, the older one
        by_key.setdefault(target.said.key, target)
    renumbered = _renumbered(wanted, known, contacts, by_key)
    for key, want in wanted.items():
        was = known.get(key)
        fed = contacts.get(was.contact_id) if was is not None and was.contact_id is not None else None
        if was is not None and fed is not None:  # a row the CIS sent before
            changed = was.said.changed_to(want.said)
            plan.apply(customer_id, fed, changed)
            plan.links.append((customer_id, fed, want.accounts - was.accounts))
            if not changed:
                plan.counts.unchanged += len(want.accounts & was.accounts)
            if changed or not want.accounts <= was.accounts:
                plan.forget.append((customer_id, key))
                plan.remember.append((customer_id, key, want.said, fed, want.accounts | was.accounts))
            continue
        if was is not None and not was.said.changed_to(want.said) and want.accounts <= was.accounts:
            plan.counts.unchanged += len(want.accounts)  # its contact was deleted since: nothing new about it
            continue
        old_keys: list[str] = []
        found: Target | None
        if key in renumbered:
            found, old_keys = renumbered[key]
            plan.apply(customer_id, found, known[old_keys[0]].said.changed_to(want.said))
            accounts = set[str]().union(*(known[k].accounts for k in old_keys))
        else:
            found = by_key.get(key)
            if found is None:
                found = plan.create(customer_id, want.said)
            else:
                plan.apply(customer_id, found, found.said.changed_to(want.said))
            accounts = set()
        target = by_key[key] = found
        plan.links.append((customer_id, target, want.accounts - accounts))
        if was is not None:
            accounts |= was.accounts
            old_keys.append(key)
        plan.forget.extend((customer_id, k) for k in old_keys)
        plan.remember.append((customer_id, key, want.said, target, want.accounts | accounts))


def merge_contacts(
    conn: Connection,
    rows: Sequence[Row],
    customer_ids: dict[str, int],
    account_ids: dict[str, int],
    audit: ImportAudit,
    now: datetime,
) -> ContactCounts:
    """Write the file's contacts and assignments as the module's rules say; returns what was written."""
    wanted: dict[int, dict[str, _Wanted]] = {}
    for row in rows:
        key = row.contact_key
        if key is None:
            continue
        mine = wanted.setdefault(customer_ids[row.customer], {})
        entry = mine.setdefault(key, _Wanted(Said(row.contact_name, row.phone, row.email, row.language)))
        entry.accounts.add(row.service_account)
    known, contacts = _load(conn, wanted)
    plan = _Plan()
    for customer_id, mine in wanted.items():
        _merge_customer(customer_id, mine, known.get(customer_id, {}), contacts.get(customer_id, {}), plan)
    _write_contacts(conn, plan, audit, now)
    _write_links(conn, plan, audit, account_ids)
    _write_snapshots(conn, plan, now)
    return plan.counts


def _write_contacts(conn: Connection, plan: _Plan, audit: ImportAudit, now: datetime) -> None:
    if plan.created:
        statement = insert(_co).returning(_co.c.id, sort_by_parameter_order=True)
        result = conn.execute(
            statement,
            [{"customer_id": cid, **t.said.as_dict(), "created_at": now, "updated_at": now} for cid, t in plan.created],
        )
        for (cid, target), row in zip(plan.created, result, strict=True):
            target.id = int(row.id)
            audit("import.contact.add", cid, contact_id=target.id, **target.said.as_dict())
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for target, cid in plan.updated.items():
        assert target.before is not None
        diff = changes(target.before.as_dict(), target.said.as_dict())
        if not diff:  # changed and changed back within this import
            continue
        by_shape.setdefault(tuple(sorted(diff)), []).append(
            {"b_id": target.id, "b_at": now, **{f"b_{k}": getattr(target.said, k) for k in diff}}
        )
        audit("import.contact.update", cid, contact_id=target.id, changes=diff)
    for shape, params in by_shape.items():
        values: dict[str, Any] = {k: bindparam(f"b_{k}") for k in shape}
        if "phone" in shape:  # the new number never shared a Telegram chat: its alerts go by SMS
            values["telegram_chat_id"] = None
        conn.execute(
            update(_co).where(_co.c.id == bindparam("b_id")).values(**values, updated_at=bindparam("b_at")), params
        )
    plan.counts.added = len(plan.created)
    plan.counts.updated = sum(len(p) for p in by_shape.values())


def _write_links(conn: Connection, plan: _Plan, audit: ImportAudit, account_ids: dict[str, int]) -> None:
    wanted: dict[Target, tuple[int, set[str]]] = {}
    for cid, target, accounts in plan.links:
        if accounts:
            wanted.setdefault(target, (cid, set()))[1].update(accounts)
    held: set[tuple[int, int]] = set()
    for chunk in _chunks(sorted({t.id for t in wanted if t.id is not None})):
        held.update(
            (a.contact_id, a.service_account_id)
            for a in conn.execute(select(_as.c.contact_id, _as.c.service_account_id).where(_as.c.contact_id.in_(chunk)))
        )
    links: list[dict[str, int]] = []
    for target, (cid, accounts) in wanted.items():
        assert target.id is not None
        new = sorted(a for a in accounts if (target.id, account_ids[a]) not in held)
        if new:
            links.extend({"contact_id": target.id, "service_account_id": account_ids[a]} for a in new)
            audit("import.assign", cid, contact_id=target.id, service_accounts=new)
    insert_many(conn, _as, links)
    plan.counts.assigned = len(links)


def _write_snapshots(conn: Connection, plan: _Plan, now: datetime) -> None:
    if plan.forget:
        conn.execute(
            delete(_snap).where(
                and_(_snap.c.customer_id == bindparam("b_cid"), _snap.c.contact_key == bindparam("b_key"))
            ),
            [{"b_cid": cid, "b_key": key} for cid, key in sorted(set(plan.forget))],
        )
    insert_many(
        conn,
        _snap,
        [
            {
                "customer_id": cid,
                "contact_key": key,
                "contact_id": target.id,
                **said.as_dict(),
                "service_accounts": sorted(accounts),
                "imported_at": now,
            }
            for cid, key, said, target, accounts in plan.remember
        ],
    )
