"""The outage-management system's HTTP API, as that system uses it: over HTTP, with a bearer token.

Starlette's test client drives ``bot.web.create_web`` on a real SQLite file and on PostgreSQL, with
the demo accounts imported (groups A012 and A013: two numbers; B021: a group with nobody to tell;
C104: one number). At the end, real ``outagebot serve`` processes on a PostgreSQL server of this
module's own: identical requests at the same instant, and the server stopped and started again.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update
from starlette.routing import Route
from starlette.testclient import TestClient

from bot.api_openapi import OPENAPI
from bot.app import App, build
from bot.storage import api_tokens
from bot.storage.db import make_engine
from bot.storage.models import Alert, OutboundMessage
from bot.web import create_web
from tests.bot.test_faults import together
from tests.conftest import PG_CTL, Clock, make_settings, need_postgres
from tests.pg import ThrowawayPostgres
from tests.serving import Server, environment, import_demo

NEW_TABLES = "alerts, alert_groups, api_tokens, subscriptions, send_pacing"
# The test clock stands at 2026-11-27 22:00 UTC (14:00 in Los Angeles).
ADVANCE = {"kind": "advance", "groups": ["A012", "a 013"], "start": "2026-11-28T14:00", "end": "2026-11-28T16:00"}


def make_token(app: App, name: str = "oms") -> str:
    token = app.db.run(lambda conn: api_tokens.create(conn, app.hasher.pepper, name, "tester", datetime.now(UTC)))
    assert token is not None
    return token


def count(app: App, query: Any) -> int:
    with app.db.engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def alerts_made(app: App) -> int:
    return count(app, select(func.count()).select_from(Alert))


def statuses(app: App) -> list[str]:
    with app.db.engine.connect() as conn:
        return sorted(conn.scalars(select(OutboundMessage.status)))


@dataclass
class Oms:
    """The outage-management system: a client holding a token."""

    client: TestClient
    token: str

    def headers(self, key: str | None = None, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}", **extra}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def create(self, body: object = ADVANCE, key: str | None = None, **headers: str) -> httpx.Response:
        return self.client.post("/api/alerts", json=body, headers=self.headers(key, **headers))

    def get(self, alert_id: object) -> httpx.Response:
        return self.client.get(f"/api/alerts/{alert_id}", headers=self.headers())

    def cancel(self, alert_id: object) -> httpx.Response:
        return self.client.post(f"/api/alerts/{alert_id}/cancel", headers=self.headers())


def without_new_tables(url: str) -> None:
    """PostgreSQL's test database is shared: start with no alerts, tokens or subscriptions."""
    if url.startswith("postgresql"):
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {NEW_TABLES} RESTART IDENTITY CASCADE"))
        engine.dispose()


@pytest.fixture
def oms(app: App, clock: Clock, database_url: str) -> Iterator[Oms]:
    without_new_tables(database_url)
    token = make_token(app)
    with TestClient(create_web(app, clock), base_url="http://127.0.0.1:8080") as client:
        yield Oms(client, token)


def error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error", "message", "details"} and body["message"], body
    return response.status_code, body["error"]


