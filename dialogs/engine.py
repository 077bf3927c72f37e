"""The dialog engine: states as data, global commands, validation and the graph check.

A dialog is a table of :class:`State` rows. Each row names its prompt (a catalog id), the choices it
offers, how it parses an answer, what it does with a valid one and which states it may go to. The
engine owns everything that is the same in every state: global commands (menu, back, help, language,
abandon), re-prompts with a hint, help after three invalid answers, idle expiry, the verified guard.

The engine is pure: it gets the session, the text, the ports and the time, mutates the session and
returns a :class:`Reply`. Persistence and transactions belong to ``bot.conversation``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dialogs.ports import AccountsPort
from dialogs.text import N_, Msg, clean, fold

LOCALES = ("vi", "en")


@dataclass(frozen=True, slots=True)
class Choice:
    """One option of a prompt. ``key`` is what the dialog gets back; ``label`` what the customer sees.

    ``aliases`` are folded words (no diacritics, upper case) that pick the option besides its number.
    """

    key: str
    label: Msg
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Invalid:
    """A parser's refusal, with the short hint the customer is shown before the prompt again."""

    hint: Msg


@dataclass(frozen=True, slots=True)
class Reply:
    """What one turn answers: messages in order, then the choices of the last prompt."""

    messages: tuple[Msg, ...]
    choices: tuple[Choice, ...]
    multi: bool
    locale: str
    state: str


@dataclass(slots=True)
class Session:
    """The durable state of one conversation (one channel address)."""

    state: str = ""
    slots: dict[str, Any] = field(default_factory=dict)
    locale: str = "en"
    customer_id: int | None = None
    verified_at: datetime | None = None
    last_seen_at: datetime | None = None
    invalid_count: int = 0

    @property
    def verified(self) -> bool:
        """Whether a customer account has been verified in this session."""
        return self.customer_id is not None

    def drop_verification(self) -> None:
        """Forget the verified customer and everything collected for an operation."""
        self.customer_id = None
        self.verified_at = None
        self.slots.clear()


@dataclass(frozen=True, slots=True)
class DialogSettings:
    """Policy the dialogs need, handed in by the application."""

    support_phone: str = "1-800-990-7788"
    utility_name: str = "SCE"  # named in the first message, HELP and opt-in notices (carriers require it)
    region: str = "US"
    phone_regions: tuple[str, ...] = ("US", "CA")  # ISO 3166 regions where contacts' numbers may be
    max_contacts: int = 25
    idle_timeout: timedelta = timedelta(minutes=15)
    verified_max_age: timedelta = timedelta(hours=12)
    max_input_chars: int = 500
    invalid_before_help: int = 3


class Turn:
    """What a state's functions see: the session, the ports, the time, and a way to say things."""

    __slots__ = ("messages", "now", "ports", "session", "settings")

    def __init__(self, session: Session, ports: AccountsPort, now: datetime, settings: DialogSettings):
        self.session = session
        self.ports = ports
        self.now = now
        self.settings = settings
        self.messages: list[Msg] = []

    @property
    def slots(self) -> dict[str, Any]:
        """The current operation's collected values (JSON-serializable)."""
        return self.session.slots

    @property
    def customer_id(self) -> int:
        """The verified customer's id (states marked ``verified`` only run when there is one)."""
        cid = self.session.customer_id
        if cid is None:  # pragma: no cover - the engine's guard prevents it
            raise RuntimeError("state needs a verified session")
        return cid

    def say(self, msg: Msg) -> None:
        """Queue a message shown before the next prompt."""
        self.messages.append(msg)


Parser = Callable[[Turn, str], Any]
Action = Callable[[Turn, Any], str]


