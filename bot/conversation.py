"""One turn: an :class:`Inbound` in, the dialog engine run on its session, a :class:`Reply` out.

Everything a turn reads and writes happens in one database transaction: the session row (locked),
verification counters, contacts, assignments and audit rows. Either all of it is committed or none.
Turns of one address are serialized by the session row lock; different addresses run concurrently
on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from bot.channels.base import Inbound, KeywordKind
from bot.security import CodeChecker, CodeHasher, FailureAlarm, PrecheckedCodes, mask
from bot.storage import optouts
from bot.storage.accounts import AccountsRepo, LockoutPolicy, stored_code_hash
from bot.storage.db import Database
from bot.storage.sessions import LostUpdate, load_for_update, peek, save
from dialogs.engine import Engine, Reply, Session
from dialogs.text import N_, Msg
from dialogs.verify import CODE_STATE, pending_check

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


Render = Callable[[Reply], list[str]]

_HELP = N_("Rotating outage alerts. Help: {support}. Reply STOP to stop. Msg & data rates may apply.")
_OPTED_OUT = N_("You will get no more messages from rotating outage alerts. Help: {support}")
_OPTED_IN = N_("You will get rotating outage alert messages again. Reply STOP to stop.")


@dataclass(frozen=True, slots=True)
class Answer:
    """A turn's rendered reply; ``reply`` is None when it is the remembered reply to a replay."""

    texts: list[str]
    reply: Reply | None
    replayed: bool = False
    enqueued: int = 0  # outbox messages the turn wrote (send them soon)


