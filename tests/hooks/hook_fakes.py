"""Transport-level fakes for the hook tests: a scripted service behind requests and httpx.

The fake sits exactly where the network would: a requests adapter for the sync hook and an
``httpx.MockTransport`` for the async hook, both answering from one :class:`FakeService`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

API = "https://api.cm.test"
AUTH = "https://auth.cm.test/oauth2/token"
CLIENT_ID = "client-id-1234"
CLIENT_SECRET = "client-secret-VERY-SECRET-5678"


@dataclass
class Exchange:
    """One request the fake received."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


@dataclass
class Reply:
    """What the fake answers."""

    status: int = 200
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, body: Any, status: int = 200, **headers: str) -> Reply:
        return cls(
            status, json.dumps(body).encode(), {"content-type": "application/json", **headers}
        )


Handler = Callable[[Exchange], "Reply | Exception"]


class FakeService:
    """A scripted API and token endpoint.

    Routes map a path to a handler or to a list of replies served in order (the last one
    repeats). The token endpoint issues ``token-1``, ``token-2``, ... unless scripted with
    replies or handlers.
    """

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.routes: dict[str, Handler | list[Reply | Exception]] = {}
        self.token_replies: list[Reply | Exception | Handler] = []
        self.expires_in: Any = 3600
        self.tokens_issued = 0

    @property
    def token_requests(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.url.split("?")[0] == AUTH]

    @property
    def api_requests(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.url.startswith(API)]

    def on(self, path: str, *replies: Reply | Exception | Handler) -> None:
        if len(replies) == 1 and callable(replies[0]) and not isinstance(replies[0], Exception):
            self.routes[path] = replies[0]
        else:
            self.routes[path] = list(replies)  # type: ignore[arg-type]

    def handle(self, exchange: Exchange) -> Reply:
        self.exchanges.append(exchange)
        if exchange.url.split("?")[0] == AUTH:
            outcome = self._next(self.token_replies) if self.token_replies else self._issue()
            if callable(outcome) and not isinstance(outcome, Exception):
                outcome = outcome(exchange)
        else:
            script = self.routes.get(exchange.path)
            if script is None:
                outcome = Reply.json({"detail": "Not Found"}, 404)
            elif callable(script):
                outcome = script(exchange)
            else:
                outcome = self._next(script)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _issue(self) -> Reply:
        self.tokens_issued += 1
        body = {"access_token": f"token-{self.tokens_issued}-abcdefgh", "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return Reply.json(body)

    @staticmethod
    def _next(script: list[Any]) -> Any:
        return script.pop(0) if len(script) > 1 else script[0]


class FakeAdapter(BaseAdapter):
    """A requests adapter that answers from a :class:`FakeService`."""

    def __init__(self, service: FakeService) -> None:
        super().__init__()
        self.service = service

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = request.body or b""
        exchange = Exchange(
            method=str(request.method),
            url=str(request.url),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body.encode() if isinstance(body, str) else bytes(body),
        )
        reply = self.service.handle(exchange)
        response = requests.Response()
        response.status_code = reply.status
        response.headers = CaseInsensitiveDict(reply.headers)
        response.raw = io.BytesIO(reply.content)
        response.url = exchange.url
        response.request = request
        return response

    def close(self) -> None:
        pass


def mock_transport(service: FakeService) -> httpx.MockTransport:
    """Return an httpx transport that answers from a :class:`FakeService`."""

    def handler(request: httpx.Request) -> httpx.Response:
        exchange = Exchange(
            method=request.method,
            url=str(request.url),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=request.read(),
        )
        try:
            reply = service.handle(exchange)
        except requests.ConnectionError as error:
            raise httpx.ConnectError("refused", request=request) from error
        except requests.Timeout as error:
            raise httpx.ReadTimeout("slow", request=request) from error
        return httpx.Response(reply.status, headers=reply.headers, content=reply.content)

    return httpx.MockTransport(handler)


class ManualClock:
    """A clock that moves only when told; epoch seconds."""

    def __init__(self, start: float = 1_796_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