@dataclass(frozen=True, slots=True)
class State:
    """One row of a dialog table.

    Attributes:
        name: ``dialog.step``, unique in the graph.
        prompt: catalog id of the question; ``params`` fills its placeholders.
        act: gets the parsed answer, returns the next state's name (one of ``goes_to``).
        goes_to: every state ``act`` may return, declared so the graph can be checked and drawn.
        choices: fixed options; ``options`` computes them per turn instead (for lists from storage).
        multi: options may be picked several at once ("1,3", "1-3", "ALL", "TẤT CẢ").
        parse: free-text parser returning a value or :class:`Invalid` (used when there are no options).
        back: where the global "back" goes (None: the nearest menu).
        verified: only a verified session may be here.
        free_text: the answer is free text, so short global words ("VI", "EN", "X") are taken as text.
        secret: the answer is a secret (the access code): a terminal does not echo it.
        hint: shown when an answer is not understood.
    """

    name: str
    prompt: str
    act: Action
    goes_to: tuple[str, ...]
    params: Callable[[Turn], Mapping[str, Any]] | None = None
    choices: tuple[Choice, ...] = ()
    options: Callable[[Turn], Sequence[Choice]] | None = None
    multi: bool = False
    parse: Parser | None = None
    back: str | None = None
    verified: bool = False
    free_text: bool = False
    secret: bool = False
    hint: str = N_("Sorry, I did not understand. Please type the number of your choice.")


class GraphError(ValueError):
    """The dialog table is not a sound graph."""


# Global commands, as folded words: (always, not in free text). Short language names are ambiguous
# where a name is typed (a person may be called "Vi"), so there only the long forms count.
_LANG_WORDS = {
    "vi": ({"TIENG VIET", "VIETNAMESE", "VIET NGU"}, {"VI", "VN", "VIET"}),
    "en": ({"ENGLISH", "TIENG ANH"}, {"EN", "ENG"}),
}
_MENU_WORDS = ({"MENU", "MENU CHINH", "TRANG CHINH", "MAIN MENU"}, set[str]())
_BACK_WORDS = ({"0", "BACK", "QUAY LAI", "TRO LAI", "GO BACK"}, set[str]())
_HELP_WORDS = ({"?", "HELP", "INFO", "GIUP", "TRO GIUP", "GIUP DO", "HUONG DAN"}, set[str]())
_ABANDON_WORDS = ({"X", "EXIT", "HUY BO", "HUY THAO TAC", "THOAT", "ABORT"}, set[str]())

_SWITCHED = {"vi": N_("Switched to Vietnamese."), "en": N_("Switched to English.")}
# ASCII digits only: the text is folded first (digits of every script are ASCII digits by then), and a
# sign that only looks like a digit ("²", "①") must not reach int()
_NUMBER = re.compile(r"[0-9]{1,4}")
_RANGE = re.compile(r"([0-9]{1,4})-([0-9]{1,4})")
_AROUND_DASH = re.compile(r"\s*-\s*")
_ALL_WORDS = {"ALL", "TAT CA", "CA HAI", "BOTH"}
YES_WORDS = frozenset({"Y", "C", "CO", "YES", "DONG Y", "OK", "VANG", "DA", "CO LUU", "LUU"})
NO_WORDS = frozenset({"N", "K", "KHONG", "NO", "KO", "KHONG LUU"})


def _is(words: tuple[set[str], set[str]], folded: str, free_text: bool) -> bool:
    long, short = words
    return folded in long or (not free_text and folded in short)


def parse_selection(folded: str, count: int, multi: bool) -> list[int] | None:
    """Parse "2", "1,3", "1-3", "1 3", "ALL" into 0-based indexes of ``count`` options.

    ``folded`` is the answer after :func:`~dialogs.text.fold`, so "１，３" or "٣-١" arrive as "1,3" and
    "3-1". Returns None when the answer names no option, a number out of range, something that is not
    a number of ASCII digits, or several options where one is expected.
    """
    if count == 0:
        return None
    if multi and folded in _ALL_WORDS:
        return list(range(count))
    picked: list[int] = []
    for part in re.split(r"[,;\s]+|\bVA\b|\bAND\b", _AROUND_DASH.sub("-", folded)):
        if not part:
            continue
        rng = _RANGE.fullmatch(part)
        if rng:
            lo, hi = int(rng.group(1)), int(rng.group(2))
            if lo > hi:
                lo, hi = hi, lo
            numbers = range(lo, hi + 1)
        elif _NUMBER.fullmatch(part):
            numbers = range(int(part), int(part) + 1)
        else:
            return None
        for number in numbers:
            if not 1 <= number <= count:
                return None
            if number - 1 not in picked:
                picked.append(number - 1)
    if not picked or (not multi and len(picked) != 1):
        return None
    return sorted(picked)