# --- who may ask ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (None, 'Bearer realm="outagebot"'),
        ("Basic b21zOnNlY3JldA==", 'Bearer realm="outagebot"'),
        ("Bearer ", 'Bearer realm="outagebot"'),
        ("Bearer not-a-token", 'Bearer realm="outagebot", error="invalid_token"'),
        ("Bearer " + "x" * 5000, 'Bearer realm="outagebot", error="invalid_token"'),
    ],
)
def test_without_a_valid_token_every_route_is_401_and_nothing_is_made(
    oms: Oms, app: App, authorization: str | None, challenge: str
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    for response in (
        oms.client.post("/api/alerts", json=ADVANCE, headers=headers),
        oms.client.get("/api/alerts/1", headers=headers),
        oms.client.post("/api/alerts/1/cancel", headers=headers),
    ):
        assert error(response) == (401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == challenge
    assert alerts_made(app) == 0


def test_a_revoked_token_is_refused_from_the_next_request_on(oms: Oms, app: App) -> None:
    assert oms.create().status_code == 201
    assert app.db.run(lambda conn: api_tokens.revoke(conn, "oms", "tester", datetime.now(UTC))) is True
    assert error(oms.get(1)) == (401, "unauthorized")
    assert error(oms.create(key="after")) == (401, "unauthorized")
    assert alerts_made(app) == 1


def test_the_token_is_stored_only_as_a_keyed_hash(oms: Oms, app: App) -> None:
    with app.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT name, token_hash FROM api_tokens")).all()
    assert [(name, len(digest)) for name, digest in stored] == [("oms", 64)]
    assert oms.token not in stored[0][1]
    assert stored[0][1] == api_tokens.digest(app.hasher.pepper, oms.token)
    assert stored[0][1] != api_tokens.digest(b"another pepper", oms.token)


def test_an_address_that_keeps_failing_is_refused_without_a_check_even_with_a_good_token(oms: Oms) -> None:
    for _ in range(10):
        assert oms.client.get("/api/alerts/1", headers={"Authorization": "Bearer guess"}).status_code == 401
    response = oms.get(1)
    assert error(response) == (429, "too_many_failures")
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_alerts_record_the_token_that_made_them(oms: Oms) -> None:
    assert oms.create().json()["created_by"] == "api:oms"


# --- making an alert --------------------------------------------------------------------------------


def test_an_alert_is_made_with_its_deliveries_planned(oms: Oms, app: App) -> None:
    response = oms.create({**ADVANCE, "note": {"en": "Crews on Bolsa Ave", "vi": "Thợ đang ở đường Bolsa"}})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {
        "id": 1,
        "kind": "advance",
        "groups": ["A012", "A013"],
        "start": "2026-11-28T14:00:00-08:00",
        "end": "2026-11-28T16:00:00-08:00",
        "note": {"en": "Crews on Bolsa Ave", "vi": "Thợ đang ở đường Bolsa"},
        "recipients": 2,  # An (on both accounts, told once) and Bích
        "follows": None,
        "status": "active",
        "created_by": "api:oms",
        "created_at": "2026-11-27T14:00:00-08:00",
        "cancelled_at": None,
        "links": {"self": "/api/alerts/1"},
    }
    assert response.headers["Location"] == "/api/alerts/1"
    assert statuses(app) == ["pending", "pending"]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-11-28T22:00:00Z", "2026-11-29T00:00:00+00:00"),
        ("2026-11-28T14:00:00-08:00", "2026-11-28T16:00:00-08:00"),
        ("2026-11-28 14:00", "2026-11-28 16:00"),  # naive: the utility's zone
    ],
)
def test_times_with_any_offset_or_none_mean_the_same_window(oms: Oms, start: str, end: str) -> None:
    body = oms.create({**ADVANCE, "start": start, "end": end}).json()
    assert (body["start"], body["end"]) == ("2026-11-28T14:00:00-08:00", "2026-11-28T16:00:00-08:00")


def test_one_note_for_both_languages(oms: Oms) -> None:
    assert oms.create({**ADVANCE, "note": "Bolsa Ave"}).json()["note"] == {"en": "Bolsa Ave", "vi": "Bolsa Ave"}


def test_a_group_with_nobody_to_tell_makes_an_alert_with_no_recipients(oms: Oms) -> None:
    response = oms.create({**ADVANCE, "groups": ["B021"]})
    assert response.status_code == 201 and response.json()["recipients"] == 0


def test_restored_answers_the_alert_before_it_and_needs_one(oms: Oms) -> None:
    restored = {**ADVANCE, "kind": "restored"}
    assert error(oms.create(restored)) == (409, "nothing_to_follow")
    first = oms.create({**ADVANCE, "kind": "started"}).json()
    answer = oms.create(restored)
    assert answer.status_code == 201 and answer.json()["follows"] == first["id"]


