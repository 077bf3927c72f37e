"""Messages we send through Twilio that are not a direct reply (opt-in notices now, alerts later).

Built on the real ``twilio.rest.Client``; its HTTP client honours ``OUTAGEBOT_TWILIO_API_URL`` so that
tests talk to Stoplight Prism serving Twilio's own OpenAPI spec. Every outcome is a :class:`SendResult`
whose ``outcome`` tells the caller what to do next: done, never again, or later.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bot.channels.base import Outcome, SendResult
from bot.config import Settings
from bot.security import mask

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
OPTED_OUT = 21610  # "Attempt to send to unsubscribed recipient"
PERMANENT = {21211, 21212, 21214, 21217, 21219, 21407, 21408, 21606, 21612, 21614, 21635, 30003, 30005, 30006}
TOO_MANY = 20429


class ApiUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Twilio's HTTP client, sending to another base URL (a local mock) when configured."""

    def __init__(self, api_url: str, timeout: float = 10.0) -> None:
        super().__init__(timeout=timeout)
        self.api_url = api_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.api_url != TWILIO_API and url.startswith(TWILIO_API):
            url = self.api_url + url[len(TWILIO_API) :]
        response: Response = super().request(method, url, *args, **kwargs)
        return response


def _async_http_client(api_url: str, timeout: float) -> Any:
    """Twilio's asynchronous client to ``api_url``: made when first needed, so that commands that send
    nothing never import aiohttp."""
    import aiohttp
    from twilio.http.async_http_client import AsyncTwilioHttpClient

    class AsyncApiUrlHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
        """Twilio's asynchronous (aiohttp) client, to another base URL when configured, with one pooled
        session made in the running loop and a total timeout per request."""

        def __init__(self, api_url: str, timeout: float = 10.0) -> None:
            super().__init__(pool_connections=False)
            self.api_url = api_url.rstrip("/")
            self.total = timeout
            self.session: aiohttp.ClientSession | None = None

        def open(self) -> aiohttp.ClientSession:
            """The pooled session, made on first use (inside the running loop)."""
            if self.session is None or self.session.closed:
                self.session = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=self.total),
                    connector=aiohttp.TCPConnector(limit=256, limit_per_host=256),
                )
            return self.session

        async def request(
            self,
            method: str,
            url: str,
            params: Any = None,
            data: dict[str, object] | None = None,
            headers: dict[str, str] | None = None,
            auth: tuple[str, str] | None = None,
            timeout: float | None = None,
            allow_redirects: bool = False,
        ) -> Response:
            """One request on the pooled session (Twilio's own builds a deprecated ``BasicAuth`` each time)."""
            if self.api_url != TWILIO_API and url.startswith(TWILIO_API):
                url = self.api_url + url[len(TWILIO_API) :]
            session = self.open()
            sent = dict(headers or {})
            if auth is not None:
                sent["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            async with session.request(
                method.upper(), url, params=params, data=data, headers=sent, allow_redirects=allow_redirects
            ) as response:
                return Response(response.status, await response.text(), response.headers)

    return AsyncApiUrlHttpClient(api_url, timeout)


def classify_error(exc: TwilioRestException) -> SendResult:
    """Map a Twilio REST error to what to do about it."""
    code = exc.code
    if code == OPTED_OUT:
        return SendResult(Outcome.OPTED_OUT, error_code=code)
    if exc.status == 429 or code == TOO_MANY or exc.status >= 500:
        return SendResult(Outcome.TRANSIENT, error_code=code or exc.status)
    if code in PERMANENT or 400 <= exc.status < 500:
        return SendResult(Outcome.PERMANENT, error_code=code or exc.status)
    return SendResult(Outcome.TRANSIENT, error_code=code or exc.status)  # pragma: no cover


class TwilioSender:
    """Sends SMS with the configured number or Messaging Service, asking for status callbacks."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        if not settings.sms_enabled or settings.twilio_auth_token is None:
            raise ValueError("Twilio settings are incomplete")
        self.client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            http_client=ApiUrlHttpClient(settings.twilio_api_url, timeout),
        )
        self.sender: dict[str, str] = (
            {"messaging_service_sid": settings.twilio_messaging_service_sid}
            if settings.twilio_messaging_service_sid
            else {"from_": settings.twilio_from or ""}
        )
        self.status_callback = f"{(settings.public_url or '').rstrip('/')}/sms/status"
        # The shared send budget's name for this sender (Twilio's rate is per number or service).
        self.key = settings.twilio_messaging_service_sid or settings.twilio_from or "default"
        self._credentials = (settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value())
        self._api_url, self._timeout = settings.twilio_api_url, timeout
        self._async_http: Any = None
        self._async_client: Client | None = None

    def send(self, to: str, body: str) -> SendResult:
        """Send ``body`` to ``to``; never raises for a provider or network failure."""
        try:
            message = self.client.messages.create(to=to, body=body, status_callback=self.status_callback, **self.sender)
        except TwilioRestException as exc:
            result = classify_error(exc)
            log.warning("SMS to %s not accepted: %s %s", mask(to), exc.status, exc.code)
            return result
        except (requests.Timeout, requests.ConnectionError) as exc:
            log.warning("SMS to %s: Twilio unreachable (%s)", mask(to), type(exc).__name__)
            return SendResult(Outcome.TRANSIENT)
        return SendResult(Outcome.ACCEPTED, provider_id=message.sid)

    def _async(self) -> Client:
        if self._async_client is None:
            self._async_http = _async_http_client(self._api_url, self._timeout)
            self._async_client = Client(*self._credentials, http_client=self._async_http)
        return self._async_client

    async def prepare(self) -> None:
        """Make ready, before the first paced send, what the first send would otherwise make on its way
        out: aiohttp imported, the client and its session made, Twilio's message modules loaded (about
        0.15 s here). A paced send is checked against its slot just before it leaves; work done after
        that check made each worker's first message arrive late, on top of the next one's slot."""
        client = self._async()
        client.messages  # noqa: B018 - Twilio loads the API's modules on first access
        self._async_http.open()

    async def send_async(self, to: str, body: str) -> SendResult:
        """:meth:`send` on Twilio's asynchronous client: many in flight from one event loop."""
        import aiohttp

        try:
            message = await self._async().messages.create_async(
                to=to, body=body, status_callback=self.status_callback, **self.sender
            )
        except TwilioRestException as exc:
            result = classify_error(exc)
            log.warning("SMS to %s not accepted: %s %s", mask(to), exc.status, exc.code)
            return result
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("SMS to %s: Twilio unreachable (%s)", mask(to), type(exc).__name__)
            return SendResult(Outcome.TRANSIENT)
        return SendResult(Outcome.ACCEPTED, provider_id=message.sid)

    async def aclose(self) -> None:
        """Close the asynchronous client's connections."""
        if self._async_http is not None and self._async_http.session is not None:
            await self._async_http.session.close()
