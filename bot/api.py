"""The HTTP API for the utility's outage-management system: create, read and cancel outage alerts.

``POST /api/alerts``, ``GET /api/alerts/{id}``, ``POST /api/alerts/{id}/cancel``, and the OpenAPI 3.1
description of them at ``GET /api/openapi.json`` (:data:`OPENAPI`, written here as data and tested
against the routes). JSON in and out; errors are ``{"error": code, "message": text, "details": [...]}``
in English (they are read by the utility's engineers, never by customers).

Every request but the description's carries ``Authorization: Bearer <token>`` (``outagebot api-token
create``), checked before anything else is read: a missing, wrong or revoked token gets 401 with
``WWW-Authenticate: Bearer``, and an address that failed too often lately gets 429 without a check.
The alert is made by ``bot.storage.alerts`` in one transaction, through the same runner as turns
(so it never blocks the event loop on PostgreSQL, and waits for SQLite's write lock with
``asyncio.sleep``); a database that cannot answer gets 503, never a 500.

``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header; optional, recommended): the same key
from the same token with the same request gets the alert it made before (200 rather than 201), even
when sent at the same instant; with a different request, 422 ``key_reused``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Any, TypeVar

from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.api_openapi import OPENAPI
from bot.app import App
from bot.conversation import retryable
from bot.logs import RateLimitedLog
from bot.storage import alerts, api_tokens
from bot.storage.aio import Runner
from bot.storage.alerts import AlertError, AlertInfo, AlertRequest
from bot.storage.db import CommitFailed
from bot.storage.models import Alert, table

log = logging.getLogger(__name__)
refused = RateLimitedLog(
    log, "refused an API request without a valid token", "refused API requests without a valid token"
)
T = TypeVar("T")

MAX_BODY = 16 * 1024
KEY_MAX = 200
TOKEN_MAX = 256
MAX_ID = 2**31 - 1
ATTEMPTS = 3  # a lost connection or a deadlock before the commit: run the transaction again
CHALLENGE = 'Bearer realm="outagebot"'
FIELDS = frozenset({"kind", "groups", "start", "end", "note"})
_a = table(Alert)
_SF_STRING = re.compile(r'(?:[^"\\]|\\["\\])*')  # the inside of a Structured Fields string (RFC 8941)
_ESCAPED = re.compile(r'\\(["\\])')


class ApiError(Exception):
    """An answer other than success: HTTP status, error code, English message, details."""

    def __init__(
        self, status: int, code: str, message: str, details: Sequence[str] = (), headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(code)
        self.status, self.code, self.message, self.details = status, code, message, list(details)
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body = {"error": self.code, "message": self.message, "details": self.details}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


# What each refusal of bot.storage.alerts means to the caller: (status, message).
ALERT_ERRORS: dict[str, tuple[int, str]] = {
    "kind": (422, "kind must be one of: " + ", ".join(alerts.KINDS) + "."),
    "no_groups": (422, "groups must name at least one outage group."),
    "too_many_groups": (422, "Too many outage groups in one alert; details give the most allowed."),
    "start_after_end": (422, "start must be before end."),
    "past": (422, "The window is over already (a restored alert may report one that ended up to a day ago)."),
    "note_too_long": (422, "A note is too long; details give the most characters allowed."),
    "unknown_groups": (422, "No service account or subscriber is in these outage groups; details list them."),
    "nothing_to_follow": (
        409,
        "There is no earlier alert for these groups for this one to answer (restored and cancelled "
        "answer an advance or started alert that was not answered or cancelled yet).",
    ),
    "key_reused": (
        422,
        "This Idempotency-Key was used before with a different request: use a new key for a new alert.",
    ),
}


class FailedAuth:
    """The per-address throttle of failed authentication, in this process.

    After ``limit`` failures within ``window`` seconds an address is refused (429) without a check
    until the oldest of them is older than the window. A token is 256 random bits, so this is not
    what keeps guessing from working; it keeps a flood of bad requests off the database and the log.
    At most ``addresses`` addresses are remembered (the least recently failing are forgotten first).
    """

    def __init__(
        self,
        limit: int = 10,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        addresses: int = 10_000,
    ) -> None:
        self.limit, self.window, self._clock, self.addresses = limit, window, clock, addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: now)."""
        now = self._clock()
        with self._lock:
            times = self._failures.get(address)
            if times is None:
                return 0.0
            while times and times[0] <= now - self.window:
                times.popleft()
            if not times:
                del self._failures[address]
                return 0.0
            return times[0] + self.window - now if len(times) >= self.limit else 0.0

    def failure(self, address: str) -> None:
        """Count one failure of ``address``."""
        now = self._clock()
        with self._lock:
            times = self._failures.pop(address, None) or deque(maxlen=self.limit)
            times.append(now)
            self._failures[address] = times
            while len(self._failures) > self.addresses:
                self._failures.popitem(last=False)


