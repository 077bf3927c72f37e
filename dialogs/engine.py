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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from dialogs.ports import Ports
from dialogs.text import N_, NP_, Literal, Msg, clean, fold, tidy

LOCALES = ("vi", "en")


@dataclass(frozen=True, slots=True)
class Choice:
    """One option of a prompt. ``key`` is what the dialog gets back; ``label`` what the customer sees.

    ``aliases`` are folded words (no diacritics, upper case) that pick the option besides its number;
    its label, in either language, picks it too. ``number`` is the number it is shown with when that
    is not its place in the list (a list keeps its numbers when some rows are left out), and ``digits``
    are digits the customer sees on the row and may type instead (a service account's last four).
    """

    key: str
    label: Msg | Literal
    aliases: tuple[str, ...] = ()
    number: int | None = None
    digits: str = ""


@dataclass(frozen=True, slots=True)
class Invalid:
    """A parser's refusal, with the short hint the customer is shown before the prompt again.

    ``mistake`` is False for an answer that asked for help rather than got something wrong ("quên" at
    the access code): it gets the hint but does not count toward the three-mistakes help.
    """

    hint: Msg
    mistake: bool = True


@dataclass(frozen=True, slots=True)
class Reply:
    """What one turn answers: messages in order, then the choices of the last prompt (each with its
    ``number``), then ``footer`` (how to see the rest of a long list), if any."""

    messages: tuple[Msg, ...]
    choices: tuple[Choice, ...]
    multi: bool
    locale: str
    state: str
    footer: Msg | None = None


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
    max_subscriptions: int = 10  # groups one SMS number or Telegram chat may subscribe to
    idle_timeout: timedelta = timedelta(minutes=15)
    verified_max_age: timedelta = timedelta(hours=12)
    max_input_chars: int = 500
    invalid_before_help: int = 3
    # rows of a long list shown at once, so that a page fits two SMS segments: 134 characters in
    # Vietnamese (UCS-2), 306 in English (GSM-7)
    page_rows: Mapping[str, int] = field(default_factory=lambda: {"vi": 3, "en": 6})


class Turn:
    """What a state's functions see: the session, the ports, the time, and a way to say things."""

    __slots__ = (
        "asides",
        "brief",
        "headed",
        "helped",
        "messages",
        "now",
        "ports",
        "rich",
        "session",
        "settings",
        "shorter",
    )

    def __init__(self, session: Session, ports: Ports, now: datetime, settings: DialogSettings, *, rich: bool = False):
        self.session = session
        self.ports = ports
        self.now = now
        self.settings = settings
        self.messages: list[Msg] = []
        self.brief: Msg | None = None
        self.headed = False
        self.rich = rich  # the channel shows choices as buttons: whole lists, and choices under a brief line
        self.shorter: list[tuple[Msg, Msg]] = []  # (message, what says enough when the reply would not fit)
        self.asides: list[Msg] = []  # help and hints: left out beside a read-back that would not fit with them
        self.helped = False  # help was asked for ("?", HELP): beside a long read-back, the help alone answers

    def head(self, msg: Msg, short: Msg | None = None) -> None:
        """Say ``msg`` as the heading of the next state's choices, instead of its prompt (one line
        fewer: "Verified: Phở Bolsa LLC. Please choose:" then the contacts menu). ``short`` replaces
        it where the reply would not fit its channel's budget (a long name, a name in Vietnamese
        letters making an English SMS UCS-2)."""
        self.messages.append(msg)
        self.headed = True
        if short is not None:
            self.shorter.append((msg, short))

    def settle(self, brief: Msg, short: Msg | None = None) -> None:
        """Show ``brief`` instead of the next state's prompt and choices (they still work): after a
        finished task the customer needs one line on how to go on, not the whole menu again.
        ``short`` replaces it where the reply would not fit (as for :meth:`head`)."""
        self.brief = brief
        if short is not None:
            self.shorter.append((brief, short))

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

    def aside(self, msg: Msg) -> None:
        """Say help or a hint before the question: beside a read-back (a yes/no question) that would
        not fit with it, the help asked for is said alone (the read-back was the message before), and
        a hint is left out (the read-back's "Y/N" says how to answer)."""
        self.messages.append(msg)
        self.asides.append(msg)


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
        help: what HELP or ? shows here (a catalog id), instead of the general help.
        cancel: where cancelling goes (None: the main menu).
        paged: a list that can be long (service accounts, contacts): shown a page at a time, with
            MORE for the next; numbers of every page are taken on any page.
        paged_prompt: a shorter prompt for a list that takes more than one page (the example of
            how to answer is left to ``?``, so that a page holds more rows).
        yes_no: the question is a yes/no one (Telegram shows Yes/No buttons).
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
    hint: str = N_("Sorry, please type one of these numbers:")
    help: str | None = None
    cancel: str | None = None
    paged: bool = False
    paged_prompt: str | None = None
    yes_no: bool = False


