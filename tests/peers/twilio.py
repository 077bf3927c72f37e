"""Local stand-ins for Twilio's REST API, written by others, started by the tests.

- Stoplight Prism (npm ``@stoplight/prism-cli``) serving Twilio's own OpenAPI spec
  (``../shared/peers/twilio_api_v2010.json``): it validates every request our twilio Client sends
  and answers like Twilio (dynamic mode: a fresh ``SM...`` sid each time).
- A fault layer of our own in front of it, for what Prism cannot do: error codes, rate limits,
  server errors and timeouts, chosen by the recipient number. Everything else goes on to Prism.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[2]
PRISM = ROOT / "node_modules" / ".bin" / "prism"
# Twilio's published OpenAPI spec of the 2010-04-01 API (twilio/twilio-oai, MIT licence), as shared/peers
# has it; a copy lives here so that the tests do not depend on where the repository is checked out.
SPEC = Path(os.environ.get("OUTAGEBOT_TWILIO_SPEC", Path(__file__).with_name("twilio_api_v2010.json")))

# recipient number -> (HTTP status, Twilio error code, message); "timeout" hangs instead.
FAULTS: dict[str, tuple[int, int, str] | str] = {
    "+12135550101": (400, 21211, "The 'To' number is not a valid phone number."),
    "+12135550102": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "+12135550103": (429, 20429, "Too Many Requests"),
    "+12135550104": (500, 20500, "Internal Server Error"),
    "+12135550105": "timeout",
    "+12135550106": (400, 21614, "'To' number is not a valid mobile number"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port}")


def start_prism() -> Iterator[str]:
    """Run Prism on a free loopback port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [str(PRISM), "mock", "-d", "-h", "127.0.0.1", "-p", str(port), str(SPEC)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


SENT: list[str] = []  # every recipient the layer was asked to send to, in order (for counting in tests)


class Arrival(NamedTuple):
    """One message the layer was asked to send: its recipient, when it arrived (``time.monotonic()``),
    its body, and the HTTP status it was answered (2xx: the provider took it; recorded once answered)."""

    to: str
    at: float
    body: str
    status: int

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


ARRIVALS: list[Arrival] = []  # the same requests, as answered (to count duplicates and rates)


def fault_layer(upstream: str) -> Starlette:
    clients: list[httpx.AsyncClient] = []

    async def messages(request: Request) -> Response:
        arrived = time.monotonic()
        body = await request.body()
        form = dict(httpx.QueryParams(body.decode()))
        SENT.append(form.get("To", ""))

        def answered(status: int) -> None:
            ARRIVALS.append(Arrival(form.get("To", ""), arrived, form.get("Body", ""), status))

        fault = FAULTS.get(form.get("To", ""))
        if fault == "timeout":
            await asyncio.sleep(5)
            answered(504)
            return Response(status_code=504)
        if isinstance(fault, tuple):
            status, code, message = fault
            answered(status)
            return JSONResponse(
                {"code": code, "message": message, "more_info": "", "status": status}, status_code=status
            )
        if not clients:  # one client for the layer's life (made in its loop): a new one costs ~0.1 s here
            clients.append(httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)))
        try:
            answer = await clients[0].request(
                request.method,
                upstream + request.url.path,
                content=body,
                headers={k: v for k, v in request.headers.items() if k != "host"},
            )
        except httpx.HTTPError:
            answered(502)
            raise
        answered(answer.status_code)
        return Response(answer.content, status_code=answer.status_code, media_type=answer.headers.get("content-type"))

    return Starlette(routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", messages, methods=["POST"])])


def start_fault_layer(upstream: str) -> Iterator[str]:
    """Serve the fault layer on a free loopback port, in a thread; yields its base URL."""
    return serve_in_thread(fault_layer(upstream))


def serve_in_thread(app: Starlette, **config: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port, in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def describe() -> str:
    return json.dumps({"prism": str(PRISM), "spec": str(SPEC)})