# --- retries ----------------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_gets_the_same_alert_and_200(oms: Oms, app: App) -> None:
    first = oms.create(key="storm-42")
    again = oms.create({**ADVANCE, "groups": ["a013", "A012"]}, key="storm-42")  # the same groups, written otherwise
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() and again.headers["Location"] == "/api/alerts/1"
    assert alerts_made(app) == 1 and len(statuses(app)) == 2


def test_a_retry_is_answered_even_once_the_window_is_over(oms: Oms, app: App, clock: Clock) -> None:
    first = oms.create(key="late")
    clock.advance(days=3)
    again = oms.create(key="late")
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])


def test_the_key_may_be_a_structured_fields_string(oms: Oms, app: App) -> None:
    assert oms.create(key="k-1").status_code == 201
    assert oms.create(key='"k-1"').status_code == 200
    assert alerts_made(app) == 1


def test_the_same_key_with_another_request_is_refused(oms: Oms, app: App) -> None:
    assert oms.create(key="storm-43").status_code == 201
    assert error(oms.create({**ADVANCE, "end": "2026-11-28T18:00"}, key="storm-43")) == (422, "key_reused")
    assert alerts_made(app) == 1


def test_keys_belong_to_their_token(oms: Oms, app: App) -> None:
    other = Oms(oms.client, make_token(app, "backup-oms"))
    assert oms.create(key="shared").status_code == 201
    assert other.create(key="shared").status_code == 201
    assert alerts_made(app) == 2


@pytest.mark.parametrize("key", ["", "x" * 201, "naïve", "tab\there", '"unclosed\\"'])
def test_a_key_that_is_not_one_is_400(oms: Oms, app: App, key: str) -> None:
    response = oms.client.post(
        "/api/alerts",
        json=ADVANCE,
        headers={"Authorization": f"Bearer {oms.token}".encode(), "Idempotency-Key": key.encode()},
    )
    assert error(response) == (400, "invalid_idempotency_key")
    assert alerts_made(app) == 0


def test_identical_requests_at_the_same_instant_make_one_alert(oms: Oms, app: App) -> None:
    answers = together([lambda: oms.create(key="burst") for _ in range(8)])
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert {a.json()["id"] for a in answers} == {1}
    assert alerts_made(app) == 1 and len(statuses(app)) == 2


# --- requests that cannot be alerts -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "details"),
    [
        ({**ADVANCE, "groups": ["A012", "Z999", "q 1"]}, 422, "unknown_groups", ["Z999", "Q1"]),
        ({**ADVANCE, "end": ADVANCE["start"]}, 422, "start_after_end", []),
        ({**ADVANCE, "start": "2026-11-27T08:00", "end": "2026-11-27T10:00"}, 422, "past", []),
        ({**ADVANCE, "kind": "maybe"}, 422, "kind", ["maybe"]),
        ({**ADVANCE, "groups": [" "]}, 422, "no_groups", []),
        ({**ADVANCE, "groups": [f"G{i}" for i in range(201)]}, 422, "too_many_groups", ["200"]),
        ({**ADVANCE, "note": "x" * 501}, 422, "note_too_long", ["500"]),
        ([ADVANCE], 422, "invalid_request", []),
        (
            {"kind": 1, "groups": "A012", "start": "2026-11-28", "end": "tomorrow", "note": 5, "when": "now"},
            422,
            "invalid_request",
            [
                "when: unknown field",
                "kind: one of advance, started, restored, cancelled, test is required",
                "groups: a list of outage group names is required",
                "start: a time of day is required as well as the date",
                "end: not an ISO 8601 date and time, e.g. 2026-11-28T14:00:00-08:00",
                'note: a text, or an object {"en": text, "vi": text}',
            ],
        ),
        (
            {**ADVANCE, "note": {"en": 1, "vi": "a\u202eb"}},
            422,
            "invalid_request",
            ["note.en: a text is required", "note.vi: bidirectional override characters are not allowed"],
        ),
        ({**ADVANCE, "start": "9999-12-31T23:00-12:00"}, 422, "invalid_request", None),
    ],
)
def test_a_request_that_cannot_be_an_alert_says_why_and_makes_nothing(
    oms: Oms, app: App, body: object, status: int, code: str, details: list[str] | None
) -> None:
    response = oms.create(body)
    assert error(response) == (status, code)
    if details is not None:
        assert response.json()["details"] == details
    assert alerts_made(app) == 0


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"kind": "advance",', "application/json", 400, "invalid_json"),
        (b"\xff\xfe{}", "application/json", 400, "invalid_json"),
        (b"[" * 10_000 + b"]" * 10_000, "application/json", 413, "too_large"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, "invalid_json"),  # deeper than the parser goes
        (b"kind=advance", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b"{}", "", 415, "unsupported_media_type"),
        (b" " * (16 * 1024 + 1), "application/json", 413, "too_large"),
    ],
)
def test_a_body_that_is_not_a_small_json_document_is_refused(
    oms: Oms, app: App, content: bytes, content_type: str, status: int, code: str
) -> None:
    headers = {"Authorization": f"Bearer {oms.token}", "Content-Type": content_type}
    assert error(oms.client.post("/api/alerts", content=content, headers=headers)) == (status, code)
    assert alerts_made(app) == 0


