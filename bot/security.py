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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

_R, _P = 8, 1


@dataclass(frozen=True, slots=True)
class CodeHasher:
    """Hashes and checks access codes with one pepper and one scrypt cost."""

    pepper: bytes
    n: int = 2**13

    def _derive(self, code: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        keyed = hmac.new(self.pepper, code.encode("utf-8"), hashlib.sha256).digest()
        return hashlib.scrypt(keyed, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)

    def hash(self, code: str) -> str:
        """A new salted, peppered hash of ``code``."""
        salt = os.urandom(16)
        digest = self._derive(code, salt, self.n, _R, _P)
        return "$".join(("scrypt", str(self.n.bit_length() - 1), str(_R), str(_P),
                         _b64(salt), _b64(digest)))

    def verify(self, code: str, stored: str | None) -> bool:
        """Whether ``code`` matches ``stored``, in constant time.

        With no stored hash (unknown account) a dummy hash is computed anyway, so that unknown
        accounts take as long to refuse as wrong codes.
        """
        if stored is None:
            self._derive(code, b"\0" * 16, self.n, _R, _P)
            return False
        try:
            scheme, log_n, r, p, salt, digest = stored.split("$")
            if scheme != "scrypt":
                raise ValueError(scheme)
            expected = base64.b64decode(digest)
            actual = self._derive(code, base64.b64decode(salt), 1 << int(log_n), int(r), int(p))
        except (ValueError, TypeError):
            log.error("unreadable access-code hash; refusing")
            return False
        return hmac.compare_digest(actual, expected)


class CodeChecker(Protocol):
    """What verification needs: compare a code with a stored hash."""

    def verify(self, code: str, stored: str | None) -> bool:
        """Whether ``code`` matches ``stored``."""
        ...


class PrecheckedCodes:
    """A :class:`CodeHasher` that remembers checks made ahead of time.

    On SQLite a turn holds the database's only write lock; a scrypt check inside it would stall every
    other turn for its whole cost. The conversation checks the code first, outside the lock, and the
    turn then finds the answer here, for exactly that code and that stored hash (if the hash changed
    in between, it is checked again).
    """

    def __init__(self, hasher: CodeHasher) -> None:
        self.hasher = hasher
        self._known: dict[tuple[str, str | None], bool] = {}

    def precheck(self, code: str, stored: str | None) -> None:
        """Check now and remember the answer."""
        self._known[(code, stored)] = self.hasher.verify(code, stored)

    def verify(self, code: str, stored: str | None) -> bool:
        """The remembered answer, or a fresh check."""
        known = self._known.get((code, stored))
        return self.hasher.verify(code, stored) if known is None else known


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
