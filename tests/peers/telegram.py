"""A local stand-in for Telegram, written by others, started by the tests, and a person using it.

- ``telegram-test-api`` (npm, 4.2.x) plays the Bot API for the bot and the Telegram app for the test:
  the test's fake user sends messages, commands and button presses to it; the bot fetches them with
  ``getUpdates`` and answers with ``sendMessage``, ``editMessageText``, ...
- :func:`repairing_proxy` stands between the bot and the stand-in. It repairs, in the responses
  only, exactly the stand-in's deviations from the Bot API that python-telegram-bot 22 trips on
  (``../shared/peers/README.md``): ``getMe`` without ``is_bot``, dates in milliseconds, callback
  queries without ``chat_instance``, edits and deletions answering ``null``, errors as HTTP 500 ``{"message"}``,
  and ``getUpdates`` ignoring the long-poll ``timeout`` (it answers at once; the proxy waits for an
  update, as Telegram does). Methods the stand-in lacks (``setMyCommands``) are answered ``ok``.
  It also injects Telegram's own refusals for chosen chats (429 with ``retry_after``, 403 blocked,
  400 chat not found), and records every call with its parameters, keeping what each chat shows
  (text and buttons, edits applied): the fake user reads its screen from there.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.peers.twilio import ROOT, free_port, serve_in_thread, wait_for_port

TOKEN = "123456789:TEST-outagebot-token"
NODE_MODULES = ROOT / "node_modules"

# chat id -> the Bot API's refusal for anything sent to it
FAULTS: dict[int, tuple[int, dict[str, Any]]] = {
    4290001: (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 2",
            "parameters": {"retry_after": 2},
        },
    ),
    4030001: (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
    4000001: (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}),
}
_EDITS = {"editMessageText", "editMessageReplyMarkup"}
# methods whose result is True on the Bot API (an edit of a bot's message: the Message or True); the
# stand-in answers null
_TRUE = _EDITS | {"deleteMessage", "answerCallbackQuery", "setWebhook", "deleteWebhook"}
# a sticker as Telegram sends one, for the tests of what is not text
STICKER: dict[str, Any] = {
    "file_id": "CAAC",
    "file_unique_id": "u1",
    "type": "regular",
    "width": 512,
    "height": 512,
    "is_animated": False,
    "is_video": False,
}
_OURS = {"setMyCommands", "getMyCommands", "deleteMyCommands", "getWebhookInfo", "setChatMenuButton"}


def start_standin() -> Iterator[str]:
    """Run telegram-test-api on a free loopback port; yields its base URL."""
    port = free_port()
    script = (
        "const S=require('telegram-test-api');"
        f"new S({{port:{port},host:'127.0.0.1',storage:'RAM',storeTimeout:600}}).start();"
    )
    process = subprocess.Popen(["node", "-e", script], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class Shown:
    """A message of the bot as its chat shows it now."""

    message_id: int
    text: str
    buttons: list[list[dict[str, Any]]] = field(default_factory=list)
    keyboard: dict[str, Any] | None = None  # a reply keyboard (request_contact)


@dataclass
class Observed:
    """Every Bot API call the proxy passed on, and what each chat shows."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    chats: dict[int, list[Shown]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def since(self, mark: int) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return list(self.calls[mark:])

    def mark(self) -> int:
        with self.lock:
            return len(self.calls)


def _params(raw: bytes, content_type: str) -> dict[str, Any]:
    if "json" in content_type:
        data = json.loads(raw or b"{}")
        return dict(data)
    params: dict[str, Any] = {}
    for key, value in httpx.QueryParams(raw.decode()).multi_items():
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def _seconds(message: Any) -> None:
    if isinstance(message, dict) and isinstance(message.get("date"), int) and message["date"] > 10**11:
        message["date"] //= 1000


def _repair_update(update: dict[str, Any]) -> None:
    _seconds(update.get("message"))
    query = update.get("callback_query")
    if isinstance(query, dict):
        query.setdefault("chat_instance", str(query.get("from", {}).get("id", 0)))
        _seconds(query.get("message"))