@dataclass(frozen=True, slots=True)
class Shortcut:
    """A word that opens a dialog from any state, even as a first message ("STATUS", "JOIN A012").

    Attributes:
        name: how the diagram names it.
        words: folded keywords, each with the language it is in (a first message takes it).
        act: gets what follows the keyword (folded, maybe empty) and returns the state to enter.
        goes_to: every state ``act`` may return.
    """

    name: str
    words: Mapping[str, str]
    act: Action
    goes_to: tuple[str, ...]


class GraphError(ValueError):
    """The dialog table is not a sound graph."""


# Global commands, as folded words after tidy(): (always, not in free text). Short language names are
# ambiguous where a name is typed (a person may be called "Vi"), so there only the long forms count.
_LANG_WORDS = {
    "vi": ({"TIENG VIET", "VIETNAMESE", "VIET NGU"}, {"VI", "VN", "VIET"}),
    "en": ({"ENGLISH", "TIENG ANH"}, {"EN", "ENG"}),
}
_MENU_WORDS = (
    {"MENU", "MENU CHINH", "TRANG CHINH", "MAIN MENU", "VE MENU", "VE MENU CHINH", "TRO VE MENU", "VE TRANG CHINH"},
    set[str](),
)
_BACK_WORDS = ({"0", "BACK", "QUAY LAI", "TRO LAI", "GO BACK", "TRO VE", "QUAY VE", "LUI LAI"}, {"LUI"})
_HELP_WORDS = ({"?", "??", "HELP", "INFO", "GIUP", "TRO GIUP", "GIUP DO", "HUONG DAN", "GIUP VOI"}, set[str]())
_ABANDON_WORDS = (
    {"X", "EXIT", "HUY BO", "HUY THAO TAC", "THOAT", "ABORT", "HUY", "THOI", "THOI KHONG", "KHONG LAM NUA", "STOP IT"},
    {"CANCEL", "QUIT"},
)
# Greetings are answered with a greeting and the question again, never counted as mistakes. In free
# text only the unmistakable ones count ("Chao" may be a name; "alo" is how a call is answered).
_GREETINGS = {
    "vi": ({"XIN CHAO", "CHAO BAN", "CHAO ANH", "CHAO CHI", "CHAO EM", "XIN CHAO BAN", "ALO", "ALLO"}, {"CHAO"}),
    "en": ({"HELLO", "HELLO THERE", "GOOD MORNING", "GOOD AFTERNOON", "GOOD EVENING"}, {"HI", "HEY", "HI THERE"}),
}
_HELLO = N_("Hello!")
# the first answer to a greeting; in English it offers Vietnamese without diacritics (GSM-7, half the
# price of an SMS in UCS-2), in Vietnamese it offers English
_WELCOME = N_("Hello! {utility} rotating outage alerts (Tieng Viet: VI):")
_MORE_WORDS = {"MORE", "NEXT", "M", "+", "TIEP", "XEM TIEP", "XEM THEM", "THEM", "TRANG SAU", "TIEP THEO", "CON NUA"}
_PREVIOUS_WORDS = {"PREVIOUS", "PREV", "P", "TRUOC", "TRANG TRUOC"}

