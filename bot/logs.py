"""Logging for the whole process: personal data masked in every line, noisy events summarised.

:func:`configure_logging` sends every logger of the process (ours, uvicorn's, SQLAlchemy's, the
Twilio client's) to one handler on standard error with :class:`PersonalDataFilter`, which masks
what it can recognise in the message, in exception text and tracebacks, and in stack traces:

- phone numbers, in E.164 (``+16265550100``, also URL-encoded) and in national forms
  (``(626) 555-0100``, ``626.555.0100``, ``0912 345 678``);
- Customer Account Numbers and service-account numbers: runs of 6 or more digits, with or
  without dashes (``700000001``, ``3-001-1001``);
- email addresses.

Numbers keep their last 4 digits (``+*******0100``), as :func:`bot.security.mask` does, so that
operators can still tell lines apart and correlate them. Timestamps (``2026-11-27 22:00:00.123456``,
``datetime.datetime(...)``), decimal durations (``[generated in 0.00012s]``), ports, IP addresses,
HTTP status lines and uvicorn's ``process [pid]`` are left as they are.

Names and street addresses cannot be recognised by a pattern. They reach logs in database errors:
the bound parameters SQLAlchemy prints (``[parameters: ...]``, and its statement log at DEBUG),
where every string value is hidden (``'***'``) except values made only of digits and date
punctuation (masked like the rest of the line), and PostgreSQL's ``DETAIL: Failing row contains
(...)``, hidden whole.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.asgi")
# Libraries whose INFO lines are chatter (every SQL statement, every header of every Twilio call,
# alembic's plugins in every worker): shown only when the level is DEBUG.
CHATTY = ("sqlalchemy", "twilio", "httpx", "httpcore", "alembic.runtime.plugins")

_SEP = r"[\s.\u2010-\u2015-]"  # between groups of a phone number: spaces, dots, hyphens and dashes
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SENSITIVE = re.compile(
    rf"""
    (?=[\d+(%dp])                     # every match starts so: the rest of the text is passed over quickly
    (?:
    (?P<phone>
        (?<![\d+]) (?:\+|%2[Bb]) \d{{8,15}} (?!\w)                         # E.164, also URL-encoded
      | (?<![\w.+-]) \+\d{{1,3}} (?:{_SEP}?\(?\d{{1,4}}\)?){{2,5}} (?!\w)      # +1 (626) 555-0100, +84 912 345 678
      | (?<![\w.+-]) (?:1{_SEP}?)? \(?\d{{3}}\)? {_SEP}? \d{{3}} {_SEP} \d{{4}} (?!\w)   # (626) 555-0100
      | (?<![\w.+-]) 0\d{{1,3}} (?:{_SEP}\d{{2,4}}){{2,3}} (?!\w)              # 0912 345 678, 028 3822 1234
    )
  | (?P<keep>
        datetime\.\w+\([^)]*\)                                              # datetime.datetime(2026, 11, ...)
      | (?<![\w.-]) \d{{4}}-\d{{2}}-\d{{2}}                                   # 2026-11-27T22:00:00.123456+00:00
        (?:[T\ ]\d{{2}}:\d{{2}} (?::\d{{2}})? (?:[.,]\d+)?)? (?:Z|[+-]\d{{2}}:?\d{{2}})? (?!\d)
      | (?<![\w.]) \d{{1,2}}:\d{{2}} (?::\d{{2}})? (?:[.,]\d+)? (?!\d)         # 22:00:00.123456, 0:00:01,5
      | (?<![\w.]) \d+\.\d+                                                 # 0.000123s, 127.0.0.1
      | \bprocess\ \[\d+\]                                                  # uvicorn: process [4194301]
    )
  | (?P<number> (?<![\w.+-]) \d(?:-?\d){{5,}} (?!\w) )                        # 700000001, 3-001-1001
    )
