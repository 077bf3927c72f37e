"""One turn: an :class:`Inbound` in, the dialog engine run on its session, a rendered reply out.

Everything a turn reads and writes happens in one database transaction: the session row (locked),
verification counters, contacts, assignments, audit rows and outbox rows. Either all of it is
committed or none. Turns of one conversation are serialized by the session row lock; different
conversations run concurrently (PostgreSQL) or one after the other in sub-millisecond turns (SQLite).

A turn never waits on anything slow while it holds locks. The one slow thing a customer can cause,
checking an access code (scrypt), is computed before the turn: a turn that needs a check it has not
got raises :class:`NeedsCheck`, is rolled back, and runs again once the check is computed (off the
event loop in the web server). Two drivers run the same :meth:`Conversation.turn`:
:meth:`Conversation.answer` (synchronous: the terminal, tests, scripts) and
:meth:`Conversation.answer_async` (the web server, through a :class:`bot.storage.aio.Runner`).
A turn that fails is rolled back whole and answered with an apology; lost races and lost
connections are retried first.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from bot.channels import buttons
from bot.channels.base import Inbound, KeywordKind
from bot.channels.segments import count_segments
from bot.security import CodeChecks, CodeHasher, FailureAlarm, NeedsCheck, mask
from bot.storage import optouts, replays
from bot.storage.accounts import AccountsRepo, ContactLimits, LockoutPolicy, NeedsTransaction
from bot.storage.aio import Runner
from bot.storage.db import CommitFailed, Database
from bot.storage.optouts import OptedOut
from bot.storage.sessions import LostUpdate, StoredSession, load_for_update, save
from dialogs.engine import Engine, Reply
from dialogs.text import N_, Msg

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Render = Callable[[Reply], list[str]]
Screen = Callable[[Reply, "buttons.Keyboard | None"], list[str]]  # a reply with its buttons (Telegram)

# SMS keywords' answers. Each names the utility: carriers require it, and customers trust it.
_HELP = N_("{utility}: rotating outage alerts. Help: {support}. Reply STOP to stop. Msg & data rates may apply.")
_HELP_MENU = N_("Reply MENU for the main menu.")
_HELP_RESUME = N_("Reply ? for how to answer.")  # in the middle of a step: MENU would leave it
_OPTED_OUT = N_(
    "{utility}: you will get no more rotating outage alert messages. Reply BAT DAU to get them again. Help: {support}"
)
_OPTED_IN = N_("{utility}: you will get rotating outage alert messages again. Reply STOP to stop.")
_STILL_OPTED_OUT = N_(
    "{utility}: you opted out, so you get no messages. Reply BAT DAU to get them again. Help: {support}"
)
SORRY = N_("Sorry, something went wrong and nothing was changed. Please try again, or call {support}.")
HELP_SEGMENTS = 2  # HELP with the current question stays within this many SMS segments, or drops the question
STALE_STATE = "(stale button)"  # the state a reply to a stale press names: the session's own is unchanged
REMINDER_LOCALE = "vi"  # only our own (Vietnamese) opt-out words lead to the reminder
_MAX_CHECKS = 4  # code checks computed for one message: two readings of it, and again for a changed hash


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Answer:
    """A turn's rendered reply; ``reply`` is None when it is the remembered reply to a replay."""

    texts: list[str]
    reply: Reply | None
    replayed: bool = False
    enqueued: int = 0  # outbox messages the turn wrote (send them soon)
    failed: bool = False
    actions: tuple[str, ...] = ()  # the audit actions the committed turn wrote (verify.failure, ...)
    keyboard: buttons.Keyboard | None = None  # the buttons' token and toggles (channels with buttons)
    stale: bool = False  # a button of a question that has passed: nothing was done
    secret: bool = False  # the message answered a secret question (the access code): remove it if possible


@dataclass(slots=True)
class _Attempts:
    """What the attempts at one message have learnt: the checks computed, the conversation's language,
    and whether the next attempt may run without a transaction (see :meth:`Conversation.turn`)."""

    checks: CodeChecks
    optimistic: bool = False
    locale: str | None = None
    needs: list[NeedsCheck] = field(default_factory=list)
    failures: int = 0
    secret: bool = False  # the message answers a secret question (known once the session is read)