_HELP = N_("Type the number of your choice. 0: back. X: never mind. MENU: main menu. Tieng Viet: VI. Help: {support}")
_MORE = N_("MORE: see more ({page}/{pages})")
_LAST_PAGE = N_("MORE: back to the first page ({page}/{pages})")
# beside a welcome or help, where the list would be whole beside its own question: MORE shows it all
_MORE_ALL = N_("MORE: see all")
_YES_NO_HELP = N_("Y: yes. N: no. X: never mind. Help: {support}")  # "?" at a read-back without help of its own
_NEED_HELP = N_("Need help? Call Customer Support at {support}, or type ? to see how to answer.")
_SWITCHED = {"vi": N_("Switched to Vietnamese."), "en": N_("Switched to English.")}
# ASCII digits only: the text is folded first (digits of every script are ASCII digits by then), and a
# sign that only looks like a digit ("²", "①") must not reach int()
_NUMBER = re.compile(r"[0-9]{1,4}")
_RANGE = re.compile(r"([0-9]{1,4})-([0-9]{1,4})")
_DIGITS = re.compile(r"[*#]?([0-9]{3,6})")
_AROUND_DASH = re.compile(r"\s*-\s*")
_RANGE_WORDS = re.compile(r"\s+(?:DEN|TOI|TO|THROUGH|THRU)\s+")
_FROM_WORD = re.compile(r"^(?:SO THU TU|SO|NUMBER|NO\.|#)?\s*(?:TU|FROM)?\s+")  # "số 1", "từ 1", "số từ 1"
_PUNCTUATION = re.compile(r"[,.;:()*]")
_PLUS = re.compile(r"(?<=[0-9])\s*\+\s*(?=[0-9])")
_PRINTED_NUMBER = re.compile(r"[0-9]+(?:-[0-9]+){2,}")  # a number as printed on a bill: 3-001-1001
_ALL_WORDS = {
    "ALL",
    "TAT CA",
    "HET",
    "TAT",
    "TOAN BO",
    "TAT CA CAC TAI KHOAN",
    "TAT CA TAI KHOAN",
    "CA",
    "MOI TAI KHOAN",
    "ALL ACCOUNTS",
    "ALL OF THEM",
    "EVERYTHING",
    "TAT CA LUON",
    "HET LUON",
}
_COUNTED_ALL = {"CA HAI": 2, "BOTH": 2, "CA BA": 3, "CA 2": 2, "CA 3": 3}  # "both" means all only when there are two
YES_WORDS = frozenset(
    {"Y", "C", "CO", "YES", "DONG Y", "OK", "OKAY", "OKE", "VANG", "DA", "CO LUU", "LUU", "DUOC", "DUNG ROI", "U"}
    | {"DUOC ROI", "\N{THUMBS UP SIGN}", "CHINH XAC"}
    | {"YEP", "YEAH", "SURE", "CO CHU", "DUNG VAY", "DUNG", "LUU DI", "DONG Y LUU", "U LUU"}
    | {"DC", "RIGHT", "CORRECT", "YUP", "YES PLEASE", "DUOC A"}
)
NO_WORDS = frozenset(
    {"N", "K", "KHONG", "NO", "KO", "KHONG LUU", "THOI", "KHONG CAN", "NOPE", "CHUA", "HONG", "KHONG DONG Y"}
    | {"KHONG DUOC", "SAI", "SAI ROI", "NO THANKS", "NAH", "KO DC", "KHONG DC", "HONG CO"}
)


def _is(words: tuple[set[str], set[str]], folded: str, free_text: bool) -> bool:
    long, short = words
    return folded in long or (not free_text and folded in short)


Option = tuple[int, str, str]  # (number shown, key, digits that may be typed instead)


