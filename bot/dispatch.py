"""The dispatcher: every message we send that is not a reply (alerts, opt-in notices), by one mechanism.

A worker (``outagebot worker``, or the one inside ``serve``) loops:

1. **Claim** a batch of due deliveries in one statement: ``UPDATE ... WHERE id IN (SELECT ... FOR
   UPDATE SKIP LOCKED) RETURNING`` on PostgreSQL, so any number of workers on any number of machines
   share the table without a broker and never take the same row; on SQLite one dispatcher runs. A
   claimed row is ``sending`` with a lease: if the worker dies, the row falls due again when the
   lease ends and another worker sends it.
2. **Render** each in its recipient's language (``bot.alerts`` for alerts, ``bot.outbox`` for notices),
   reading the affected service accounts for the whole batch in one query per alert.
3. **Send** in chunks of at most a second of budget. Before a chunk leaves, its rows are read again:
   a row an operator cancelled, or whose number opted out since, is not sent. With pacing on, the
   chunk's span is reserved in the shared budget (:mod:`bot.storage.pacing`) and each message leaves
   at its own slot within it; a message that could not leave within :data:`LATE` of its slot goes back
   to the queue rather than crowd the next second.
4. **Record** each chunk's outcomes in one transaction: accepted (the provider's id), delivered
   (Telegram has no later report), opted out (the opt-out recorded), failed with a reason, fallen back
   to SMS (Telegram refused the chat for good: it is unlinked), or due again after a full-jitter
   backoff that honours ``retry_after``. Twilio's status callbacks move SMS on (``bot.outbox``).

A message can be sent twice only if its worker dies between the provider accepting it and the
chunk's record: at most one chunk per worker.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Connection, bindparam, select, update

from bot import metrics, outbox
from bot.alerts import SMS_SEGMENTS, Alert, Texts
from bot.app import App
from bot.channels.base import Outcome, SendResult
from bot.channels.segments import count_segments
from bot.security import mask
from bot.storage import alerts as stored
from bot.storage import optouts, pacing, telegram_links
from bot.storage.aio import Runner
from bot.storage.models import Alert as AlertRow
from bot.storage.models import OptOut, OutboundMessage, Subscription, table

log = logging.getLogger(__name__)

_m = table(OutboundMessage)
_a = table(AlertRow)
_o = table(OptOut)
_s = table(Subscription)

LATE = 0.1  # seconds a paced send may leave after its slot; later, it is queued again
# Sends are spaced at this share of the configured rate at most; SMS, whose messages cost up to 3
# segments at once, at less (Dispatcher._rate), so that no one-second window holds more than the rate.
HEADROOM = 0.85
CHUNK_SECONDS = 1.0  # the budget one chunk reserves at most
RETRY_CAP = 600.0  # seconds: the longest backoff between tries
RETRY_BASE = 2.0
# An alert delivery still unsent this long after its window ended is expired: the news is old. A
# restored or cancelled alert's window may already be over when it is sent, so it counts from creation.
ALERT_STALE = timedelta(hours=1)
FOLLOW_UP_STALE = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery."""

    id: int
    channel: str
    address: str
    kind: str
    locale: str
    params: dict[str, Any]
    attempts: int
    created_at: datetime
    alert_id: int | None
    destination: str | None
    fallback: str | None
    lease: datetime  # the row's next_attempt_at as this claim set it: the row is ours while it holds


@dataclass(slots=True)
class Done:
    """What became of one delivery; written by :func:`_record`."""

    job: Job
    status: str
    next_at: datetime
    provider_id: str | None = None
    error: int | None = None
    reason: str | None = None
    segments: int | None = None
    sent: bool = False
    retry: bool = False  # attempts back by one: it never left (a late slot, a cancelled batch)
    channel: str | None = None  # fallen back: the new channel and address
    address: str | None = None
    opt_out: bool = False  # record the address's opt-out (Twilio 21610)
    unlink: int | None = None  # unlink this Telegram chat


