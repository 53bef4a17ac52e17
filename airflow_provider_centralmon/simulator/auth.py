"""The simulated Cognito token endpoint and the bearer-token check of the API routes.

Tokens are HS256 JWTs signed with a key made for each simulator instance, so a token from
another instance is refused as forged. Their expiry is judged on the simulator clock.
Error replies follow RFC 6749 section 5.2 with only the ``error`` member, as Cognito sends.
Limitation: Cognito's choice between 400 and 401 for ``invalid_client`` is not documented;
the simulator answers 401 when the credentials came as HTTP Basic and 400 otherwise.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import jwt

from airflow_provider_centralmon.simulator.clock import Clock
from airflow_provider_centralmon.simulator.search import RequestError
from airflow_provider_centralmon.simulator.settings import ClientConfig, SimulatorSettings

ISSUER = "centralmon-simulator"


class OAuthError(Exception):
    """A token request the endpoint refuses; ``error`` is the RFC 6749 code."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


@dataclass(frozen=True)
class Principal:
    """Who a valid access token speaks for."""

    client_id: str
    scopes: tuple[str, ...]
    routes: frozenset[str] | None


class TokenAuthority:
    """Issues and checks access tokens.

    :param settings: simulator settings (clients, token lifetime)
    :param clock: the simulator clock
    """

    def __init__(self, *, settings: SimulatorSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._clients = {client.client_id: client for client in settings.clients}
        self._lock = threading.Lock()
        # Each token carries the generation it was issued in; revoking bumps the floor.
        self._generation = 0
        self._valid_from_generation = 0

    def revoke_all(self) -> None:
        """Make every token issued so far invalid (the next use answers 401)."""
        with self._lock:
            self._generation += 1
            self._valid_from_generation = self._generation

    def forgive_revocations(self) -> None:
        """Make revoked tokens valid again (those not expired), as if never revoked."""
        with self._lock:
            self._valid_from_generation = 0

    def issue(self, body: bytes, authorization: str | None) -> dict[str, Any]:
        """Answer a token request; raise :class:`OAuthError` when refusing it."""
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        basic = _basic_credentials(authorization)
        client_id, secret = basic if basic else (form.get("client_id"), form.get("client_secret"))
        client_error_status = 401 if basic else 400

        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError(400, "invalid_request")
        if grant_type != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type")

        client = self._clients.get(client_id or "")
        if client is None or not secrets.compare_digest(
            (secret or "").encode(), client.client_secret.encode()
        ):
            raise OAuthError(client_error_status, "invalid_client")
        if not client.allow_client_credentials:
            raise OAuthError(400, "unauthorized_client")

        scopes = _granted_scopes(client, form.get("scope"))
        return {
            "access_token": self._sign(client, scopes),
            "expires_in": self._settings.token_lifetime_s,
            "token_type": "Bearer",
        }

    def verify(self, authorization: str | None) -> Principal:
        """Return who a bearer token speaks for; raise :class:`RequestError` (401) if invalid."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise RequestError(401, "Missing or malformed Authorization header")

        try:
            claims = jwt.decode(
                token.strip(),
                self._key,
                algorithms=["HS256"],
                options={
                    # Time is judged below on the simulator clock, not the wall clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "client_id", "scope"],
                },
                issuer=ISSUER,
            )
        except jwt.PyJWTError:
            raise RequestError(401, "Invalid access token") from None

        if claims["exp"] <= self._clock.now().timestamp():
            raise RequestError(401, "Access token expired")
        with self._lock:
            if claims.get("gen", -1) < self._valid_from_generation:
                raise RequestError(401, "Access token revoked")
        client = self._clients.get(claims["client_id"])
        routes = client.routes if client else frozenset()
        return Principal(claims["client_id"], tuple(claims["scope"].split()), routes)

    def _sign(self, client: ClientConfig, scopes: tuple[str, ...]) -> str:
        issued_at = int(self._clock.now().timestamp())
        with self._lock:
            generation = self._generation
        claims = {
            "iss": ISSUER,
            "sub": client.client_id,
            "client_id": client.client_id,
            "token_use": "access",
            "scope": " ".join(scopes),
            "iat": issued_at,
            "exp": issued_at + self._settings.token_lifetime_s,
            "jti": uuid.uuid4().hex,
            "gen": generation,
        }
        return jwt.encode(claims, self._key, algorithm="HS256")


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(401, "invalid_client") from None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise OAuthError(401, "invalid_client")
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before being joined.
    return unquote_plus(client_id), unquote_plus(secret)


def _granted_scopes(client: ClientConfig, requested: str | None) -> tuple[str, ...]:
    if not requested:
        return client.scopes
    scopes = tuple(requested.split())
    if any(scope not in client.scopes for scope in scopes):
        raise OAuthError(400, "invalid_scope")
    return scopes