def idempotency_key(value: str | None) -> str | None:
    """The key of an ``Idempotency-Key`` header: a Structured Fields string (``"..."``, as the draft
    says) or the same characters bare; 1-200 printable ASCII characters. :class:`ApiError` 400 else."""
    if value is None:
        return None
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        inner = key[1:-1]
        key = _ESCAPED.sub(r"\1", inner) if _SF_STRING.fullmatch(inner) else ""
    if not 0 < len(key) <= KEY_MAX or not all(" " <= ch <= "~" for ch in key):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {KEY_MAX} printable ASCII characters (a UUID is a good key).",
        )
    return key


def _moment(name: str, value: object, zone: tzinfo, problems: list[str]) -> datetime | None:
    """An ISO 8601 date and time (naive: in the utility's zone) as aware UTC, or a problem noted."""
    if not isinstance(value, str):
        problems.append(f"{name}: an ISO 8601 date and time is required, e.g. 2026-11-28T14:00:00-08:00")
        return None
    try:
        date.fromisoformat(value)
    except ValueError:
        pass
    else:
        problems.append(f"{name}: a time of day is required as well as the date")
        return None
    try:
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=zone)
        return when.astimezone(UTC)
    except (ValueError, OverflowError):
        problems.append(f"{name}: not an ISO 8601 date and time, e.g. 2026-11-28T14:00:00-08:00")
        return None


def _note(value: object, problems: list[str]) -> tuple[str | None, str | None]:
    """``note``: one text for both languages, or ``{"en": ..., "vi": ...}`` (either may be left out)."""
    if value is None:
        return None, None
    if isinstance(value, str):
        pair: dict[str, object] = {"en": value, "vi": value}
    elif isinstance(value, dict) and set(value) <= {"en", "vi"}:
        pair = {"en": value.get("en"), "vi": value.get("vi")}
    else:
        problems.append('note: a text, or an object {"en": text, "vi": text}')
        return None, None
    out: list[str | None] = []
    for locale in ("en", "vi"):
        note = pair[locale]
        if note is not None and not isinstance(note, str):
            problems.append(f"note.{locale}: a text is required")
            note = None
        if note is not None and any(0x202A <= ord(ch) <= 0x202E or 0x2066 <= ord(ch) <= 0x2069 for ch in note):
            problems.append(f"note.{locale}: bidirectional override characters are not allowed")
            note = None
        if note is not None:
            note = " ".join("".join(" " if ch < " " or ch == "\x7f" else ch for ch in note).split()) or None
        out.append(note)
    return out[0], out[1]


def alert_request(body: object, zone: tzinfo) -> AlertRequest:
    """The request a JSON body asks for (times in UTC), or :class:`ApiError` 422 naming every problem."""
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_request", "The body must be a JSON object.")
    problems = [f"{name}: unknown field" for name in sorted(set(body) - FIELDS)]
    kind = body.get("kind")
    if not isinstance(kind, str):
        problems.append("kind: one of " + ", ".join(alerts.KINDS) + " is required")
    groups = body.get("groups")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        problems.append("groups: a list of outage group names is required")
    start = _moment("start", body.get("start"), zone, problems)
    end = _moment("end", body.get("end"), zone, problems)
    note_en, note_vi = _note(body.get("note"), problems)
    if problems or start is None or end is None:
        raise ApiError(422, "invalid_request", "The request is not a valid alert; details say why.", problems)
    assert isinstance(kind, str) and isinstance(groups, list)
    return AlertRequest(kind, tuple(groups), start, end, note_en, note_vi)