""",
    re.VERBOSE,
)
_DIGIT = re.compile(r"\d")
_PHONE_DIGITS = range(8, 16)
_QUOTE = re.compile(r"""b?(['"])""")
_STRING_REST = {"'": re.compile(r"(?:[^'\\\n]|\\.)*'"), '"': re.compile(r'(?:[^"\\\n]|\\.)*"')}
_KEY = re.compile(r"\s*:")
_NUMERIC_TEXT = re.compile(r"[\d\s:.,TZ+-]*")
_PARAMETERS_LINE = re.compile(r"^\s*\[parameters: .*$", re.MULTILINE)
_FAILING_ROW = re.compile(r"^(DETAIL:\s+Failing row contains )\(.*\)", re.MULTILINE)  # every column, names too
_PARAMETER_TEMPLATES = ("[%s] %r", "Row %r")  # SQLAlchemy's statement log: parameters, result rows


def _keep_last_digits(text: str, keep: int = 4) -> str:
    total = len(_DIGIT.findall(text))
    seen = 0

    def star(match: re.Match[str]) -> str:
        nonlocal seen
        seen += 1
        return match.group() if seen > total - keep else "*"

    return _DIGIT.sub(star, text)


def _masked(match: re.Match[str]) -> str:
    found = match.group()
    if match.lastgroup == "keep":
        return found
    if found.startswith("%2"):  # a URL-encoded "+": its 2 is not part of the number
        return found[:3] + _keep_last_digits(found[3:])
    if match.lastgroup == "phone" and len(_DIGIT.findall(found)) not in _PHONE_DIGITS:
        return found if len(_DIGIT.findall(found)) < 6 else _keep_last_digits(found)
    return _keep_last_digits(found)


def mask_text(text: str) -> str:
    """``text`` with phone numbers, account numbers and emails masked (numbers keep their last 4 digits).

    Idempotent: masking masked text changes nothing.
    """
    if "@" in text:
        text = _EMAIL.sub("***@***", text)
    return _SENSITIVE.sub(_masked, text)


def hide_parameter_strings(text: str) -> str:
    """The string values in a printed set of SQL parameters hidden (``'***'``); names and keys kept.

    One pass, whatever the text: a quote left open hides the rest of its line.
    """
    out: list[str] = []
    at = 0
    while (opening := _QUOTE.search(text, at)) is not None:
        out.append(text[at : opening.start()])
        start, quote = opening.start(), opening.group(1)
        rest = _STRING_REST[quote].match(text, opening.end())
        if rest is None:
            end = text.find("\n", opening.end())
            at = len(text) if end < 0 else end
            out.append(text[start : opening.end()] + "***")
            continue
        at = rest.end()
        content = text[opening.end() : at - 1]
        if _KEY.match(text, at):  # a dict key: a column or parameter name
            out.append(text[start:at])
        elif _NUMERIC_TEXT.fullmatch(content):
            out.append(text[start : opening.end()] + mask_text(content) + quote)
        else:
            out.append(text[start : opening.end()] + "***" + quote)
    out.append(text[at:])
    return "".join(out)


def _hide_rows(text: str) -> str:
    """SQLAlchemy's ``[parameters: ...]`` lines with their strings hidden, PostgreSQL's failing rows whole."""
    text = _PARAMETERS_LINE.sub(lambda m: hide_parameter_strings(m.group()), text)
    return _FAILING_ROW.sub(r"\1(hidden)", text)


class PersonalDataFilter(logging.Filter):
    """Masks personal data in a record's message, exception text and stack trace; never drops a record.

    The message is rendered once (``%`` arguments merged) and stored back without arguments; the
    exception is rendered to text and its ``exc_info`` cleared, so no later formatter or handler can
    print the original. Meant for a handler: a filter on a handler sees the records of every logger
    that propagates to it.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; always keep it."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not turn a log call into a crash
            message = f"{record.msg!s} (arguments: {record.args!r})"
        if record.name.startswith("sqlalchemy.engine") and str(record.msg).endswith(_PARAMETER_TEMPLATES):
            message = hide_parameter_strings(message)
        record.msg, record.args = mask_text(_hide_rows(message)), None  # an error's text may be the message
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(_hide_rows(record.exc_text))
        record.exc_info = None
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


class UTCFormatter(logging.Formatter):
    """Lines stamped with the time in UTC, ISO 8601 to the millisecond (``2026-11-27T14:30:00.123Z``)."""

    converter = staticmethod(time.gmtime)
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


class JsonFormatter(UTCFormatter):
    """One JSON object a line (``OUTAGEBOT_LOG_FORMAT=json``): time, level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False)


def logging_config(level: str, fmt: str = "text") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` for the process, also handed to uvicorn as its ``log_config``.

    One handler on standard error, with :class:`PersonalDataFilter`, on the root logger at ``level``;
    uvicorn's loggers lose their own handlers and level and propagate to it, except its access log,
    which stays off (a line for every request, with the caller's address). Loggers that already
    exist stay enabled.
    """
    name = level.upper()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}: use one of {', '.join(FORMATS)}")
    chatty = "DEBUG" if name == "DEBUG" else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"personal_data": {"()": f"{__name__}.PersonalDataFilter"}},
        "formatters": {
            "text": {"()": f"{__name__}.UTCFormatter", "format": FORMAT},
            "json": {"()": f"{__name__}.JsonFormatter"},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": fmt,
                "filters": ["personal_data"],
            }
        },
        "loggers": {
            **{logger: {"handlers": [], "propagate": True, "level": "NOTSET"} for logger in UVICORN},
            "uvicorn.access": {"handlers": [], "propagate": False},  # off: one line a request
            **{logger: {"level": chatty} for logger in CHATTY},
        },
        "root": {"level": name, "handlers": ["stderr"]},
    }


def configure_logging(level: str, fmt: str = "text") -> None:
    """Send every log line of the process, masked, to standard error at ``level`` (``WARNING``, ...).

    Uncaught exceptions (in the main thread and in other threads) are logged through it too, instead
    of being printed as they are. Call it where a process starts (the CLI, each web worker); calling
    it again replaces the handler rather than adding a second one.
    """
    logging.config.dictConfig(logging_config(level, fmt))
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("bot").critical("uncaught exception; the process stops", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "unknown"
    logging.getLogger("bot").error(
        "uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )


def _printable(path: str, limit: int = 100) -> str:
    shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in path[:limit])
    return shown + ("..." if len(path) > limit else "")


class RateLimitedLog:
    """One line for a burst of the same event: the first at once, then a count at most once an interval.

    For events an outsider can cause at will (forged webhook requests): one line each would let
    them flood the log. ``hit`` logs at once when no line was written in the last interval;
    otherwise it counts, and the next ``hit`` or :meth:`flush` after the interval writes one line
    with the count and the paths since the last line. Safe to call from several threads.
    """

    MAX_PATHS = 10

    def __init__(
        self,
        logger: logging.Logger,
        event: str = "rejected an unsigned or forged request",
        events: str = "rejected unsigned or forged requests",
        interval_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        level: int = logging.WARNING,
    ) -> None:
        self.logger, self.event, self.events, self.level = logger, event, events, level
        self.interval = interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last_line: float | None = None
        self._paths: Counter[str] = Counter()

    def hit(self, path: str) -> None:
        """Record one event at ``path`` (shown printable and cut to 100 characters)."""
        now = self._clock()
        with self._lock:
            key = _printable(path)
            if key not in self._paths and len(self._paths) >= self.MAX_PATHS:
                key = "other paths"
            self._paths[key] += 1
            line = self._take(now) if self._due(now) else None
        if line:
            self.logger.log(self.level, *line)

    def flush(self, force: bool = False) -> None:
        """Write the count held back, if the interval has passed (or at once with ``force``)."""
        now = self._clock()
        with self._lock:
            line = self._take(now) if self._paths and (force or self._due(now)) else None
        if line:
            self.logger.log(self.level, *line)

    def _due(self, now: float) -> bool:
        return self._last_line is None or now - self._last_line >= self.interval

    def _take(self, now: float) -> tuple[object, ...]:
        paths, self._paths = self._paths, Counter()
        since, self._last_line = self._last_line, now
        count = sum(paths.values())
        if count == 1:
            return ("%s to %s", self.event, next(iter(paths)))
        where = ", ".join(f"{path}: {n:,}" for path, n in paths.most_common())
        seconds = self.interval if since is None else now - since
        # counts with thousands separators: a run of 6 digits would be masked as an account number
        return ("%s: %s in the last %d seconds (%s)", self.events, f"{count:,}", round(seconds), where)