def repairing_proxy(upstream: str, observed: Observed) -> Starlette:
    async def method(request: Request) -> Response:
        path = request.path_params["rest"]
        token, _, name = path.rpartition("/")
        raw = await request.body()
        params = _params(raw, request.headers.get("content-type", ""))

        def seen() -> None:  # after its effect is in the chat's view, so that a waiting user sees both
            with observed.lock:
                observed.calls.append((name, params))

        chat = params.get("chat_id")
        if isinstance(chat, str) and chat.lstrip("-").isdigit():
            chat = int(chat)
        if chat in FAULTS:
            seen()
            status, body = FAULTS[chat]
            return JSONResponse(body, status_code=status)
        if name in _OURS:
            seen()
            return JSONResponse({"ok": True, "result": [] if name.startswith("get") else True})
        timeout = float(params.get("timeout") or 0) if name == "getUpdates" else 0.0
        deadline = time.monotonic() + min(timeout, 5.0)
        async with httpx.AsyncClient(timeout=30) as client:
            while True:
                if name == "getUpdates" and await request.is_disconnected():
                    # a poller that stopped: fetching now would mark the next poller's updates read
                    seen()
                    return JSONResponse({"ok": True, "result": []})
                answer = await client.post(f"{upstream}/bot{token}/{name}", json=params)
                try:
                    data = answer.json()
                except ValueError:
                    data = {"message": answer.text}
                if name != "getUpdates" or data.get("result") or time.monotonic() >= deadline:
                    break
                try:
                    await asyncio.sleep(0.03)
                except asyncio.CancelledError:  # the proxy is stopping: end the long poll quietly
                    seen()
                    return JSONResponse({"ok": True, "result": []})
        if "ok" not in data:  # the stand-in's error shape
            seen()
            return JSONResponse(
                {"ok": False, "error_code": 400, "description": f"Bad Request: {data.get('message')}"}, status_code=400
            )
        result = data.get("result")
        if name == "getMe" and isinstance(result, dict):
            result.setdefault("is_bot", True)
        elif name == "getUpdates" and isinstance(result, list):
            for update in result:
                _repair_update(update)
        elif name in _TRUE and result is None:
            data["result"] = True
        elif isinstance(result, dict):
            _seconds(result)
        _observe(observed, name, params, data.get("result"))
        seen()
        return JSONResponse(data)

    return Starlette(routes=[Route("/bot{rest:path}", method, methods=["GET", "POST"])])


def _observe(observed: Observed, name: str, params: dict[str, Any], result: Any) -> None:
    try:
        chat = int(params.get("chat_id", 0))
    except (TypeError, ValueError):
        return
    markup = params.get("reply_markup") or {}
    buttons = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    keyboard = markup if isinstance(markup, dict) and "keyboard" in markup else None
    with observed.lock:
        shown = observed.chats.setdefault(chat, [])
        if name == "sendMessage" and isinstance(result, dict):
            shown.append(Shown(int(result["message_id"]), str(params.get("text", "")), buttons, keyboard))
        elif name in _EDITS:
            for message in shown:
                if message.message_id == int(params.get("message_id", 0)):
                    if name == "editMessageText":
                        message.text = str(params.get("text", ""))
                    message.buttons = buttons  # no reply_markup: the buttons are gone, as on Telegram
        elif name == "deleteMessage":
            observed.chats[chat] = [m for m in shown if m.message_id != int(params.get("message_id", 0))]


def start_proxy(upstream: str, observed: Observed) -> Iterator[str]:
    """Serve the repairing proxy on a free loopback port, in a thread; yields its Bot API base URL."""
    return serve_in_thread(repairing_proxy(upstream, observed), timeout_graceful_shutdown=1)


_ids = itertools.count(1)