def _normalized(request: AlertRequest) -> AlertRequest:
    """The request with its groups as ``alerts.check`` writes them (what the idempotency digest covers)."""
    groups = tuple(dict.fromkeys(alerts.normalize_group(g) for g in request.groups if g.strip()))
    return AlertRequest(request.kind, groups, request.starts_at, request.ends_at, request.note_en, request.note_vi)


def _key_used(conn: Connection, created_by: str, key: str) -> bool:
    found = conn.scalar(select(_a.c.id).where(_a.c.created_by == created_by[:100], _a.c.idempotency_key == key))
    return found is not None


def _alert_body(info: AlertInfo, zone: tzinfo) -> dict[str, Any]:
    def shown(when: datetime | None) -> str | None:
        return when.astimezone(zone).isoformat() if when is not None else None

    return {
        "id": info.id,
        "kind": info.kind,
        "groups": list(info.groups),
        "start": shown(info.starts_at),
        "end": shown(info.ends_at),
        "note": {"en": info.note_en, "vi": info.note_vi},
        "recipients": info.recipients,
        "follows": info.follows_id,
        "status": info.status,
        "created_by": info.created_by,
        "created_at": shown(info.created_at),
        "cancelled_at": shown(info.cancelled_at),
        "links": {"self": f"/api/alerts/{info.id}"},
    }


def _progress_body(progress: alerts.Progress) -> dict[str, Any]:
    by_channel: dict[str, int] = {}
    for (_status, channel), n in progress.counts.items():
        by_channel[channel] = by_channel.get(channel, 0) + n
    return {
        "deliveries": {
            "total": progress.total,
            "open": progress.open,
            "by_status": dict(sorted(progress.by_status().items())),
            "by_channel": dict(sorted(by_channel.items())),
        },
        "sms_segments": progress.segments,
        "failures": [{"reason": r, "channel": c, "count": n} for r, c, n in progress.failures],
    }