class Engine:
    """Runs turns over a checked graph of states."""

    def __init__(
        self,
        states: Iterable[State],
        *,
        start: str,
        menu: str,
        verify: str,
        settings: DialogSettings,
    ) -> None:
        self.states: dict[str, State] = {}
        for state in states:
            if state.name in self.states:
                raise GraphError(f"state {state.name!r} is defined twice")
            self.states[state.name] = state
        self.start, self.menu, self.verify = start, menu, verify
        self.settings = settings
        self._check()

    # -- the graph ---------------------------------------------------------------------------------

    def edges(self) -> list[tuple[str, str, str]]:
        """Every declared transition as (from, to, kind) with kind "next" or "back"."""
        out: list[tuple[str, str, str]] = []
        for state in self.states.values():
            out.extend((state.name, target, "next") for target in state.goes_to)
            out.append((state.name, self._back_target(state), "back"))
        return out

    def _check(self) -> None:
        for name in (self.start, self.menu, self.verify):
            if name not in self.states:
                raise GraphError(f"entry state {name!r} is not defined")
        for source, target, _kind in self.edges():
            if target not in self.states:
                raise GraphError(f"{source!r} goes to undefined state {target!r}")
        for state in self.states.values():
            if not state.goes_to:
                raise GraphError(f"{state.name!r} is a dead end: it declares no next state")
            if state.parse is None and not state.choices and state.options is None:
                raise GraphError(f"{state.name!r} accepts no answer: no choices and no parser")
        reachable, frontier = {self.start, self.menu}, [self.start, self.menu]
        while frontier:
            current = frontier.pop()
            for source, target, _kind in self.edges():
                if source == current and target not in reachable:
                    reachable.add(target)
                    frontier.append(target)
        unreachable = sorted(set(self.states) - reachable)
        if unreachable:
            raise GraphError(f"unreachable states: {', '.join(unreachable)}")

    def message_ids(self) -> set[str]:
        """The catalog ids the graph names statically (prompts, hints, fixed choice labels)."""
        ids = {s.prompt for s in self.states.values()} | {s.hint for s in self.states.values()}
        for state in self.states.values():
            ids.update(choice.label.id for choice in state.choices)
        return ids

    def check_catalog(self, has: Callable[[str], bool]) -> None:
        """Raise :class:`GraphError` if a message the graph names is missing from a catalog."""
        missing = sorted(i for i in self.message_ids() if not has(i))
        if missing:
            raise GraphError(f"messages missing from a catalog: {missing}")

    def mermaid(self) -> str:
        """The graph as a Mermaid state diagram."""
        lines = ["stateDiagram-v2", f"    [*] --> {_mm(self.start)}"]
        for source, target, kind in self.edges():
            if kind == "back" and target == self.menu:
                continue
            label = "" if kind == "next" else ": back"
            lines.append(f"    {_mm(source)} --> {_mm(target)}{label}")
        lines.append(f"    note right of {_mm(self.menu)} : MENU, X, 0, HELP, VI or EN work in every state")
        return "\n".join(dict.fromkeys(lines)) + "\n"

    def _back_target(self, state: State) -> str:
        if state.back is not None:
            return state.back
        return self.menu

    # -- a turn ------------------------------------------------------------------------------------

    def step(self, session: Session, text: str, ports: AccountsPort, now: datetime, *, revoked: bool = False) -> Reply:
        """Advance ``session`` by one customer message and return what to answer.

        ``revoked`` says the verification no longer holds (the access code changed, the account was
        locked, or support revoked it): the session is signed out before anything else happens.
        """
        turn = Turn(session, ports, now, self.settings)
        last_seen, session.last_seen_at = session.last_seen_at, now
        folded = fold(text[: self.settings.max_input_chars * 4])

        if not session.state or session.state not in self.states:
            lang = self._language_word(folded, free_text=False)
            if lang:
                session.locale = lang
                return self._enter(turn, self.menu)
            return self._enter(turn, self.start)

        if last_seen is not None and now - last_seen > self.settings.idle_timeout:
            session.drop_verification()
            session.invalid_count = 0
            turn.say(
                Msg.of(
                    N_("Your session ended after {minutes} minutes without activity. Nothing unfinished was saved."),
                    minutes=int(self.settings.idle_timeout.total_seconds() // 60),
                )
            )
            return self._enter(turn, self.menu)
        if session.verified and (
            revoked or (session.verified_at is not None and now - session.verified_at > self.settings.verified_max_age)
        ):
            session.drop_verification()
            turn.say(Msg.of(N_("For your security, please verify your account again.")))
            return self._enter(turn, self.menu)

        state = self.states[session.state]
        if state.verified and not session.verified:  # e.g. the customer account was removed meanwhile
            return self._enter(turn, state.name)  # the guard in _enter sends it to verification
        if not folded:
            return self._enter(turn, state.name)
        handled = self._global(turn, state, folded)
        if handled is not None:
            return handled
        if len(text) > self.settings.max_input_chars:
            return self._invalid(turn, state, Msg.of(N_("That message is too long. Please answer briefly.")))
        cleaned = clean(text, self.settings.max_input_chars)
        if cleaned is None:
            return self._invalid(turn, state, Msg.of(state.hint))
        value = self._parse(turn, state, cleaned, folded)
        if isinstance(value, Invalid):
            return self._invalid(turn, state, value.hint)
        session.invalid_count = 0
        target = state.act(turn, value)
        if target not in state.goes_to:
            raise GraphError(f"{state.name!r} went to undeclared state {target!r}")
        return self._enter(turn, target)

    def _language_word(self, folded: str, free_text: bool) -> str | None:
        for locale, words in _LANG_WORDS.items():
            if _is(words, folded, free_text):
                return locale
        return None

    def _global(self, turn: Turn, state: State, folded: str) -> Reply | None:
        session = turn.session
        lang = self._language_word(folded, state.free_text)
        if lang is not None:
            session.locale = lang
            if state.name == self.start:  # naming a language is the answer here
                return self._enter(turn, self.menu)
            turn.say(Msg.of(_SWITCHED[lang]))
            return self._enter(turn, state.name)
        if _is(_HELP_WORDS, folded, state.free_text):
            self._help(turn)
            return self._enter(turn, state.name)
        if _is(_MENU_WORDS, folded, state.free_text) or _is(_ABANDON_WORDS, folded, state.free_text):
            if any(not key.startswith("_") for key in session.slots):
                turn.say(Msg.of(N_("Cancelled. Nothing was changed.")))
            session.slots.clear()
            session.invalid_count = 0
            return self._enter(turn, self.menu)
        if _is(_BACK_WORDS, folded, state.free_text):
            session.invalid_count = 0
            return self._enter(turn, self._back_target(state))
        return None

    def _help(self, turn: Turn) -> None:
        turn.say(
            Msg.of(
                N_(
                    "Type the number of your choice. 0: back. MENU: main menu. X: cancel. "
                    "VI: Tiếng Việt. Help: {support}"
                ),
                support=self.settings.support_phone,
            )
        )

    def _parse(self, turn: Turn, state: State, cleaned: str, folded: str) -> Any:
        if state.parse is not None and not state.choices and state.options is None:
            return state.parse(turn, cleaned)
        keys: list[str] = list(turn.slots.get("_keys", ()))
        picked = parse_selection(folded, len(keys), state.multi)
        if picked is None and not state.multi:
            for choice in state.choices:
                if folded in choice.aliases:
                    return choice.key
        if picked is None:
            if state.parse is not None:
                return state.parse(turn, cleaned)
            return Invalid(Msg.of(state.hint))
        if state.multi:
            return [keys[i] for i in picked]
        return keys[picked[0]]

    def _invalid(self, turn: Turn, state: State, hint: Msg) -> Reply:
        session = turn.session
        session.invalid_count += 1
        turn.say(hint)
        if session.invalid_count >= self.settings.invalid_before_help:
            session.invalid_count = 0
            turn.say(
                Msg.of(
                    N_("Need help? Call Customer Support at {support}. Type MENU for the main menu."),
                    support=self.settings.support_phone,
                )
            )
        return self._enter(turn, state.name)

    def _enter(self, turn: Turn, name: str) -> Reply:
        state = self.states[name]
        session = turn.session
        if state.verified and not session.verified:
            session.slots.clear()
            turn.say(Msg.of(N_("Please verify your account first.")))
            state = self.states[self.verify]
        session.state = state.name
        params = dict(state.params(turn)) if state.params is not None else {}
        choices = tuple(state.options(turn)) if state.options is not None else state.choices
        if choices:
            session.slots["_keys"] = [choice.key for choice in choices]
        else:
            session.slots.pop("_keys", None)
        turn.messages.append(Msg.of(state.prompt, **params))
        return Reply(tuple(turn.messages), choices, state.multi, session.locale, state.name)


def _mm(name: str) -> str:
    return name.replace(".", "_")