def test_a_streamed_body_over_the_limit_is_cut_off(oms: Oms, app: App) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    headers = {"Authorization": f"Bearer {oms.token}", "Content-Type": "application/json"}
    assert error(oms.client.post("/api/alerts", content=chunks(), headers=headers)) == (413, "too_large")


def test_json_with_a_charset_is_json(oms: Oms) -> None:
    headers = {"Authorization": f"Bearer {oms.token}", "Content-Type": "application/json; charset=utf-8"}
    assert oms.client.post("/api/alerts", content=json.dumps(ADVANCE), headers=headers).status_code == 201


# --- following and stopping an alert ----------------------------------------------------------------


def test_an_alert_reports_where_its_deliveries_stand(oms: Oms, app: App) -> None:
    alert_id = oms.create({**ADVANCE, "groups": ["A012", "A013", "C104"]}).json()["id"]
    m = OutboundMessage.__table__
    with app.db.engine.begin() as conn:
        ids = list(conn.scalars(select(m.c.id).order_by(m.c.id)))
        sent = datetime(2026, 11, 27, 22, 1, tzinfo=UTC)
        conn.execute(update(m).where(m.c.id == ids[0]).values(status="delivered", segments=2, sent_at=sent))
        conn.execute(update(m).where(m.c.id == ids[1]).values(status="failed", reason="invalid number"))
    body = oms.get(alert_id).json()
    assert body["recipients"] == 3 and body["status"] == "active"
    assert body["deliveries"] == {
        "total": 3,
        "open": 1,
        "by_status": {"delivered": 1, "failed": 1, "pending": 1},
        "by_channel": {"sms": 3},
    }
    assert body["sms_segments"] == 2
    assert body["failures"] == [{"reason": "invalid number", "channel": "sms", "count": 1}]


def test_cancelling_stops_what_was_not_sent_yet(oms: Oms, app: App) -> None:
    alert_id = oms.create().json()["id"]
    m = OutboundMessage.__table__
    with app.db.engine.begin() as conn:
        first = conn.scalar(select(func.min(m.c.id)))
        conn.execute(update(m).where(m.c.id == first).values(status="sent"))
    assert oms.cancel(alert_id).json() == {"id": alert_id, "stopped": 1}
    assert statuses(app) == ["cancelled", "sent"]
    body = oms.get(alert_id).json()
    assert body["status"] == "cancelled" and body["cancelled_at"] == "2026-11-27T14:00:00-08:00"
    assert body["deliveries"]["open"] == 0
    assert oms.cancel(alert_id).json() == {"id": alert_id, "stopped": 0}  # again: nothing more to stop