class Api:
    """The routes' shared parts: the application, its runner, the clock, the throttle."""

    def __init__(self, app: App, runner: Callable[[], Runner], now: Callable[[], datetime]) -> None:
        self.app, self.runner, self.now = app, runner, now
        self.zone = app.settings.zone
        self.throttle = FailedAuth()

    async def database(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """``work`` through the runner (a transaction, or with ``write=False`` none); 503 when the
        database cannot answer. A connection lost or a deadlock before the commit is tried again."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                runner = self.runner()
                return await (runner.run(work) if write else runner.read(work))
            except (SQLAlchemyError, CommitFailed) as exc:
                if attempt < ATTEMPTS and retryable(exc):
                    continue
                log.warning("API request not served: the database did not answer (%s)", type(exc).__name__)
                raise ApiError(
                    503,
                    "unavailable",
                    "The database is unavailable; nothing is known to have changed. Try again "
                    "(with the same Idempotency-Key, a retried alert is never made twice).",
                    headers={"Retry-After": "5"},
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def holder(self, request: Request) -> str:
        """The name of the valid token the request carries; :class:`ApiError` 401 or 429 else."""
        address = request.client.host if request.client else "-"
        wait = self.throttle.wait(address)
        if wait > 0:
            raise ApiError(
                429,
                "too_many_failures",
                "Too many requests without a valid token from this address; try again later.",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        name = None
        if 0 < len(token) <= TOKEN_MAX:
            pepper = self.app.hasher.pepper
            name = await self.database(lambda conn: api_tokens.holder(conn, pepper, token), write=False)
        if name is None:
            self.throttle.failure(address)
            refused.hit(request.url.path)
            challenge = CHALLENGE + (', error="invalid_token"' if token else "")
            raise ApiError(
                401,
                "unauthorized",
                "A valid API token is required: Authorization: Bearer <token> (outagebot api-token create).",
                headers={"WWW-Authenticate": challenge},
            )
        return name

    async def create(self, request: Request) -> Response:
        created_by = "api:" + await self.holder(request)
        key = idempotency_key(request.headers.get("idempotency-key"))
        media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media != "application/json":
            raise ApiError(415, "unsupported_media_type", "The body must be JSON (Content-Type: application/json).")
        try:
            body = json.loads(await _body(request))
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested deeper than the parser goes
            raise ApiError(400, "invalid_json", "The body is not valid JSON.") from None
        wanted = alert_request(body, self.zone)
        at = self.now()

        def work(conn: Connection) -> tuple[alerts.Created, AlertInfo | None]:
            if key is not None and _key_used(conn, created_by, key):
                created = alerts.create(conn, _normalized(wanted), at, created_by, idempotency_key=key)
            else:
                checked = alerts.check(conn, wanted, at)
                created = alerts.create(conn, checked, at, created_by, idempotency_key=key)
            return created, alerts.get(conn, created.id)

        try:
            created, info = await self.database(work)
        except AlertError as exc:
            status, message = ALERT_ERRORS[exc.code]
            raise ApiError(status, exc.code, message, exc.details) from None
        assert info is not None
        if not created.replayed:
            log.info("API: alert %d (%s) made by %s for %d recipients", info.id, info.kind, created_by, info.recipients)
        headers = {"Location": f"/api/alerts/{info.id}"}
        return JSONResponse(_alert_body(info, self.zone), status_code=200 if created.replayed else 201, headers=headers)

    async def show(self, request: Request) -> Response:
        await self.holder(request)
        alert_id = _alert_id(request)

        def work(conn: Connection) -> tuple[AlertInfo | None, alerts.Progress | None]:
            info = alerts.get(conn, alert_id)
            return info, alerts.progress(conn, alert_id) if info is not None else None

        info, progress = await self.database(work, write=False)
        if info is None or progress is None:
            raise _not_found(alert_id)
        return JSONResponse(_alert_body(info, self.zone) | _progress_body(progress))

    async def cancel(self, request: Request) -> Response:
        holder = await self.holder(request)
        alert_id, at = _alert_id(request), self.now()
        stopped = await self.database(lambda conn: alerts.cancel(conn, alert_id, at))
        if stopped is None:
            raise _not_found(alert_id)
        log.info("API: alert %d cancelled by api:%s; %d deliveries stopped", alert_id, holder, stopped)
        return JSONResponse({"id": alert_id, "stopped": stopped})


def _alert_id(request: Request) -> int:
    raw = str(request.path_params["id"])
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= MAX_ID:
        raise _not_found(raw)
    return int(raw)


def _not_found(alert_id: object) -> ApiError:
    return ApiError(404, "not_found", "No such alert.", [str(alert_id)[:20]])


async def _body(request: Request) -> bytes:
    """The body, or :class:`ApiError` 413 as soon as it is known to be over :data:`MAX_BODY`."""
    from bot.web import BodyTooLarge, _read_body  # bot.web mounts these routes: imported when first used

    try:
        return await _read_body(request, MAX_BODY)
    except BodyTooLarge:
        raise ApiError(413, "too_large", f"The body is over {MAX_BODY} bytes.") from None


def _answering(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except ApiError as exc:
            return exc.response()
        return response

    return endpoint


async def _description(request: Request) -> Response:
    return JSONResponse(OPENAPI)


def api_routes(app: App, runner: Callable[[], Runner], now: Callable[[], datetime]) -> list[Route]:
    """The API's routes, for ``bot.web.create_web``; ``runner`` gives the runner the other routes use."""
    api = Api(app, runner, now)
    return [
        Route("/api/alerts", _answering(api.create), methods=["POST"]),
        Route("/api/alerts/{id}", _answering(api.show), methods=["GET"]),
        Route("/api/alerts/{id}/cancel", _answering(api.cancel), methods=["POST"]),
        Route("/api/openapi.json", _description, methods=["GET"]),
    ]
