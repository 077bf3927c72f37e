"""The OpenAPI 3.1 description of ``bot.api``, written as data (served at ``GET /api/openapi.json``).

``tests/bot/test_api.py`` holds it to the application: the same routes and methods, and every status
code listed here is one the tests make the API answer (and no other).
"""

from __future__ import annotations

from typing import Any

from bot.storage.alerts import KINDS, MAX_GROUPS, MAX_NOTE


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str, *headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": _json(_ref("Error"))}
    if headers:
        answer["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    return answer


_AUTH = {
    "401": _error("No token, a wrong one, or a revoked one.", "WWW-Authenticate"),
    "429": _error("Too many requests without a valid token from this address lately.", "Retry-After"),
    "503": _error("The database cannot answer now; try again.", "Retry-After"),
}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
_MOMENT = {
    "type": "string",
    "description": "ISO 8601 date and time; without an offset it is in the utility's time zone "
    "(OUTAGEBOT_TIMEZONE). Answers carry the utility's offset.",
    "examples": ["2026-11-28T14:00:00-08:00"],
}
_NOTE = {"type": ["string", "null"], "maxLength": MAX_NOTE}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "outagebot: outage alerts for the outage-management system",
        "version": "1",
        "description": "Create rotating-outage alerts, follow their deliveries, stop them. Tokens come "
        "from `outagebot api-token create NAME`. Errors are English: "
        '`{"error": code, "message": text, "details": [...]}`.',
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/alerts": {
            "post": {
                "operationId": "createAlert",
                "summary": "Create an alert and plan its deliveries",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "Recommended. 1-200 printable ASCII characters, bare or as a "
                        "Structured Fields string. The same key with the same request gets the same alert "
                        "(200); with a different request, 422 key_reused.",
                        "schema": {"type": "string", "maxLength": 202},
                    }
                ],
                "requestBody": {"required": True, "content": _json(_ref("AlertRequest"))},
                "responses": {
                    "201": {
                        "description": "Created; its deliveries are planned.",
                        "headers": {"Location": {"$ref": "#/components/headers/Location"}},
                        "content": _json(_ref("Alert")),
                    },
                    "200": {
                        "description": "A retry with the same Idempotency-Key: the alert made the first time.",
                        "headers": {"Location": {"$ref": "#/components/headers/Location"}},
                        "content": _json(_ref("Alert")),
                    },
                    "400": _error("The body is not JSON, or the Idempotency-Key is not a valid key."),
                    "409": _error("nothing_to_follow: a restored or cancelled alert with no alert to answer."),
                    "413": _error("The body is over 16384 bytes."),
                    "415": _error("The body is not application/json."),
                    "422": _error(
                        "invalid_request (fields), kind, no_groups, too_many_groups, start_after_end, past, "
                        "note_too_long, unknown_groups (details list them), key_reused."
                    ),
                    **_AUTH,
                },
            }
        },
        "/api/alerts/{id}": {
            "get": {
                "operationId": "getAlert",
                "summary": "An alert and where its deliveries stand",
                "parameters": [_ID],
                "responses": {
                    "200": {"description": "The alert and its progress.", "content": _json(_ref("AlertProgress"))},
                    "404": _error("No such alert."),
                    **_AUTH,
                },
            }
        },
        "/api/alerts/{id}/cancel": {
            "post": {
                "operationId": "cancelAlert",
                "summary": "Stop an alert: its deliveries not sent yet are cancelled",
                "parameters": [_ID],
                "responses": {
                    "200": {"description": "Stopped (again: stopped is 0).", "content": _json(_ref("Cancelled"))},
                    "404": _error("No such alert."),
                    **_AUTH,
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": _json({"type": "object"})}},
            }
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "headers": {
            "Location": {"schema": {"type": "string"}, "description": "/api/alerts/{id}"},
            "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"},
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="outagebot"'},
        },
        "schemas": {
            "AlertRequest": {
                "type": "object",
                "required": ["kind", "groups", "start", "end"],
                "additionalProperties": False,
                "properties": {
                    "kind": {"enum": list(KINDS)},
                    "groups": {
                        "type": "array",
                        "items": {"type": "string"},
                        "maxItems": MAX_GROUPS,
                        "description": "Outage groups as printed on the bill; case and spaces do not matter.",
                    },
                    "start": _MOMENT,
                    "end": _MOMENT,
                    "note": {
                        "description": "One text for both languages, or one per language.",
                        "oneOf": [
                            {"type": "string", "maxLength": MAX_NOTE},
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {"en": _NOTE, "vi": _NOTE},
                            },
                        ],
                    },
                },
            },
            "Alert": {
                "type": "object",
                "required": ["id", "kind", "groups", "start", "end", "recipients", "follows", "status", "links"],
                "properties": {
                    "id": {"type": "integer"},
                    "kind": {"enum": list(KINDS)},
                    "groups": {"type": "array", "items": {"type": "string"}},
                    "start": _MOMENT,
                    "end": _MOMENT,
                    "note": {"type": "object", "properties": {"en": _NOTE, "vi": _NOTE}},
                    "recipients": {"type": "integer", "description": "deliveries planned"},
                    "follows": {"type": ["integer", "null"], "description": "the alert a restored/cancelled answers"},
                    "status": {"enum": ["sending", "cancelled"]},
                    "created_by": {"type": "string", "examples": ["api:oms"]},
                    "created_at": _MOMENT,
                    "cancelled_at": {**_MOMENT, "type": ["string", "null"]},
                    "links": {
                        "type": "object",
                        "required": ["self"],
                        "properties": {"self": {"type": "string"}},
                    },
                },
            },
            "AlertProgress": {
                "allOf": [
                    _ref("Alert"),
                    {
                        "type": "object",
                        "required": ["deliveries", "sms_segments", "failures"],
                        "properties": {
                            "deliveries": {
                                "type": "object",
                                "required": ["total", "open", "by_status", "by_channel"],
                                "properties": {
                                    "total": {"type": "integer"},
                                    "open": {"type": "integer", "description": "pending or sending"},
                                    "by_status": _COUNTS,
                                    "by_channel": _COUNTS,
                                },
                            },
                            "sms_segments": {"type": "integer", "description": "SMS segments sent"},
                            "failures": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["reason", "channel", "count"],
                                    "properties": {
                                        "reason": {"type": "string"},
                                        "channel": {"type": "string"},
                                        "count": {"type": "integer"},
                                    },
                                },
                            },
                        },
                    },
                ]
            },
            "Cancelled": {
                "type": "object",
                "required": ["id", "stopped"],
                "properties": {
                    "id": {"type": "integer"},
                    "stopped": {"type": "integer", "description": "deliveries cancelled before they were sent"},
                },
            },
            "Error": {
                "type": "object",
                "required": ["error", "message", "details"],
                "properties": {
                    "error": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