class Conversation:
    """Runs turns against the database."""

    def __init__(self, db: Database, engine: Engine, hasher: CodeHasher, policy: LockoutPolicy,
                 clock: Clock = utc_now, alarm: FailureAlarm | None = None, attempts: int = 3) -> None:
        self.db, self.engine, self.hasher, self.policy = db, engine, hasher, policy
        self.clock, self.alarm, self.attempts = clock, alarm, attempts

    def handle(self, inbound: Inbound) -> Reply:
        """Run one turn for ``inbound`` and return the reply (after it is committed).

        A turn that fails (the database is away, a bug) is rolled back whole, so nothing is half
        saved, and the customer is told to try again rather than left without an answer.
        """
        answer = self.answer(inbound, lambda reply: [])
        assert answer.reply is not None  # only a replayed provider message has none
        return answer.reply

    def answer(self, inbound: Inbound, render: Render, prechecked: PrecheckedCodes | None = None,
               *, checked: bool = False) -> Answer:
        """Run one turn and render its reply, in the turn's transaction.

        With ``inbound.external_id`` (a provider's message id) the rendered reply is remembered in the
        same transaction, so a replay of that message gets the same texts and changes nothing.
        ``checked`` says the caller already asked :meth:`pending_code` (and passes ``prechecked``).
        """
        for attempt in range(1, self.attempts + 1):
            try:
                return self._turn(inbound, render, prechecked, checked)
            except (LostUpdate, OperationalError) as exc:
                if attempt < self.attempts and _retryable(exc):
                    log.warning("turn for %s:%s retried after %s", inbound.channel, mask(inbound.address),
                                type(exc).__name__)
                    continue
                failed = self._failed(inbound, exc)
            except Exception as exc:
                failed = self._failed(inbound, exc)
            return Answer(render(failed), failed)
        raise AssertionError("unreachable")  # pragma: no cover

    def _failed(self, inbound: Inbound, exc: Exception) -> Reply:
        log.error("turn for %s:%s failed and was rolled back: %s", inbound.channel, mask(inbound.address),
                  type(exc).__name__, exc_info=exc)
        locale = inbound.locale_hint or "en"
        with contextlib.suppress(Exception), self.db.unlocked() as conn:
            session = peek(conn, inbound.channel, inbound.address)
            locale = session.locale if session is not None else locale
        message = Msg.of(N_("Sorry, something went wrong and nothing was changed. Please try again, "
                            "or call {support}."), support=self.engine.settings.support_phone)
        return Reply((message,), (), False, locale, "")

    def pending_code(self, inbound: Inbound) -> tuple[str, str | None] | None:
        """The (code, stored hash) this message's turn would check, if any.

        The check is a deliberately slow hash. Inside the turn it would hold the session lock (and
        on SQLite the database's only write lock, stalling every other conversation) and, in the web
        server, the event loop; so it is done before, off the loop (see :meth:`precheck`).
        """
        if self.db.dialect != "sqlite" or inbound.keyword is not None:
            return None
        with self.db.unlocked() as conn:
            session = peek(conn, inbound.channel, inbound.address, only_in=CODE_STATE)
            pending = pending_check(session, inbound.text) if session is not None else None
            if pending is None:
                return None
            return pending[1], stored_code_hash(conn, pending[0])

    def precheck(self, pending: tuple[str, str | None]) -> PrecheckedCodes:
        """Check a code against its stored hash now, for the turn to reuse."""
        codes = PrecheckedCodes(self.hasher)
        codes.precheck(*pending)
        return codes

    def _turn(self, inbound: Inbound, render: Render, prechecked: PrecheckedCodes | None,
              checked: bool) -> Answer:
        if prechecked is None and not checked:
            pending = self.pending_code(inbound)
            prechecked = self.precheck(pending) if pending else None
        checker: CodeChecker = prechecked or self.hasher
        now = self.clock()
        with self.db.transaction() as conn:
            stored = load_for_update(conn, inbound.channel, inbound.address, inbound.locale_hint)
            if inbound.external_id:
                seen = optouts.replayed(conn, inbound.channel, inbound.external_id)
                if seen is not None:
                    return Answer(seen, None, replayed=True)
            repo = AccountsRepo(conn, channel=inbound.channel, address=inbound.address, now=now,
                                hasher=checker, policy=self.policy, throttle=stored.throttle,
                                alarm=self.alarm)
            reply = self._keyword(conn, inbound, stored.session, repo, now) if inbound.keyword else None
            if reply is None:
                # a keyword with nothing to do: START shows where the conversation is; YES is a yes
                text = "" if inbound.keyword and not inbound.keyword.passes_through else inbound.text
                reply = self.engine.step(stored.session, text, repo, now)
            save(conn, stored)
            texts = render(reply)
            if inbound.external_id:
                optouts.remember(conn, inbound.channel, inbound.external_id, texts, now)
        return Answer(texts, reply, enqueued=repo.enqueued)

    def _keyword(self, conn: Connection, inbound: Inbound, session: Session, repo: AccountsRepo,
                 now: datetime) -> Reply | None:
        """Act on a subscription keyword; None hands the message to the dialog instead."""
        keyword = inbound.keyword
        assert keyword is not None
        locale = keyword.locale or session.locale
        session.last_seen_at = now
        messages: tuple[Msg, ...] = ()
        if keyword.kind is KeywordKind.OPT_OUT:
            optouts.opt_out(conn, inbound.channel, inbound.address, keyword.word, now)
            repo.audit("subscription.opt_out", session.customer_id, keyword=keyword.word)
            if not keyword.provider_confirms:
                messages = (Msg.of(_OPTED_OUT, support=self.engine.settings.support_phone),)
        elif keyword.kind is KeywordKind.OPT_IN:
            if not optouts.opt_in(conn, inbound.channel, inbound.address):
                return None
            repo.audit("subscription.opt_in", session.customer_id, keyword=keyword.word)
            if not keyword.provider_confirms:
                messages = (Msg.of(_OPTED_IN),)
        else:
            messages = (Msg.of(_HELP, support=self.engine.settings.support_phone),)
        return Reply(messages, (), False, locale, session.state)


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, LostUpdate):
        return True
    text = str(getattr(exc, "orig", exc)).lower()
    return any(word in text for word in ("deadlock", "could not serialize", "database is locked"))