@pytest.mark.parametrize("alert_id", ["99", "0", "abc", "1e3", "99999999999999999999", "-1"])
def test_an_alert_that_does_not_exist_is_404(oms: Oms, alert_id: str) -> None:
    oms.create()
    assert error(oms.get(alert_id)) == (404, "not_found")
    assert error(oms.cancel(alert_id)) == (404, "not_found")


# --- the description --------------------------------------------------------------------------------


def test_the_description_lists_exactly_the_routes_served(oms: Oms, app: App) -> None:
    served = {
        (method, route.path)
        for route in create_web(app).routes
        if isinstance(route, Route) and route.path.startswith("/api/")
        for method in (route.methods or set()) - {"HEAD"}
    }
    documented = {(method.upper(), path) for path, operations in OPENAPI["paths"].items() for method in operations}
    assert served == documented
    response = oms.client.get("/api/openapi.json")  # no token needed: it describes, it holds nothing
    assert response.status_code == 200 and response.json() == OPENAPI and OPENAPI["openapi"] == "3.1.0"


def schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = OPENAPI["components"]["schemas"][name]
    return found


def properties(name: str) -> tuple[set[str], set[str]]:
    """The required and the allowed properties of a documented schema."""
    found = schema(name)
    if "allOf" in found:
        parts = [schema(p["$ref"].rsplit("/", 1)[1]) if "$ref" in p else p for p in found["allOf"]]
        return set().union(*(set(p["required"]) for p in parts)), set().union(*(set(p["properties"]) for p in parts))
    return set(found["required"]), set(found["properties"])


def test_answers_have_exactly_the_documented_fields(oms: Oms) -> None:
    made = oms.create().json()
    for body, name in [
        (made, "Alert"),
        (oms.get(made["id"]).json(), "AlertProgress"),
        (oms.cancel(made["id"]).json(), "Cancelled"),
        (oms.get(99).json(), "Error"),
    ]:
        required, allowed = properties(name)
        assert required <= set(body) <= allowed, name


def answers(app: App, clock: Clock, oms: Oms) -> dict[tuple[str, str, str], int]:
    """Each (method, path, status) the description lists, made to happen; the status it got."""
    alert_id = oms.create().json()["id"]
    post, get, cancel = "/api/alerts", "/api/alerts/{id}", "/api/alerts/{id}/cancel"
    raw = {"Authorization": f"Bearer {oms.token}", "Content-Type": "text/plain"}
    seen = {
        ("POST", post, "201"): oms.create(key="a").status_code,
        ("POST", post, "200"): oms.create(key="a").status_code,
        ("POST", post, "400"): oms.client.post(post, content=b"{", headers={**raw, "Content-Type": "application/json"}),
        ("POST", post, "409"): oms.create({**ADVANCE, "kind": "cancelled", "groups": ["C104"]}),
        ("POST", post, "413"): oms.client.post(
            post, content=b" " * 20000, headers={**raw, "Content-Type": "application/json"}
        ),
        ("POST", post, "415"): oms.client.post(post, content=b"{}", headers=raw),
        ("POST", post, "422"): oms.create({**ADVANCE, "groups": ["Z9"]}),
        ("GET", get, "200"): oms.get(alert_id),
        ("GET", get, "404"): oms.get(999),
        ("POST", cancel, "200"): oms.cancel(alert_id),
        ("POST", cancel, "404"): oms.cancel(999),
        ("GET", "/api/openapi.json", "200"): oms.client.get("/api/openapi.json"),
    }
    stranger = Oms(oms.client, "wrong")
    seen |= {
        ("POST", post, "401"): stranger.create(),
        ("GET", get, "401"): stranger.get(alert_id),
        ("POST", cancel, "401"): stranger.cancel(alert_id),
    }
    for _ in range(10):
        stranger.get(alert_id)
    seen |= {
        ("POST", post, "429"): oms.create(),
        ("GET", get, "429"): oms.get(alert_id),
        ("POST", cancel, "429"): oms.cancel(alert_id),
    }
    with away(clock) as lost:
        seen |= {
            ("POST", post, "503"): lost.create(),
            ("GET", get, "503"): lost.get(alert_id),
            ("POST", cancel, "503"): lost.cancel(alert_id),
        }
    return {k: v if isinstance(v, int) else v.status_code for k, v in seen.items()}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class away:
    """The API of a deployment whose PostgreSQL server is not there (nothing listens on its port)."""

    def __init__(self, clock: Clock) -> None:
        self.app = build(make_settings(f"postgresql://postgres@127.0.0.1:{closed_port()}/gone"), clock, False)
        self.client = TestClient(create_web(self.app))

    def __enter__(self) -> Oms:
        self.client.__enter__()
        return Oms(self.client, "any-token")

    def __exit__(self, *exc: object) -> None:
        self.client.__exit__(*exc)
        self.app.close()