@dataclass
class Stats:
    """What a worker did (for ``--until-idle`` and the logs)."""

    claimed: int = 0
    sent: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Dispatcher:
    """Claims, renders, paces, sends and records deliveries; one per worker process."""

    def __init__(
        self,
        app: App,
        runner: Runner,
        *,
        sms: Any | None,
        telegram: Any | None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``sms`` has ``async send_async(to, body) -> SendResult`` and a ``key`` naming its sender;
        ``telegram`` has ``async send(chat_id, text) -> SendResult`` and a ``key``. A channel without
        a sender is left in the queue (another worker may have it)."""
        self.app = app
        self.runner = runner
        self.settings = app.settings
        self.sms = sms
        self.telegram = telegram
        self.wall = wall
        self.clock = app.conversation.clock
        self.texts = Texts(app.catalogs, self.settings.zone, self.settings.utility_name, self.settings.support_phone)
        self.stats = Stats()
        self._alerts: dict[int, tuple[Alert, datetime, list[str]]] = {}
        self._wake = asyncio.Event()
        channels = [c for c, sender in (("sms", sms), ("telegram", telegram)) if sender is not None]
        self.channels = tuple(channels)
        self._concurrency = asyncio.Semaphore(self.settings.dispatch_concurrency)
        self._hold: tuple[str, float] | None = None  # a provider's retry_after, for the shared budget
        self._gone: set[int] = set()  # Telegram chats that blocked the bot or no longer exist

    async def chat_gone(self, chat_id: int) -> None:
        """The Telegram sender's ``on_blocked``: the chat is unlinked when its delivery is recorded."""
        self._gone.add(chat_id)

    def wake(self) -> None:
        """Look for work now (a turn just queued a notice)."""
        self._wake.set()

    # ---- the loop -------------------------------------------------------------------------------

    async def run(self, *, until_idle: bool = False, stop: asyncio.Event | None = None) -> Stats:
        """Dispatch until ``stop`` is set, or with ``until_idle`` until nothing is due or in flight."""
        poll = self.settings.dispatch_poll_seconds
        await self._prepare()
        while stop is None or not stop.is_set():
            try:
                handled = await self.once()
            except Exception:  # the database away, a bug: log, wait, try again
                log.exception("dispatch round failed; trying again")
                handled = 0
                if until_idle:
                    await asyncio.sleep(poll)
                    continue
            if handled:
                continue
            if until_idle and not await self.runner.read(self._anything_open):
                break
            self._wake.clear()
            waiting = [asyncio.ensure_future(self._wake.wait())]
            if stop is not None:
                waiting.append(asyncio.ensure_future(stop.wait()))
            _, pending = await asyncio.wait(waiting, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        return self.stats

    async def _prepare(self) -> None:
        """Let each sender make ready what its first send needs (``prepare()``, where it has one), so
        that the first paced send leaves at its slot. A failure here is the first send's to report."""
        for sender in (self.sms, self.telegram):
            prepare = getattr(sender, "prepare", None)
            if prepare is not None:
                try:
                    await prepare()
                except Exception:  # never fatal: the send itself reports what is wrong
                    log.warning("could not prepare %s; its first send will", type(sender).__name__, exc_info=True)

    def _anything_open(self, conn: Connection) -> bool:
        """Whether a delivery on one of our channels is still pending or held by a live lease."""
        row = conn.execute(
            select(_m.c.id).where(_m.c.status.in_(stored.OPEN), _m.c.channel.in_(self.channels)).limit(1)
        ).first()
        return row is not None

    async def once(self) -> int:
        """Claim one batch and see it through; returns how many deliveries it held."""
        if not self.channels:
            return 0
        jobs = await self.runner.run(self._claim)
        if not jobs:
            return 0
        self.stats.claimed += len(jobs)
        texts = await self.runner.read(lambda conn: self._render(conn, jobs))
        by_channel: dict[str, list[tuple[Job, str]]] = defaultdict(list)
        for job in jobs:
            by_channel[job.channel].append((job, texts[job.id]))
        await asyncio.gather(*(self._channel(channel, items) for channel, items in by_channel.items()))
        return len(jobs)

    # ---- claim ----------------------------------------------------------------------------------

    def _claim_limit(self) -> int:
        """A batch is sent well within its lease, even at the slowest configured rate."""
        batch = self.settings.dispatch_batch
        if not self.settings.pacing:
            return batch
        slowest = min(self.settings.sms_per_second / max(SMS_SEGMENTS.values()), self.settings.telegram_per_second)
        return max(1, min(batch, int(slowest * HEADROOM * self.settings.dispatch_lease_seconds / 4)))

    def _claim(self, conn: Connection) -> list[Job]:
        now = self.clock()
        lease = now + timedelta(seconds=self.settings.dispatch_lease_seconds)
        due = (
            select(_m.c.id)
            .where(_m.c.status.in_(stored.OPEN), _m.c.next_attempt_at <= now, _m.c.channel.in_(self.channels))
            .order_by(_m.c.next_attempt_at)
            .limit(self._claim_limit())
        )
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        rows = conn.execute(
            update(_m)
            .where(_m.c.id.in_(due.scalar_subquery()))
            .values(status="sending", attempts=_m.c.attempts + 1, next_attempt_at=lease, updated_at=now)
            .returning(
                _m.c.id,
                _m.c.channel,
                _m.c.address,
                _m.c.kind,
                _m.c.locale,
                _m.c.params,
                _m.c.attempts,
                _m.c.created_at,
                _m.c.alert_id,
                _m.c.destination,
                _m.c.fallback_address,
            )
        ).all()
        jobs = [Job(*row, lease) for row in rows]  # type: ignore[call-arg]
        jobs.sort(key=lambda j: j.id)
        return jobs

    # ---- render ---------------------------------------------------------------------------------

    def _alert(self, conn: Connection, alert_id: int) -> tuple[Alert, datetime, list[str]]:
        """An alert's shared parts, its stale time and groups (cached: an alert never changes)."""
        cached = self._alerts.get(alert_id)
        if cached is None:
            info = stored.get(conn, alert_id)
            if info is None:  # pragma: no cover - deliveries are deleted with their alert
                raise LookupError(alert_id)
            alert = Alert(info.kind, info.starts_at, info.ends_at, info.note_en, info.note_vi)
            stale = (
                info.created_at + FOLLOW_UP_STALE
                if info.kind in ("restored", "cancelled", "test")
                else max(info.ends_at + ALERT_STALE, info.created_at + ALERT_STALE)
            )
            cached = self._alerts[alert_id] = (alert, stale, list(info.groups))
            if len(self._alerts) > 1000:
                self._alerts.pop(next(iter(self._alerts)))
        return cached

    def _render(self, conn: Connection, jobs: Sequence[Job]) -> dict[int, str]:
        texts: dict[int, str] = {}
        per_alert: dict[int, list[Job]] = defaultdict(list)
        for job in jobs:
            if job.alert_id is None:
                texts[job.id] = outbox.render(
                    self.app.catalogs,
                    job.kind,
                    job.locale,
                    job.params,
                    self.settings.support_phone,
                    self.settings.utility_name,
                )
            else:
                per_alert[job.alert_id].append(job)
        for alert_id, group in per_alert.items():
            alert, _, groups = self._alert(conn, alert_id)
            accounts = stored.affected(conn, alert_id, [j.destination or "" for j in group])
            subscribed = self._subscribed(conn, group, groups)
            for job in group:
                destination = job.destination or ""
                budget = SMS_SEGMENTS.get(job.locale, 2) if job.channel == "sms" else None
                mine = subscribed.get(destination) or groups
                texts[job.id] = self.texts.render(
                    alert, job.locale, accounts.get(destination, []), sorted(mine), budget=budget
                )
        return texts

    def _subscribed(self, conn: Connection, jobs: Sequence[Job], groups: list[str]) -> dict[str, set[str]]:
        """For subscribers among ``jobs``, the alert's groups they subscribed to (what their text names)."""
        addresses: dict[str, str] = {}
        for job in jobs:
            for address in (job.address, job.fallback, job.destination):
                if address:
                    addresses[address.removeprefix("tg:")] = job.destination or ""
        out: dict[str, set[str]] = defaultdict(set)
        if not addresses:
            return out
        for address, group in conn.execute(
            select(_s.c.address, _s.c.outage_group).where(
                _s.c.address.in_(list(addresses)), _s.c.outage_group.in_(groups)
            )
        ):
            out[addresses[str(address)]].add(str(group))
        return out

    # ---- send -----------------------------------------------------------------------------------

    def _rate(self, channel: str) -> float:
        """Units a second to space sends at. A window of one second can hold the sends of 1 + LATE
        seconds of spacing plus one whole message (all its segments leave at its slot), so the spacing
        leaves room for both: (rate - largest) / (1 + LATE), and HEADROOM at most."""
        per_second = self.settings.sms_per_second if channel == "sms" else self.settings.telegram_per_second
        largest = max(SMS_SEGMENTS.values()) if channel == "sms" else 1
        if per_second <= largest:  # one long message alone exceeds so low a rate: nothing better to do
            return per_second * HEADROOM
        return min(per_second * HEADROOM, (per_second - largest) / (1 + LATE))

    def _key(self, channel: str) -> str:
        sender = self.sms if channel == "sms" else self.telegram
        return f"{channel}:{getattr(sender, 'key', 'default')}"

    async def _channel(self, channel: str, items: list[tuple[Job, str]]) -> None:
        """Send one channel's share of a batch, a chunk (at most a second of budget) at a time."""
        rate = self._rate(channel)
        chunk: list[tuple[Job, str, int]] = []
        units = 0.0
        for job, text in items:
            cost = count_segments(text).count if channel == "sms" else 1
            full = len(chunk) >= self.settings.dispatch_concurrency * 4
            if chunk and (full or (self.settings.pacing and units + cost > rate * CHUNK_SECONDS)):
                await self._chunk(channel, chunk)
                chunk, units = [], 0.0
            chunk.append((job, text, cost))
            units += cost
        if chunk:
            await self._chunk(channel, chunk)

    async def _chunk(self, channel: str, chunk: list[tuple[Job, str, int]]) -> None:
        now = self.clock()
        live, blocked = await self.runner.read(lambda conn: self._still_ours(conn, channel, chunk))
        done: list[Done] = []
        sending: list[tuple[Job, str, int]] = []
        for job, text, cost in chunk:
            if job.id not in live:
                continue  # cancelled meanwhile: cancel() already wrote its status
            stale = self._stale(job, now)
            if stale is not None:
                done.append(Done(job, stale, now, reason=stale))
            elif channel == "sms" and job.address in blocked:
                done.append(Done(job, "opted_out", now, reason="opted out"))
            else:
                sending.append((job, text, cost))
        start = self.wall()
        if self.settings.pacing and sending:
            seconds = sum(cost for _, _, cost in sending) / self._rate(channel)
            start = await self.runner.run(lambda conn: pacing.reserve(conn, self._key(channel), seconds, self.wall()))
        slots: list[float] = []
        offset = 0.0
        for _, _, cost in sending:
            slots.append(start + offset)
            if self.settings.pacing:  # unpaced (a local stand-in): every send at once, as concurrency allows
                offset += cost / self._rate(channel)
        results = await asyncio.gather(
            *(self._send(channel, item, slot) for item, slot in zip(sending, slots, strict=True))
        )
        done.extend(results)
        if done:
            await self.runner.run(lambda conn: self._record(conn, done))
        log.debug("chunk of %d on %s: %d handled", len(chunk), channel, len(done))

    def _still_ours(
        self, conn: Connection, channel: str, chunk: list[tuple[Job, str, int]]
    ) -> tuple[set[int], set[str]]:
        """The chunk's rows still ``sending`` (not cancelled), and its SMS addresses that opted out."""
        ids = [job.id for job, _, _ in chunk]
        # still "sending" under this claim's lease: not cancelled, and not claimed again by another worker
        # after the lease ran out (a provider slow enough to outlast it)
        lease = chunk[0][0].lease
        live = {
            int(i)
            for i in conn.scalars(
                select(_m.c.id).where(_m.c.id.in_(ids), _m.c.status == "sending", _m.c.next_attempt_at == lease)
            )
        }
        blocked: set[str] = set()
        if channel == "sms":
            addresses = list({job.address for job, _, _ in chunk})
            blocked = set(conn.scalars(select(_o.c.address).where(_o.c.channel == "sms", _o.c.address.in_(addresses))))
        return live, blocked

    def _stale_at(self, job: Job) -> datetime:
        """When a delivery is no longer worth sending: a notice after a day, an alert once it is old news."""
        if job.alert_id is None:
            return job.created_at + outbox.STALE
        return self._alerts[job.alert_id][1]

    def _stale(self, job: Job, now: datetime) -> str | None:
        return "expired" if now > self._stale_at(job) else None

    async def _send(self, channel: str, item: tuple[Job, str, int], slot: float) -> Done:
        job, text, cost = item
        wait = slot - self.wall()
        if wait > 0:
            await asyncio.sleep(wait)
        async with self._concurrency:
            now = self.clock()
            if self.settings.pacing and self.wall() > slot + LATE:
                return Done(job, "pending", now, retry=True)  # too late for its slot: queued again at once
            if channel == "sms":
                result: SendResult = await self.sms.send_async(job.address, text)  # type: ignore[union-attr]
            else:
                result = await self.telegram.send(int(job.address), text)  # type: ignore[union-attr]
        return self._outcome(channel, job, result, cost, self.clock())

    def _outcome(self, channel: str, job: Job, result: SendResult, cost: int, now: datetime) -> Done:
        metrics.SENDS.labels(channel, result.outcome.value).inc()
        if result.outcome is not Outcome.ACCEPTED:
            metrics.PROVIDER_ERRORS.labels(str(result.error_code or "none")).inc()
        if result.outcome is Outcome.ACCEPTED:
            status = "accepted" if channel == "sms" else "delivered"  # Telegram has no later report
            segments = cost if channel == "sms" else None
            return Done(job, status, now, provider_id=result.provider_id, segments=segments, sent=True)
        if result.outcome is Outcome.OPTED_OUT:
            return Done(job, "opted_out", now, error=result.error_code, reason="opted out", opt_out=True)
        if result.outcome is Outcome.PERMANENT:
            if channel == "telegram":
                done = Done(job, "failed", now, error=result.error_code, reason=f"telegram {result.error_code}")
                if int(job.address) in self._gone:
                    self._gone.discard(int(job.address))
                    done.unlink = int(job.address)
                    done.reason = "bot blocked or chat gone"
                if job.fallback:  # by SMS instead, at once
                    done.status, done.channel, done.address, done.retry = "pending", "sms", job.fallback, True
                return done
            return Done(job, "failed", now, error=result.error_code, reason=f"provider {result.error_code}")
        limit = self.settings.alert_max_attempts if job.alert_id is not None else outbox.MAX_ATTEMPTS
        if job.attempts >= limit:
            reason = f"gave up after {job.attempts} tries ({result.error_code or 'unreachable'})"
            return Done(job, "failed", now, error=result.error_code, reason=reason)
        delay = random.uniform(0, min(RETRY_CAP, RETRY_BASE**job.attempts))
        delay = max(delay, result.retry_after or 0.0)
        if now + timedelta(seconds=delay) > self._stale_at(job):
            return Done(job, "expired", now, error=result.error_code, reason="expired")
        if result.retry_after:
            key = self._key(channel)
            self._hold = (key, self.wall() + result.retry_after)
        return Done(job, "pending", now + timedelta(seconds=delay), error=result.error_code)

    # ---- record ---------------------------------------------------------------------------------

    def _record(self, conn: Connection, done: list[Done]) -> None:
        now = self.clock()
        rows = []
        for d in done:
            rows.append(
                {
                    "b_id": d.job.id,
                    "b_status": d.status,
                    "b_next": d.next_at,
                    "b_provider_id": d.provider_id,
                    "b_error": d.error,
                    "b_reason": d.reason,
                    "b_segments": d.segments,
                    "b_sent_at": now if d.sent else None,
                    "b_left": d.sent,
                    "b_lease": d.job.lease,
                    "b_back": 1 if d.retry else 0,
                    "b_channel": d.channel or d.job.channel,
                    "b_address": d.address or d.job.address,
                    "b_at": now,
                }
            )
            self.stats.by_status[d.status] += 1
            if d.sent:
                self.stats.sent += 1
            if d.opt_out:
                optouts.opt_out(conn, "sms", d.job.address, "provider:21610", now, provider_blocks=True)
            if d.unlink is not None:
                telegram_links.unlink(conn, d.unlink, now, "telegram.blocked")
            log.info("%s %s to %s: %s", d.job.kind, d.job.channel, mask(d.job.address), d.status)
        # A row an operator cancelled meanwhile keeps "cancelled" unless this message did leave.
        conn.execute(
            update(_m)
            .where(
                _m.c.id == bindparam("b_id"),
                ((_m.c.status == "sending") & (_m.c.next_attempt_at == bindparam("b_lease")))
                | ((_m.c.status == "cancelled") & bindparam("b_left", type_=Boolean)),
            )
            .values(
                status=bindparam("b_status"),
                next_attempt_at=bindparam("b_next"),
                provider_id=bindparam("b_provider_id"),
                error_code=bindparam("b_error"),
                reason=bindparam("b_reason"),
                segments=bindparam("b_segments"),
                sent_at=bindparam("b_sent_at"),
                attempts=_m.c.attempts - bindparam("b_back"),
                channel=bindparam("b_channel"),
                address=bindparam("b_address"),
                updated_at=bindparam("b_at"),
            ),
            rows,
        )
        if self._hold is not None:
            pacing.hold(conn, *self._hold)
            self._hold = None
