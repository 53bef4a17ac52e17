"""Wire format of the OAuth2 client-credentials grant (RFC 6749, section 4.4). No I/O.

The hooks send what :func:`token_request` builds and hand the reply to
:func:`read_token_reply`, which either returns a token or raises the error to report.
Messages are built from the endpoint's ``error``/``error_description`` and the connection's
field names, never from the request, which holds the client secret.
"""

from __future__ import annotations

import base64
import logging
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from airflow_provider_centralmon._compat import mask_secret
from airflow_provider_centralmon.exceptions import (
    AuthenticationError,
    CentralMonitoringError,
    ProtocolError,
    ServiceError,
)
from airflow_provider_centralmon.hooks._replies import (
    RawReply,
    decode_json,
    describe_body,
    oauth_error_of,
)
from airflow_provider_centralmon.hooks._settings import ConnectionSettings
from airflow_provider_centralmon.hooks._token import UNKNOWN_LIFETIME_S, AccessToken

log = logging.getLogger(__name__)

# A stated lifetime beyond a day is not believed: a token must be renewed now and then.
MAX_LIFETIME_S = 86_400.0

# OAuth2 error codes (RFC 6749, 5.2) that no retry can fix: the connection must change.
_CREDENTIAL_ERRORS = frozenset(
    {"invalid_client", "unauthorized_client", "invalid_grant", "unsupported_grant_type"}
)


@dataclass(frozen=True)
class TokenRequest:
    """A ready-to-send token request.

    :param url: the token endpoint
    :param form: form fields of the body
    :param headers: request headers
    """

    url: str
    form: dict[str, str] = field(repr=False)
    headers: dict[str, str] = field(repr=False)


def token_request(settings: ConnectionSettings) -> TokenRequest:
    """Build the client-credentials request for a connection's settings."""
    form = {"grant_type": "client_credentials"}
    headers = {"Accept": "application/json"}
    if settings.auth_method == "client_secret_basic":
        # RFC 6749, 2.3.1: both parts are form-urlencoded before joining them.
        pair = f"{quote(settings.client_id, safe='')}:{quote(settings.client_secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    else:
        form["client_id"] = settings.client_id
        form["client_secret"] = settings.client_secret
    if settings.scope:
        form["scope"] = settings.scope
    return TokenRequest(url=settings.auth_url, form=form, headers=headers)


def read_token_reply(reply: RawReply, settings: ConnectionSettings, now: float) -> AccessToken:
    """Return the token in a reply of the token endpoint, or raise the matching error.

    :param reply: the token endpoint's reply
    :param settings: settings of the connection that asked
    :param now: when the request was sent, epoch seconds
    """
    if reply.status != 200:
        raise token_error(reply, settings)

    body = decode_json(reply.content, "The token endpoint")
    value = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise ProtocolError("The token endpoint replied 200 without an access_token")
    mask_secret(value)

    token_type = body.get("token_type")
    if isinstance(token_type, str) and token_type.lower() != "bearer":
        log.warning(
            "The token endpoint issued a %r token; sending it as a Bearer token", token_type
        )
    lifetime_s = _lifetime_s(body.get("expires_in"))
    token = AccessToken(
        value=value,
        obtained_at=now,
        lifetime_s=lifetime_s or UNKNOWN_LIFETIME_S,
        lifetime_known=lifetime_s is not None,
    )
    log.info(
        "Obtained an access token with the login/password of connection %r from %s; "
        "it expires at %s",
        settings.conn_id,
        settings.auth_url,
        token.expiry_text(),
    )
    return token


def _lifetime_s(raw: Any) -> float | None:
    """Read ``expires_in`` defensively: missing, non-numeric or non-positive means unknown."""
    if isinstance(raw, bool):
        return None
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return min(seconds, MAX_LIFETIME_S)


def token_error(reply: RawReply, settings: ConnectionSettings) -> CentralMonitoringError:
    """Build the exception for a refused or failed token request."""
    code = oauth_error_of(reply)
    detail = describe_body(reply, (settings.client_secret,))
    endpoint = f"The token endpoint {settings.auth_url} answered {reply.status}"
    if code == "invalid_scope":
        return AuthenticationError(
            f"{endpoint}: {detail}. Fix extra `scope` of connection {settings.conn_id!r} "
            "(empty requests every scope the client is allowed)",
            oauth_error=code,
            http_status=reply.status,
        )
    if code in _CREDENTIAL_ERRORS or reply.status in (400, 401, 403):
        return AuthenticationError(
            f"{endpoint}: {detail}. Check the login (client id) and password (client secret) "
            f"of connection {settings.conn_id!r}",
            oauth_error=code,
            http_status=reply.status,
        )
    if reply.status == 429 or reply.status >= 500:
        return ServiceError(f"{endpoint}: {detail}", http_status=reply.status)
    return ProtocolError(f"{endpoint}: {detail}", http_status=reply.status)