def parse_selection(folded: str, options: Sequence[Option], multi: bool) -> list[str] | None:
    """Parse "2", "1,3", "1-3", "1 đến 3", "1 và 3", "*1001", "ALL" into the keys of ``options``.

    ``folded`` is the answer after :func:`~dialogs.text.fold` and :func:`~dialogs.text.tidy`, so
    "１，３" or "٣-١" arrive as "1,3" and "3-1". Numbers are those shown (a list keeps its numbers when
    rows are left out); the digits shown on a row ("*1001" or "1001") pick it too. Returns None when
    the answer names no option, a number not offered, digits of no row or of several, something that
    is not ASCII digits, or several options where one is expected. Keys come in the options' order.
    """
    if not options:
        return None
    if multi and (folded in _ALL_WORDS or _COUNTED_ALL.get(folded) == len(options)):
        return [key for _, key, _ in options]
    by_number = {number: key for number, key, _ in options}
    picked: set[str] = set()
    text = _RANGE_WORDS.sub("-", _AROUND_DASH.sub("-", _FROM_WORD.sub("", folded)))
    text = _PLUS.sub(",", text)  # "1 + 3"; a lone "+1" stays what it is: not a list
    for part in re.split(r"[,;&\s]+|\bVA\b|\bAND\b|\bVOI\b", text):
        part = part.rstrip(".)")  # "1." and "1)" as lists are written
        if not part:
            continue
        rng = _RANGE.fullmatch(part)
        if rng:
            lo, hi = sorted((int(rng.group(1)), int(rng.group(2))))
            if hi - lo > 1000:
                return None
            keys = [by_number.get(n) for n in range(lo, hi + 1)]
            if any(k is None for k in keys):
                return None
            picked.update(k for k in keys if k is not None)
            continue
        if _NUMBER.fullmatch(part) and int(part) in by_number and not part.startswith("0"):
            picked.add(by_number[int(part)])
            continue
        if _PRINTED_NUMBER.fullmatch(part):  # the service account number as the bill prints it
            part = part.replace("-", "")[-4:]
        digits = _DIGITS.fullmatch(part)
        if digits is None or (part[0] not in "*#" and len(part) < 4):
            return None
        rows = [key for _, key, shown in options if shown and shown.endswith(digits.group(1))]
        if len(rows) != 1:
            return None
        picked.add(rows[0])
    if not picked or (not multi and len(picked) != 1):
        return None
    return [key for _, key, _ in options if key in picked]


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
        labels: Callable[[Msg | Literal], Iterable[str]] | None = None,
        fits: Callable[[Reply], bool] | None = None,
        shortcuts: Sequence[Shortcut] = (),
    ) -> None:
        """``shortcuts`` are keywords that work in every state (STATUS, JOIN A012).

        ``labels`` renders a choice's label in every language, so that typing a label picks it
        ("người liên lạc" at the main menu); without it only numbers and aliases pick. ``fits`` says
        whether a reply fits the channel's budget (two SMS segments): a long list is cut into pages
        that each fit; without it a page has ``settings.page_rows`` rows."""
        self.states: dict[str, State] = {}
        for state in states:
            if state.name in self.states:
                raise GraphError(f"state {state.name!r} is defined twice")
            self.states[state.name] = state
        self.start, self.menu, self.verify = start, menu, verify
        self.settings = settings
        self.labels = labels
        self.fits = fits
        # longest keywords first: "BO THEO DOI" is not "THEO DOI"
        self.shortcuts = tuple(shortcuts)
        self._keywords = sorted(
            ((word, shortcut) for shortcut in self.shortcuts for word in shortcut.words), key=lambda p: -len(p[0])
        )
        self._check()

    # -- the graph ---------------------------------------------------------------------------------

    def edges(self) -> list[tuple[str, str, str]]:
        """Every declared transition as (from, to, kind) with kind "next" or "back"."""
        out: list[tuple[str, str, str]] = []
        for state in self.states.values():
            out.extend((state.name, target, "next") for target in state.goes_to)
            out.append((state.name, self._back_target(state), "back"))
        for shortcut in self.shortcuts:  # a shortcut works anywhere: drawn from the main menu
            out.extend((self.menu, target, "next") for target in shortcut.goes_to)
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
            ids.update(choice.label.id for choice in state.choices if isinstance(choice.label, Msg))
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
        note = "MENU, X, 0, HELP, VI or EN work in every state"
        if self.shortcuts:
            note += "; so do " + ", ".join(s.name for s in self.shortcuts)
        lines.append(f"    note right of {_mm(self.menu)} : {note}")
        return "\n".join(dict.fromkeys(lines)) + "\n"

    def asks_yes_no(self, name: str) -> bool:
        """Whether the state called ``name`` asks a yes/no question."""
        state = self.states.get(name)
        return state is not None and state.yes_no

    def _back_target(self, state: State) -> str:
        if state.back is not None:
            return state.back
        return self.menu

    # -- a turn ------------------------------------------------------------------------------------

    def step(
        self,
        session: Session,
        text: str,
        ports: Ports,
        now: datetime,
        *,
        revoked: bool = False,
        locale_chosen: bool = False,
        rich: bool = False,
    ) -> Reply:
        """Advance ``session`` by one customer message and return what to answer.

        ``revoked`` says the verification no longer holds (the access code changed, the account was
        locked, or support revoked it): the session is signed out before anything else happens.
        ``locale_chosen`` says the session's language was chosen outside the dialog (``chat --lang``):
        a first contact then skips the language question. ``rich`` says the channel shows choices
        as buttons it pages itself (Telegram): a long list comes whole, and a brief line after a
        finished task keeps the choices under it (buttons cost nothing, unlike SMS segments).
        """
        turn = Turn(session, ports, now, self.settings, rich=rich)
        reply = self._step(turn, text, locale_chosen, revoked)
        if turn.shorter and self.fits is not None and not rich and not self.fits(reply):
            short = {id(full): brief for full, brief in turn.shorter}
            reply = replace(reply, messages=tuple(short.get(id(msg), msg) for msg in reply.messages))
        return reply

    def _step(self, turn: Turn, text: str, locale_chosen: bool, revoked: bool) -> Reply:
        session, now = turn.session, turn.now
        last_seen, session.last_seen_at = session.last_seen_at, now
        folded = fold(text[: self.settings.max_input_chars * 4])
        words = tidy(folded)

        if not session.state or session.state not in self.states:
            return self._first(turn, text, words, locale_chosen)

        if last_seen is not None and now - last_seen > self.settings.idle_timeout:
            session.invalid_count = 0
            if self._in_progress(session):  # a verification or a change was lost: say so
                session.drop_verification()
                turn.say(
                    Msg.count(
                        NP_(
                            "Nothing was heard from you for {n} minute, so the unfinished step was not saved.",
                            "Nothing was heard from you for {n} minutes, so the unfinished step was not saved.",
                        ),
                        int(self.settings.idle_timeout.total_seconds() // 60),
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
        own = self._own_choice(turn, state, words)  # a state's own choices win over global words
        if own is None:
            handled = self._global(turn, state, words)
            if handled is not None:
                return handled
        if len(text) > self.settings.max_input_chars:
            return self._invalid(turn, state, Msg.of(N_("That message is too long.")))
        cleaned = clean(text, self.settings.max_input_chars)
        if cleaned is None:
            return self._invalid(turn, state, Msg.of(state.hint))
        value = own if own is not None else self._parse(turn, state, cleaned, words)
        if isinstance(value, Invalid):
            if not value.mistake:
                turn.aside(value.hint)
                return self._enter(turn, state.name)
            return self._invalid(turn, state, value.hint)
        session.invalid_count = 0
        target = state.act(turn, value)
        if target not in state.goes_to:
            raise GraphError(f"{state.name!r} went to undeclared state {target!r}")
        return self._enter(turn, target)

    def _first(self, turn: Turn, text: str, words: str, locale_chosen: bool) -> Reply:
        """A first message: the language question, unless the message tells the language."""
        session = turn.session
        lang = self._language_word(words, free_text=False)
        if lang:
            session.locale = lang
            return self._enter(turn, self.menu)
        found = self._shortcut(words)
        if found is not None:
            shortcut, rest, locale = found
            if not locale_chosen:
                session.locale = locale
            return self._run_shortcut(turn, shortcut, rest)
        greeting = self._greeting(words, free_text=False)
        if locale_chosen:
            return self._enter(turn, self.menu)
        if greeting is None and any(ch.isalpha() and fold(ch) != ch.upper() for ch in text[:500]):
            greeting = "vi"  # Vietnamese letters: whatever it says, it is written in Vietnamese
        if greeting is None:
            session.slots["_first"] = text[:64]  # the start may make sense of it once the language is known
            return self._enter(turn, self.start)
        return self._welcome(turn, greeting)

    def _welcome(self, turn: Turn, locale: str) -> Reply:
        """The menu in ``locale``, headed by a welcome that names the utility (and the other language)."""
        turn.session.locale = locale
        turn.head(Msg.of(_WELCOME, utility=self.settings.utility_name))
        return self._enter(turn, self.menu)

    def _in_progress(self, session: Session) -> bool:
        """Whether expiring ``session`` loses something: a verification, a change, an answer half given."""
        return session.verified or session.state.startswith("verify.") or _has_answers(session)

    def _language_word(self, words: str, free_text: bool) -> str | None:
        for locale, table in _LANG_WORDS.items():
            if _is(table, words, free_text):
                return locale
        return None

    def _greeting(self, words: str, free_text: bool) -> str | None:
        for locale, table in _GREETINGS.items():
            if _is(table, words, free_text):
                return locale
        return None

    def _global(self, turn: Turn, state: State, words: str) -> Reply | None:
        session = turn.session
        lang = self._language_word(words, state.free_text)
        if lang is not None:
            session.locale = lang
            if state.name == self.start:  # naming a language is the answer here
                return self._enter(turn, self.menu)
            turn.say(Msg.of(_SWITCHED[lang]))
            return self._enter(turn, state.name)
        greeting = self._greeting(words, state.free_text)
        if greeting is not None:
            if state.name == self.start:  # nobody's language is known yet: the greeting's it is
                return self._welcome(turn, greeting)
            turn.say(Msg.of(_HELLO))
            return self._enter(turn, state.name)
        if _is(_HELP_WORDS, words, state.free_text):
            self._help(turn, state)
            return self._enter(turn, state.name)
        menu = _is(_MENU_WORDS, words, state.free_text)
        if menu or _is(_ABANDON_WORDS, words, state.free_text):
            if _has_answers(session):
                turn.say(Msg.of(N_("Cancelled. Nothing was changed.")))
            session.slots.clear()
            session.invalid_count = 0
            return self._enter(turn, self.menu if menu or state.cancel is None else state.cancel)
        if _is(_BACK_WORDS, words, state.free_text):
            session.invalid_count = 0
            return self._enter(turn, self._back_target(state))
        if state.paged and (words in _MORE_WORDS or words in _PREVIOUS_WORDS):
            session.slots["_page"] = int(session.slots.get("_page", 0)) + (1 if words in _MORE_WORDS else -1)
            return self._enter(turn, state.name)
        found = self._shortcut(words)
        if found is not None:
            before = (session.state, _answers(session))
            cancelled = Msg.of(N_("Cancelled. Nothing was changed."))
            if before[1]:
                turn.say(cancelled)
            reply = self._run_shortcut(turn, found[0], found[1])
            if before[1] and (session.state, _answers(session)) == before:
                # "JOIN A012" at the question "Get alerts for group A012?" asks the same again: nothing
                # was cancelled, the question stands
                reply = replace(reply, messages=tuple(msg for msg in reply.messages if msg is not cancelled))
            return reply
        return None

    def _shortcut(self, words: str) -> tuple[Shortcut, str, str] | None:
        """The shortcut ``words`` start with, what follows its keyword, and the keyword's language."""
        for word, shortcut in self._keywords:
            if words == word or words.startswith(word + " "):
                return shortcut, words[len(word) :].strip(), shortcut.words[word]
        return None

    def _run_shortcut(self, turn: Turn, shortcut: Shortcut, rest: str) -> Reply:
        """Leave whatever was under way (nothing of it was saved) and run ``shortcut``."""
        turn.session.slots.clear()
        turn.session.invalid_count = 0
        target = shortcut.act(turn, rest)
        if target not in shortcut.goes_to:
            raise GraphError(f"shortcut {shortcut.name!r} went to undeclared state {target!r}")
        return self._enter(turn, target)

    def _help(self, turn: Turn, state: State) -> None:
        params = {"support": self.settings.support_phone, "utility": self.settings.utility_name}
        turn.helped = True
        if state.help is not None:
            turn.aside(Msg.of(state.help, **params))
            return
        turn.aside(Msg.of(_YES_NO_HELP if state.yes_no else _HELP, **params))

    def _own_choice(self, turn: Turn, state: State, words: str) -> str | None:
        """The key of a fixed choice that ``words`` names by an alias or by its label, if any."""
        if state.free_text or not state.choices:
            return None
        for choice in state.choices:
            if words in choice.aliases:
                return choice.key
        return self._by_label(state.choices, words)

    def _by_label(self, choices: Sequence[Choice], words: str) -> str | None:
        """The one choice whose label, in either language, is ``words`` or holds it as whole words."""
        if self.labels is None or len(words) < 3 or not any(ch.isalpha() for ch in words):
            return None
        partial: list[str] = []
        for choice in choices:
            labels = [" ".join(_PUNCTUATION.sub(" ", tidy(fold(label))).split()) for label in self.labels(choice.label)]
            if words in labels:
                return choice.key
            if any(f" {words} " in f" {label} " for label in labels):
                partial.append(choice.key)
        return partial[0] if len(partial) == 1 else None

    def _parse(self, turn: Turn, state: State, cleaned: str, words: str) -> Any:
        if state.parse is not None and not state.choices and state.options is None:
            return state.parse(turn, cleaned)
        options = _stored_options(turn.slots.get("_keys", ()))
        picked = parse_selection(words, options, state.multi)
        if picked is None and state.options is not None:
            by_label = self._by_label(tuple(state.options(turn)), words)
            picked = [by_label] if by_label is not None else None
        if picked is None:
            if state.parse is not None:
                return state.parse(turn, cleaned)
            return Invalid(Msg.of(state.hint))
        return picked if state.multi else picked[0]

    def _invalid(self, turn: Turn, state: State, hint: Msg) -> Reply:
        session = turn.session
        session.invalid_count += 1
        if session.invalid_count >= self.settings.invalid_before_help:  # the third time: a person helps
            session.invalid_count = 0
            turn.settle(Msg.of(_NEED_HELP, support=self.settings.support_phone))  # one short SMS
            return self._enter(turn, state.name)
        turn.aside(hint)
        return self._enter(turn, state.name)

    def _whole(self, prompt: Msg, rows: tuple[Choice, ...], locale: str, state: State) -> bool:
        """Whether ``rows`` fit on one page beside ``prompt`` (what ``len(self._pages(...)) == 1`` says,
        without cutting the pages)."""
        if self.fits is None:
            return len(rows) <= self.settings.page_rows.get(locale, 3)
        return self.fits(Reply((prompt,), rows, state.multi, locale, state.name))

    def _pages(
        self, prompt: Msg | tuple[Msg, ...], rows: tuple[Choice, ...], locale: str, state: State
    ) -> list[tuple[Choice, ...]]:
        """``rows`` cut into pages, each as many rows as fit beside the prompt (or the messages said
        instead of it) and the footer (the same cut every time, so a page shows the same rows
        whenever it is shown)."""
        head = _heads(prompt)
        if self.fits is None:
            size = self.settings.page_rows.get(locale, 3)
            return [rows[i : i + size] for i in range(0, len(rows), size)] or [()]
        most = len(rows)  # there are never more pages than rows: the widest page numbers a footer shows
        footers = [Msg.of(footer, page=most, pages=most) for footer in (_MORE, _LAST_PAGE)]
        whole = Reply(head, rows, state.multi, locale, state.name)
        if self.fits(whole):
            return [rows]
        pages: list[tuple[Choice, ...]] = []
        start = 0
        while start < len(rows):
            end = start + 1
            while end < len(rows) and all(
                self.fits(Reply(head, rows[start : end + 1], state.multi, locale, state.name, footer))
                for footer in footers
            ):
                end += 1
            pages.append(rows[start:end])
            start = end
        return pages

    def _enter(self, turn: Turn, name: str) -> Reply:
        state = self.states[name]
        session = turn.session
        if state.verified and not session.verified:
            session.slots.clear()
            turn.say(Msg.of(N_("Please verify your account first.")))
            state = self.states[self.verify]
        if session.state != state.name:
            session.slots.pop("_page", None)
        if state.name != self.start:
            session.slots.pop("_first", None)  # a first message is kept only while the language is asked
        session.state = state.name
        params = dict(state.params(turn)) if state.params is not None else {}
        choices = tuple(state.options(turn)) if state.options is not None else state.choices
        numbered = tuple(
            choice if choice.number is not None else replace(choice, number=i) for i, choice in enumerate(choices, 1)
        )
        if numbered:
            session.slots["_keys"] = [[c.number, c.key, c.digits] for c in numbered]
        else:
            session.slots.pop("_keys", None)
        if turn.brief is not None:
            turn.messages.append(turn.brief)
            return Reply(tuple(turn.messages), numbered if turn.rich else (), state.multi, session.locale, state.name)
        footer = None
        every = numbered
        prompt = Msg.of(state.prompt, **params)
        if state.paged_prompt is not None and not turn.rich and not self._whole(prompt, every, session.locale, state):
            prompt = Msg.of(state.paged_prompt, **params)
        if state.paged and not turn.rich:  # a heading stands for the prompt: the page fits beside it
            head = tuple(turn.messages) if turn.headed else prompt
            numbered, footer = self._page(head, every, turn, state, prompt)
        said = tuple(turn.messages)
        if turn.headed and numbered:
            return Reply(said, numbered, state.multi, session.locale, state.name, footer)
        reply = Reply((*said, prompt), numbered, state.multi, session.locale, state.name, footer)
        if state.yes_no and turn.asides and self.fits is not None and not turn.rich and not self.fits(reply):
            if turn.helped:  # "?" asked how to answer the read-back just shown: the help alone says it
                helped = Reply(said, (), state.multi, session.locale, state.name)
                if self.fits(helped):
                    return helped
            # a hint beside a long read-back: the read-back alone (never cut), which ends "Y/N"
            others = tuple(msg for msg in said if not any(msg is aside for aside in turn.asides))
            return Reply((*others, prompt), numbered, state.multi, session.locale, state.name, footer)
        if said and not state.yes_no and self.fits is not None and not turn.rich and not self.fits(reply):
            # a hint or help came first and says what to type here: the question is left out rather
            # than the reply growing past its budget (it is the same question, asked just before);
            # never a read-back, which is what the yes or no answers
            bare = Reply(said, numbered, state.multi, session.locale, state.name, footer)
            if self.fits(bare) or not numbered:
                return bare
            if state.paged and not turn.rich:  # a page cut to fit beside the help (rows keep their numbers)
                kept = session.slots.get("_page")
                rows, footer = self._page(said, every, turn, state, prompt)
                paged = Reply(said, rows, state.multi, session.locale, state.name, footer)
                if self.fits(paged):
                    return paged
                if kept is None:
                    session.slots.pop("_page", None)
                else:
                    session.slots["_page"] = kept
            # not even a row beside a long help: the help alone (the list, shown just before, still works)
            return Reply(said, (), state.multi, session.locale, state.name)
        return reply

    def _page(
        self, head: Msg | tuple[Msg, ...], rows: tuple[Choice, ...], turn: Turn, state: State, prompt: Msg
    ) -> tuple[tuple[Choice, ...], Msg | None]:
        """The page of ``rows`` the session is at, cut to fit beside ``head``, and its footer.

        Beside a welcome or help (``head`` is not the ``prompt``) a list that would be whole beside its
        own question shows the rows that fit and "MORE: see all": the next page is the whole list, not
        the second of several pages that exist only beside this heading."""
        locale = turn.session.locale
        pages = self._pages(head, rows, locale, state)
        if len(pages) == 1:
            turn.session.slots.pop("_page", None)  # MORE typed at a whole list leaves no page behind
            return pages[0], None
        if head is not prompt and self.fits is not None and self._whole(prompt, rows, locale, state):
            footer = Msg.of(_MORE_ALL)
            end = 0
            while end < len(rows) and self.fits(
                Reply(_heads(head), rows[: end + 1], state.multi, locale, state.name, footer)
            ):
                end += 1
            if end:
                turn.session.slots["_page"] = 0
                return rows[:end], footer
        page = int(turn.session.slots.get("_page") or 0) % len(pages)
        turn.session.slots["_page"] = page
        more = _LAST_PAGE if page + 1 == len(pages) else _MORE
        return pages[page], Msg.of(more, page=page + 1, pages=len(pages))


def _heads(head: Msg | tuple[Msg, ...]) -> tuple[Msg, ...]:
    return head if isinstance(head, tuple) else (head,)


def _answers(session: Session) -> dict[str, Any]:
    """The answers an operation under way holds (slots without "_")."""
    return {key: value for key, value in session.slots.items() if not key.startswith("_")}


def _has_answers(session: Session) -> bool:
    """Whether the session holds answers to an operation under way."""
    return bool(_answers(session))


def _stored_options(stored: Sequence[Any]) -> list[Option]:
    """The options a session remembers as shown: ``[number, key, digits]`` rows (a session saved by
    an older version holds bare keys, numbered by their place)."""
    return [
        (int(row[0]), str(row[1]), str(row[2])) if isinstance(row, list | tuple) else (i, str(row), "")
        for i, row in enumerate(stored, 1)
    ]


def _mm(name: str) -> str:
    return name.replace(".", "_")