class User:
    """A person in a private chat with the bot: types, taps buttons, shares a phone number.

    Each action waits until the bot has answered it (the calls the proxy saw for this chat), then
    :attr:`screen` is the latest message as the chat shows it.
    """

    def __init__(self, standin: str, observed: Observed, chat_id: int | None = None, language_code: str = "vi") -> None:
        self.standin, self.observed = standin, observed
        self.chat_id = chat_id or 7_000_000 + next(_ids)
        self.person = {"id": self.chat_id, "is_bot": False, "first_name": "Lan", "language_code": language_code}
        self.client = httpx.Client(timeout=30)

    def _message(self, **fields: Any) -> dict[str, Any]:
        return {
            "botToken": TOKEN,
            "from": self.person,
            "chat": {"id": self.chat_id, "type": "private", "first_name": "Lan"},
            "date": int(time.time()),
            **fields,
        }

    def _wait(self, mark: int, done: Any, seconds: float = 20.0) -> list[tuple[str, dict[str, Any]]]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            calls = [c for c in self.observed.since(mark) if _chat_of(c[1]) in (self.chat_id, None)]
            if done(calls):
                time.sleep(0.05)  # a call that follows at once (the link offer after /start)
                return [c for c in self.observed.since(mark) if _chat_of(c[1]) in (self.chat_id, None)]
            time.sleep(0.02)
        raise TimeoutError(f"the bot did not answer chat {self.chat_id}: {self.observed.since(mark)[-5:]}")

    def say(self, text: str, *, answers: int = 1) -> str:
        """Type ``text`` (a command when it starts with "/"); returns the bot's latest message text."""
        mark = self.observed.mark()
        if text.startswith("/"):
            word = text.split()[0]
            body = self._message(text=text, entities=[{"type": "bot_command", "offset": 0, "length": len(word)}])
            self.client.post(f"{self.standin}/sendCommand", json=body).raise_for_status()
        else:
            self.client.post(f"{self.standin}/sendMessage", json=self._message(text=text)).raise_for_status()
        self._wait(mark, lambda calls: sum(1 for name, _ in calls if name == "sendMessage") >= answers)
        return self.screen.text

    def share_phone(self, phone: str, *, own: bool = True) -> str:
        """Tap "share my phone number" (``own``), or send someone else's contact card."""
        mark = self.observed.mark()
        contact = {"phone_number": phone, "first_name": "Lan", "user_id": self.chat_id if own else self.chat_id + 1}
        self.client.post(f"{self.standin}/sendMessage", json=self._message(contact=contact)).raise_for_status()
        self._wait(mark, lambda calls: any(name == "sendMessage" for name, _ in calls))
        return self.screen.text

    def press(self, label: str, message: Shown | None = None) -> str:
        """Tap the button whose text holds ``label`` on ``message`` (the latest one with buttons)."""
        target = message or next(m for m in reversed(self.shown) if m.buttons)
        data = next(
            (b["callback_data"] for row in target.buttons for b in row if label in b["text"]),
            None,
        )
        if data is None:
            raise LookupError(f"no button {label!r} in {[b['text'] for row in target.buttons for b in row]}")
        return self.press_data(data, target)

    def press_data(self, data: str, target: Shown) -> str:
        """Send a callback with ``data`` (forged, perhaps) from the message ``target``."""
        mark = self.observed.mark()
        query = {
            "botToken": TOKEN,
            "from": self.person,
            "message": {
                "message_id": target.message_id,
                "chat": {"id": self.chat_id, "type": "private", "first_name": "Lan"},
                "date": int(time.time()),
                "text": target.text,
            },
            "data": data,
        }
        self.client.post(f"{self.standin}/sendCallback", json=query).raise_for_status()
        self._wait(mark, lambda calls: any(name == "answerCallbackQuery" for name, _ in calls))
        calls = self._wait(mark, lambda calls: _answered(calls))
        if any(name == "sendMessage" for name, _ in calls):
            return self.screen.text
        return next((m.text for m in self.shown if m.message_id == target.message_id), self.screen.text)

    @property
    def shown(self) -> list[Shown]:
        with self.observed.lock:
            return list(self.observed.chats.get(self.chat_id, []))

    @property
    def screen(self) -> Shown:
        """The bot's latest message in this chat, as shown now."""
        return self.shown[-1]

    def buttons(self, message: Shown | None = None) -> list[str]:
        """The texts of the inline buttons of ``message`` (the latest one), row by row."""
        target = message or self.screen
        return [b["text"] for row in target.buttons for b in row]

    def close(self) -> None:
        self.client.close()


def _chat_of(params: dict[str, Any]) -> int | None:
    try:
        return int(params["chat_id"]) if "chat_id" in params else None
    except (TypeError, ValueError):
        return None


def _answered(calls: list[tuple[str, dict[str, Any]]]) -> bool:
    """A press is answered by an edit, a new message, or a notice on the button itself."""
    names = [name for name, _ in calls]
    if "editMessageText" in names or "sendMessage" in names:
        return True
    return any(name == "answerCallbackQuery" and params.get("text") for name, params in calls)