class Conversation:
    """Runs turns against the database."""

    def __init__(
        self,
        db: Database,
        engine: Engine,
        hasher: CodeHasher,
        policy: LockoutPolicy,
        clock: Clock = utc_now,
        alarm: FailureAlarm | None = None,
        attempts: int = 3,
        limits: ContactLimits | None = None,
    ) -> None:
        self.db, self.engine, self.hasher, self.policy = db, engine, hasher, policy
        self.clock, self.alarm, self.attempts = clock, alarm, attempts
        self.limits = replace(limits or ContactLimits(), subscriptions_per_address=engine.settings.max_subscriptions)

    # -- drivers ---------------------------------------------------------------------------------

    def handle(self, inbound: Inbound) -> Reply:
        """Run one turn for ``inbound`` and return the reply (after it is committed)."""
        answer = self.answer(inbound, lambda reply: [])
        assert answer.reply is not None  # only a replayed provider message has none
        return answer.reply

    def answer(self, inbound: Inbound, render: Render) -> Answer:
        """Run one turn and render its reply, blocking this thread while it waits."""
        state = _Attempts(CodeChecks(self.hasher), optimistic=self.db.dialect == "postgresql" and not inbound.keyword)
        while True:
            try:
                work = functools.partial(self.turn, inbound=inbound, render=render, state=state)
                return self.db.autocommit(work) if state.optimistic else self.db.run(work)
            except Exception as exc:
                outcome = self._after(inbound, exc, state, render)
                if isinstance(outcome, Answer):
                    return outcome
                if outcome is not None:
                    state.checks.add(outcome.code, outcome.stored)

    async def answer_async(
        self, inbound: Inbound, render: Render, runner: Runner, *, screen: Screen | None = None
    ) -> Answer:
        """Run one turn from an event loop: database waits and code checks never block the loop.

        ``screen`` renders the reply with its buttons for a channel that has them: what it returns is
        what a replay of the message is answered with."""
        state = _Attempts(CodeChecks(self.hasher), optimistic=runner.autocommits and not inbound.keyword)
        while True:
            try:
                work = functools.partial(self.turn, inbound=inbound, render=render, state=state, screen=screen)
                return await (runner.autocommit(work) if state.optimistic else runner.run(work))
            except Exception as exc:
                outcome = self._after(inbound, exc, state, render)
                if isinstance(outcome, Answer):
                    return outcome
                if outcome is not None:
                    await runner.offload(state.checks.add, outcome.code, outcome.stored)

    def _after(self, inbound: Inbound, exc: Exception, state: _Attempts, render: Render) -> Answer | NeedsCheck | None:
        """What to do after an attempt raised ``exc``: give up (the apology), compute a check, or try again."""
        if isinstance(exc, NeedsTransaction):
            state.optimistic = False
            return None
        if isinstance(exc, NeedsCheck):
            if len(state.needs) >= _MAX_CHECKS:
                return self._failed(inbound, exc, state, render)
            state.needs.append(exc)
            return exc
        state.failures += 1
        if state.failures >= self.attempts or not retryable(exc):
            return self._failed(inbound, exc, state, render)
        if not (state.optimistic and isinstance(exc, LostUpdate)):  # expected now and then: not worth a line
            log.warning("turn for %s:%s retried after %s", inbound.channel, mask(inbound.address), type(exc).__name__)
        state.optimistic = False  # run again under the row lock: it cannot lose the same race twice
        return None

    def _failed(self, inbound: Inbound, exc: BaseException, state: _Attempts, render: Render) -> Answer:
        log.error(
            "turn for %s:%s failed and was rolled back: %s",
            inbound.channel,
            mask(inbound.address),
            type(exc).__name__,
            exc_info=exc,
        )
        locale = state.locale or inbound.locale_hint or "en"
        message = Msg.of(SORRY, support=self.engine.settings.support_phone)
        reply = Reply((message,), (), False, locale, "")
        return Answer(render(reply), reply, failed=True, secret=state.secret)

    # -- the turn --------------------------------------------------------------------------------

    def turn(
        self, conn: Connection, *, inbound: Inbound, render: Render, state: _Attempts, screen: Screen | None = None
    ) -> Answer:
        """One turn inside the caller's transaction on ``conn``.

        Raises :class:`NeedsCheck` (before writing anything that stays) when a code check is missing.
        With ``inbound.external_id`` (a provider's message id) the rendered reply is remembered in the
        same transaction, so a replay of that message gets the same texts and changes nothing.

        With ``state.optimistic`` (PostgreSQL, most turns) there is no transaction: the session is read
        without a lock and every write but the session's own raises :class:`NeedsTransaction` before
        it happens; the session and the remembered reply are then written by one statement that
        checks the version read, so a turn that raced another is refused (:class:`LostUpdate`) and run
        again under the lock. Two round trips instead of four for a turn that only moves the dialog.
        """
        if state.optimistic and inbound.keyword:
            raise NeedsTransaction
        now = self.clock()
        stored = load_for_update(
            conn, inbound.channel, inbound.address, inbound.locale_hint, inbound.external_id, lock=not state.optimistic
        )
        state.locale = stored.session.locale
        if stored.replayed is not None:
            return Answer(stored.replayed, None, replayed=True)
        if stored.id is None:  # a new conversation: no session row told whether the address opted out
            held = optouts.held(conn, inbound.channel, inbound.address)
            stored.opted_out = held.by if held is not None else None
        keyword = inbound.keyword
        if stored.opted_out is not None and (keyword is None or keyword.kind is KeywordKind.HELP):
            if state.optimistic:
                raise NeedsTransaction
            return self._while_opted_out(conn, inbound, stored, render, now)
        repo = AccountsRepo(
            conn,
            channel=inbound.channel,
            address=inbound.address,
            now=now,
            hasher=state.checks,
            policy=self.policy,
            throttle=stored.throttle,
            alarm=self.alarm,
            limits=self.limits,
            read_only=state.optimistic,
        )
        before = self.engine.states.get(stored.session.state)
        secret = before is not None and before.secret and inbound.press is None
        state.secret = secret
        reply = self._keyword(conn, inbound, stored, repo, now, render) if keyword else None
        if reply is None and inbound.press is not None:
            reply = self._press(stored, inbound, repo, now)
        if reply is None:
            # a keyword with nothing to do: START shows where the conversation is; YES is a yes
            text = "" if keyword and not keyword.passes_through else inbound.text
            reply = self._step(stored, text, repo, now, locale_chosen=inbound.locale_chosen, rich=inbound.rich)
        stale = reply.state == STALE_STATE
        keyboard = None
        if inbound.rich and not stale:
            # the same question keeps its buttons and ticks (a toggle, a page, a language switch, "?");
            # any other question gets a new token, and every button shown before it is stale
            keep = before is not None and reply.state == before.name
            keyboard = buttons.issue(stored.session.slots, keep=keep)
        texts = screen(reply, keyboard) if screen is not None else render(reply)
        save(conn, stored, (inbound.channel, inbound.external_id, texts, now) if inbound.external_id else None)
        return Answer(
            texts,
            reply,
            enqueued=repo.enqueued,
            actions=tuple(repo.actions),
            keyboard=keyboard,
            stale=stale,
            secret=secret,
        )

    def _press(self, stored: StoredSession, inbound: Inbound, repo: AccountsRepo, now: datetime) -> Reply:
        """A button press: the dialog's turn on what it stands for, or the same question shown again
        (a toggle, a page), or, for a button of a question that has passed, a word that it has."""
        assert inbound.press is not None
        session = stored.session
        resolved = buttons.resolve(session.slots, inbound.press)
        if resolved.stale:
            return Reply((Msg.of(buttons.PASSED),), (), False, session.locale, STALE_STATE)
        if resolved.text is not None:
            return self._step(stored, resolved.text, repo, now, rich=True)
        reply = self._step(stored, "", repo, now, rich=True)
        if resolved.nothing_picked:
            reply = Reply(
                (Msg.of(buttons.NOTHING_PICKED), *reply.messages[-1:]),
                reply.choices,
                reply.multi,
                reply.locale,
                reply.state,
            )
        return reply

    def _step(
        self,
        stored: StoredSession,
        text: str,
        repo: AccountsRepo,
        now: datetime,
        *,
        locale_chosen: bool = False,
        rich: bool = False,
    ) -> Reply:
        """The dialog engine's turn on ``text``; a customer verified in it is kept with its credential version."""
        was = stored.session.customer_id
        reply = self.engine.step(
            stored.session, text, repo, now, revoked=stored.revoked, locale_chosen=locale_chosen, rich=rich
        )
        if stored.session.customer_id is not None and stored.session.customer_id != was:
            stored.customer_version = repo.verified_version
        return reply

    def _keyword(
        self,
        conn: Connection,
        inbound: Inbound,
        stored: StoredSession,
        repo: AccountsRepo,
        now: datetime,
        render: Render,
    ) -> Reply | None:
        """Act on a subscription keyword; None hands the message to the dialog instead."""
        keyword = inbound.keyword
        assert keyword is not None
        session = stored.session
        locale = keyword.locale or session.locale
        if keyword.kind is KeywordKind.HELP:
            return self._help(stored, repo, now, render, locale)
        session.last_seen_at = now
        messages: tuple[Msg, ...] = ()
        if keyword.kind is KeywordKind.OPT_OUT:
            optouts.opt_out(
                conn, inbound.channel, inbound.address, keyword.word, now, provider_blocks=keyword.provider_confirms
            )
            repo.audit("subscription.opt_out", session.customer_id, keyword=keyword.word)
            if not keyword.provider_confirms:
                messages = (self._notice(_OPTED_OUT),)
        else:
            if not optouts.opt_in(conn, inbound.channel, inbound.address):
                return None
            repo.audit("subscription.opt_in", session.customer_id, keyword=keyword.word)
            if not keyword.provider_confirms:
                messages = (self._notice(_OPTED_IN),)
        return Reply(messages, (), False, locale, session.state)

    def _help(self, stored: StoredSession, repo: AccountsRepo, now: datetime, render: Render, locale: str) -> Reply:
        """HELP: who sends these messages, the support number, how to stop, the rates; then how to go on.

        How to go on is the turn an empty message would be (the current question shown again, or what
        an idle or revoked session gets) when the whole reply, as the channel renders it, fits in
        :data:`HELP_SEGMENTS` SMS segments beside the notice; otherwise one line on how to go on: at a
        menu, how to reach the main menu; in the middle of a step, "?" (how to answer the question, and
        the question again where it fits), since MENU would leave the step. In Vietnamese (UCS-2, 134 characters in two
        segments) that line is nearly always what follows the notice.
        """
        notice = self._notice(_HELP)
        where = self._step(stored, "", repo, now)
        reply = Reply((notice, *where.messages), where.choices, where.multi, locale, where.state)
        if count_segments("\n".join(render(reply))).count <= HELP_SEGMENTS:
            return reply
        at_menu = where.state in (self.engine.menu, self.engine.start) or where.state.endswith(".menu")
        return Reply((notice, Msg.of(_HELP_MENU if at_menu else _HELP_RESUME)), (), False, locale, where.state)

    def _while_opted_out(
        self, conn: Connection, inbound: Inbound, stored: StoredSession, render: Render, now: datetime
    ) -> Answer:
        """A message (or HELP) from an opted-out address: the dialog does not run, the session is not written.

        Where the provider blocks the address nothing is answered, since nothing would arrive. Where
        only we keep the opt-out (our own words), the first message since the opt-out is answered with
        how to opt in again, once (``opt_outs.reminded_at``), and so is HELP, always (carriers require
        HELP to work); everything else gets nothing. The reply, even none, is remembered under the
        message id like any other.
        """
        held = optouts.held(conn, inbound.channel, inbound.address, lock=True)
        if held is None:  # opted in meanwhile by a turn without a session row to serialize on
            raise LostUpdate("the opt-out was cleared meanwhile")
        if stored.id is None and inbound.external_id:  # no session row carried the replay check
            again = replays.replayed(conn, inbound.channel, inbound.external_id)
            if again is not None:
                return Answer(again, None, replayed=True)
        session, keyword = stored.session, inbound.keyword
        messages: tuple[Msg, ...] = ()
        locale = REMINDER_LOCALE if keyword is None else keyword.locale or session.locale  # HELP: its own
        if held.by is OptedOut.US and (keyword is not None or held.reminded_at is None):
            if held.reminded_at is None:
                optouts.remind(conn, inbound.channel, inbound.address, now)
            messages = (self._notice(_STILL_OPTED_OUT),)
        reply = Reply(messages, (), False, locale, session.state)
        texts = render(reply)
        if inbound.external_id:
            replays.remember(conn, inbound.channel, inbound.external_id, texts, now)
        return Answer(texts, reply)

    def _notice(self, msgid: str) -> Msg:
        """A keyword's answer, with the utility's name and the support number filled in."""
        settings = self.engine.settings
        return Msg.of(msgid, utility=settings.utility_name, support=settings.support_phone)


# PostgreSQL's SQLSTATEs for a lost race that running again resolves: serialization failure, deadlock.
_RETRY_SQLSTATES = {"40001", "40P01"}


def retryable(exc: BaseException) -> bool:
    """Whether running the whole turn again can succeed (and cannot apply anything twice)."""
    if isinstance(exc, LostUpdate):
        return True
    if isinstance(exc, CommitFailed):
        return False  # the commit may have taken effect: never run it twice
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True  # the connection was lost before the commit: nothing was applied
        return getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES
    return False
