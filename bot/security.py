"""Access codes: peppered scrypt hashes, constant-time checks, and the throttles around them.

The access code is the only secret a customer proves. It is stored as
``scrypt$<log2 N>$<r>$<p>$<salt b64>$<hash b64>`` over HMAC-SHA256(pepper, code): without the pepper,
kept outside the database, a stolen database alone cannot be attacked at all; with it, each guess
still costs a memory-hard scrypt. The format carries its parameters, so the cost can be raised later
and old hashes still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

_R, _P = 8, 1


@dataclass(frozen=True, slots=True)
class Cost:
    """scrypt's cost parameters, as stored in every hash."""

    n: int
    r: int = _R
    p: int = _P

    @classmethod
    def of(cls, stored: str) -> Cost | None:
        """The cost a stored hash was made with, or None if it is unreadable."""
        parts = stored.split("$")
        if len(parts) != 6 or parts[0] != "scrypt" or not all(x.isascii() and x.isdecimal() for x in parts[1:4]):
            return None
        log_n, r, p = (int(x) for x in parts[1:4])
        if not (1 <= log_n <= 24 and 1 <= r <= 64 and 1 <= p <= 16):
            return None
        return cls(1 << log_n, r, p)


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of checking a code against a stored hash.

    ``rehash`` is a new hash of the same code at today's cost, when it matched a hash made at an
    older one: the caller stores it, so raising ``OUTAGEBOT_SCRYPT_N`` reaches every account that
    verifies again.
    """

    matches: bool
    rehash: str | None = None


class CodeHasher:
    """Hashes and checks access codes with one pepper and one scrypt cost.

    ``unknown_cost`` is what checking an unknown account costs: it should be what most stored hashes
    cost (see :meth:`calibrate`), so that an unknown account number takes as long to refuse as a
    known one, whatever ``n`` is today.
    """

    def __init__(self, pepper: bytes, n: int = 2**13) -> None:
        if not pepper:
            raise ValueError("an empty pepper")
        self.pepper = pepper
        self.n = n
        self.cost = Cost(n)
        self.unknown_cost = self.cost

    def _derive(self, code: str, salt: bytes, cost: Cost) -> bytes:
        keyed = hmac.new(self.pepper, code.encode("utf-8"), hashlib.sha256).digest()
        return hashlib.scrypt(keyed, salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=256 * 1024 * 1024, dklen=32)

    def hash(self, code: str) -> str:
        """A new salted, peppered hash of ``code`` at today's cost."""
        salt = os.urandom(16)
        digest = self._derive(code, salt, self.cost)
        return "$".join(("scrypt", str(self.n.bit_length() - 1), str(_R), str(_P), _b64(salt), _b64(digest)))

    def calibrate(self, stored_samples: list[str]) -> Cost:
        """Take the most common cost among ``stored_samples`` as the cost of checking an unknown account."""
        costs = Counter(c for c in map(Cost.of, stored_samples) if c is not None)
        self.unknown_cost = costs.most_common(1)[0][0] if costs else self.cost
        return self.unknown_cost

    def check(self, code: str, stored: str | None) -> Check:
        """Whether ``code`` matches ``stored``, in constant time; with a re-hash when the cost changed.

        With no stored hash (unknown account) a dummy hash is computed anyway, at the cost of the
        stored ones, so that unknown accounts take as long to refuse as wrong codes.
        """
        if stored is None:
            self._derive(code, b"\0" * 16, self.unknown_cost)
            return Check(False)
        cost = Cost.of(stored)
        try:
            if cost is None:
                raise ValueError("unreadable hash")
            _scheme, _n, _r, _p, salt, digest = stored.split("$")
            expected = base64.b64decode(digest, validate=True)
            actual = self._derive(code, base64.b64decode(salt, validate=True), cost)
        except (ValueError, TypeError):
            log.error("unreadable access-code hash; refusing")
            return Check(False)
        matches = hmac.compare_digest(actual, expected)
        return Check(matches, self.hash(code) if matches and cost != self.cost else None)

    def verify(self, code: str, stored: str | None) -> bool:
        """Whether ``code`` matches ``stored`` (see :meth:`check`)."""
        return self.check(code, stored).matches


class NeedsCheck(Exception):
    """A turn reached a code check that was not computed ahead: compute it off the turn and run it again."""

    def __init__(self, code: str, stored: str | None) -> None:
        super().__init__("access-code check needed")
        self.code, self.stored = code, stored


class CodeChecker(Protocol):
    """What verification needs: the result of comparing a code with a stored hash."""

    def verify(self, code: str, stored: str | None) -> Check:
        """The check of ``code`` against ``stored``."""
        ...


class CodeChecks:
    """The code checks of one turn, computed before its transaction.

    A scrypt check costs tens of milliseconds. Inside a turn it would hold the conversation's row
    lock (and on SQLite the database's only write lock, stalling every other conversation) and, in
    the web server, the event loop. So a turn never hashes: when it needs a check it has not got,
    it raises :class:`NeedsCheck`, its transaction is rolled back, the caller computes the check off
    the loop (:meth:`add`) and runs the turn again, which then finds the answer here, for exactly
    that code and that stored hash (if the hash changed in between, it asks again).
    """

    def __init__(self, hasher: CodeHasher) -> None:
        self.hasher = hasher
        self._known: dict[tuple[str, str | None], Check] = {}

    def add(self, code: str, stored: str | None) -> None:
        """Compute a check now and remember it (slow: call it off the event loop)."""
        self._known[(code, stored)] = self.hasher.check(code, stored)

    def verify(self, code: str, stored: str | None) -> Check:
        """The remembered check; raises :class:`NeedsCheck` when there is none."""
        known = self._known.get((code, stored))
        if known is None:
            raise NeedsCheck(code, stored)
        return known


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class FailureAlarm:
    """The global level of throttling: logs an alarm when verification failures spike.

    Per-account lockout and per-address throttling live in the database (they must hold across
    processes); this one watches the whole process and only alarms, it never refuses anyone.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()
        self._alarmed_at = -1e18

    def failure(self) -> bool:
        """Record one failure; returns True (and logs) when the last minute's count crosses the limit."""
        now = self._clock()
        with self._lock:
            self._times.append(now)
            while self._times and self._times[0] < now - 60:
                self._times.popleft()
            if len(self._times) >= self.per_minute and now - self._alarmed_at > 60:
                self._alarmed_at = now
                log.warning("ALARM: %d failed verifications in the last minute", len(self._times))
                return True
        return False


def mask(value: str | None, keep: int = 4) -> str:
    """Mask personal data for logs: ``+16265550100`` -> ``*******0100``."""
    if not value:
        return ""
    return "*" * max(len(value) - keep, 0) + value[-keep:]