def test_every_documented_status_is_one_the_api_answers(oms: Oms, app: App, clock: Clock) -> None:
    documented = {
        (method.upper(), path, status)
        for path, operations in OPENAPI["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
    }
    got = answers(app, clock, oms)
    assert set(got) == documented
    assert {k: v for k, v in got.items() if str(v) != k[2]} == {}


def test_a_lost_database_is_503_never_500(clock: Clock) -> None:
    with away(clock) as lost:
        for response in (lost.create(), lost.get(1), lost.cancel(1)):
            assert error(response) == (503, "unavailable")
            assert response.headers["Retry-After"] == "5"


# --- real servers -----------------------------------------------------------------------------------


def upcoming() -> dict[str, object]:
    """An advance alert for tomorrow by the real clock (what a served process reads)."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return {**ADVANCE, "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}


@pytest.fixture(scope="module")
def pg() -> Iterator[ThrowawayPostgres]:
    need_postgres()
    assert PG_CTL is not None
    server = ThrowawayPostgres(PG_CTL).start()
    yield server
    server.close()


def serve_token(env: dict[str, str]) -> str:
    """``outagebot api-token create oms``, as an operator would; the token it printed."""
    made = subprocess.run(
        [sys.executable, "-m", "bot", "api-token", "create", "oms"], env=env, capture_output=True, text=True, check=True
    )
    return made.stdout.strip()


@pytest.mark.postgres
def test_two_workers_given_one_request_at_the_same_instant_make_one_alert(pg: ThrowawayPostgres) -> None:
    env = environment(pg.create_database("api_burst"))
    import_demo(env)
    token = serve_token(env)
    with Server(env, workers=2) as server:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "burst-1"}
        body = upcoming()

        def post() -> httpx.Response:
            with httpx.Client(base_url=server.base, timeout=30) as client:
                return client.post("/api/alerts", json=body, headers=headers)

        answers = together([post for _ in range(12)])
        assert sorted(a.status_code for a in answers) == [200] * 11 + [201]
        assert len({a.json()["id"] for a in answers}) == 1
        made = server.client.get(answers[0].headers["Location"], headers=headers).json()
        assert made["deliveries"]["total"] == 2


@pytest.mark.postgres
def test_while_the_database_is_down_the_api_answers_503_and_works_again_after(pg: ThrowawayPostgres) -> None:
    name = "api_down"
    env = environment(pg.create_database(name), OUTAGEBOT_DB_LOCK_TIMEOUT_SECONDS="1")
    import_demo(env)
    token = serve_token(env)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "during-outage"}
    body = upcoming()
    with Server(env) as server:
        assert (
            server.client.post("/api/alerts", json=body, headers={**headers, "Idempotency-Key": "x"}).status_code == 201
        )
        pg.stop()
        try:
            down = server.client.post("/api/alerts", json=body, headers=headers)
            assert down.status_code == 503 and down.json()["error"] == "unavailable"
            assert server.client.get("/api/alerts/1", headers=headers).status_code == 503
        finally:
            pg.start()
        retried = server.client.post("/api/alerts", json=body, headers=headers)
        assert retried.status_code == 201, retried.text
        assert server.client.post("/api/alerts", json=body, headers=headers).status_code == 200
    assert "Traceback" not in server.stderr
