"""Read a ``centralmon`` connection into a validated, immutable settings object.

Every mistake a user can make in the connection is reported here, once, with the name of the
field to fix, before any network traffic happens.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_centralmon._compat import mask_secret
from airflow_provider_centralmon._connection_form import (
    CONN_FIELDS,
    DEFAULT_API_URL,
    DEFAULT_AUTH_URL,
)
from airflow_provider_centralmon.exceptions import InvalidParameterError

if TYPE_CHECKING:
    from airflow_provider_centralmon._compat import Connection

log = logging.getLogger(__name__)

# Documented default path of each operation. The V1 scroll route is announced as deprecated
# from 2026-03-01, so V2 is the default. The batch routes are announced as deprecated too but
# have no documented V2 yet, so they stay the default without a warning.
DEFAULT_ROUTES: Mapping[str, str] = {
    "scroll": "/v2/logs/scroll",
    "batch": "/v1/logs/batch",
    "batch_urls": "/v1/logs/batch/urls",
    "query": "/v1/query",
}
DEPRECATED_ROUTES = frozenset({"/v1/logs/scroll", "/v1/logs/batch"})
DEFAULT_TIMEOUT_S = 60.0
AUTH_METHODS = ("client_secret_post", "client_secret_basic")
EXTRA_PREFIX = "extra__centralmon__"
# The connection form declares every extra the hook reads; anything else is refused.
KNOWN_EXTRAS = frozenset(CONN_FIELDS)
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
# A URL path (RFC 3986, 3.3): a CR or LF here would end the request line and start a header.
_ROUTE_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*")
# Keys the digest of client secrets in token keys: random per process, so a digest seen in a
# debugger or a heap dump cannot be checked against guessed secrets anywhere else.
_SECRET_DIGEST_KEY = os.urandom(32)


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything the hooks need from a ``centralmon`` connection, validated.

    :param conn_id: id of the connection the settings came from
    :param base_url: API base URL without a trailing slash
    :param auth_url: OAuth2 token endpoint
    :param client_id: OAuth2 client id (the connection's login)
    :param client_secret: OAuth2 client secret (the connection's password); never shown
    :param scope: OAuth2 scope to request, or None to request none
    :param routes: operation name to path, defaults merged with overrides
    :param overridden: operation names whose path the connection set explicitly
    :param timeout_s: seconds to connect, and to wait for each read of a reply; not a limit on
        a whole request, whose reply may arrive in many reads
    :param verify: True, False, or the path of a CA bundle
    :param auth_method: ``client_secret_post`` (form body) or ``client_secret_basic``
    """

    conn_id: str
    base_url: str
    auth_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None
    routes: Mapping[str, str]
    overridden: frozenset[str]
    timeout_s: float
    verify: bool | str
    auth_method: str

    @property
    def token_key(self) -> tuple[str, str, str | None, str]:
        """Identify the token these settings share with every other user in the process.

        The client secret is part of it, as a keyed digest: a connection with the same client
        id but another (perhaps wrong) secret must obtain its own token, not borrow one.
        """
        digest = hmac.new(_SECRET_DIGEST_KEY, self.client_secret.encode(), hashlib.sha256)
        return (self.auth_url, self.client_id, self.scope, digest.hexdigest())

    def route(self, operation: str) -> str:
        """Return the path of an operation."""
        return self.routes[operation]


def settings_from_connection(conn: Connection) -> ConnectionSettings:
    """Validate a connection and return its settings.

    :param conn: an Airflow connection of type ``centralmon``
    """
    conn_id = str(conn.conn_id)
    extras = _read_extras(conn_id, _extra_object(conn_id, conn.extra))
    client_id, client_secret = _credentials(conn_id, conn.login, conn.password)

    base_url = _base_url(conn_id, conn.host, conn.schema, conn.port)
    auth_url = _checked_url(conn_id, "extra `auth_url`", extras.get("auth_url") or DEFAULT_AUTH_URL)
    routes, overridden = _routes(conn_id, extras.get("routes"))

    settings = ConnectionSettings(
        conn_id=conn_id,
        base_url=base_url,
        auth_url=auth_url,
        client_id=client_id,
        client_secret=client_secret,
        scope=_optional_text(extras.get("scope")),
        routes=routes,
        overridden=overridden,
        timeout_s=_timeout(conn_id, extras.get("timeout")),
        verify=_verify(conn_id, extras.get("verify")),
        auth_method=_auth_method(conn_id, extras.get("auth_method")),
    )
    log.debug(
        "Read connection %r: API %s, token endpoint %s, credentials from its login/password",
        conn_id,
        base_url,
        auth_url,
    )
    return settings


def _extra_object(conn_id: str, raw: Any) -> Mapping[str, Any]:
    # Not Airflow's extra_dejson: it logs malformed JSON and returns {}, which would send the
    # connection's calls to the production defaults instead of the hosts it names.
    if isinstance(raw, Mapping):
        return raw
    if raw is None or not str(raw).strip():
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as error:
        # Where the JSON breaks, never the text around it.
        problem = f"not valid JSON (error at character {error.pos})"
    else:
        if isinstance(parsed, dict):
            return parsed
        problem = f"a JSON {type(parsed).__name__}"
    raise InvalidParameterError(
        f"Connection {conn_id!r}: extra must be a JSON object of settings, such as "
        f'{{"timeout": 30}}; it is {problem}'
    )


def _read_extras(conn_id: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    # The connection form of Airflow 2 stores fields with a prefix; JSON extras are bare. Empty
    # form fields arrive as "" and mean "not set".
    extras: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.removeprefix(EXTRA_PREFIX)
        if name not in KNOWN_EXTRAS:
            known = ", ".join(sorted(KNOWN_EXTRAS))
            raise InvalidParameterError(
                f"Connection {conn_id!r} has an unknown extra {name!r}; known extras: {known}"
            )
        if value is None or value == "":
            continue
        if name in extras and extras[name] != value:
            raise InvalidParameterError(
                f"Connection {conn_id!r} sets extra {name!r} twice with different values "
                f"(bare and {EXTRA_PREFIX}-prefixed); keep one"
            )
        extras[name] = value
    return extras


def _credentials(conn_id: str, login: str | None, password: str | None) -> tuple[str, str]:
    if password:
        mask_secret(password)
    if not login or not login.strip() or not password or not password.strip():
        raise InvalidParameterError(
            f"Connection {conn_id!r} needs the client id as login and the client secret as password"
        )
    return login.strip(), password


def _base_url(conn_id: str, host: str | None, schema: str | None, port: int | None) -> str:
    host = (host or "").strip()
    if not host:
        return DEFAULT_API_URL
    if "://" not in host:
        # The schema field carries the URL scheme for HTTP-like connections; default https.
        scheme = (schema or "https").strip().lower()
        host = f"{scheme}://{host}"
    parts = urlsplit(host)
    if port and parts.port is None:
        host = parts._replace(netloc=f"{parts.netloc}:{port}").geturl()
    return _checked_url(conn_id, "host", host).rstrip("/")


def _checked_url(conn_id: str, what: str, url: str) -> str:
    try:
        parts = urlsplit(str(url).strip())
        hostname = parts.hostname
        parts.port  # noqa: B018 -- reading it validates the port number
    except ValueError as error:
        raise InvalidParameterError(
            f"Connection {conn_id!r}: {what} is not a valid URL ({error})"
        ) from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise InvalidParameterError(
            f"Connection {conn_id!r}: {what} must be an http(s) URL with a host name"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidParameterError(
            f"Connection {conn_id!r}: {what} must not carry a query, fragment or user info"
        )
    if parts.scheme == "http" and not is_loopback(hostname):
        # Tokens and client secrets would cross the network in clear text.
        raise InvalidParameterError(
            f"Connection {conn_id!r}: {what} must use https:// (plain http:// is accepted "
            "only for loopback hosts such as 127.0.0.1 or localhost)"
        )
    return parts.geturl()


def is_loopback(hostname: str) -> bool:
    """Tell whether a host name or address is this machine (127.0.0.0/8, ::1, localhost)."""
    if hostname.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _routes(conn_id: str, raw: Any) -> tuple[Mapping[str, str], frozenset[str]]:
    if raw is None:
        return dict(DEFAULT_ROUTES), frozenset()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise InvalidParameterError(
                f"Connection {conn_id!r}: extra `routes` must be a JSON object such as "
                f'{{"scroll": "/v2/logs/scroll"}}'
            ) from None
    if not isinstance(raw, Mapping):
        raise InvalidParameterError(
            f"Connection {conn_id!r}: extra `routes` must be an object, operation to path"
        )
    routes = dict(DEFAULT_ROUTES)
    for operation, path in raw.items():
        if operation not in DEFAULT_ROUTES:
            known = ", ".join(DEFAULT_ROUTES)
            raise InvalidParameterError(
                f"Connection {conn_id!r}: extra `routes` names an unknown operation "
                f"{operation!r}; known operations: {known}"
            )
        if not isinstance(path, str) or not _ROUTE_PATH.fullmatch(path):
            raise InvalidParameterError(
                f"Connection {conn_id!r}: the route of {operation!r} must be a path starting "
                "with '/', of URL path characters only (no query, fragment, space or control "
                "character)"
            )
        routes[operation] = path
    for operation, path in raw.items():
        if path in DEPRECATED_ROUTES:
            log.warning(
                "Connection %r routes %r to %s, which the vendor announced as deprecated "
                "from 2026-03-01",
                conn_id,
                operation,
                path,
            )
    return routes, frozenset(raw)


def _optional_text(raw: Any) -> str | None:
    text = str(raw).strip() if raw is not None else ""
    return text or None


def _timeout(conn_id: str, raw: Any) -> float:
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        timeout_s = float(raw)
    except (TypeError, ValueError):
        timeout_s = -1.0
    if not 0 < timeout_s <= 3600 or isinstance(raw, bool):
        raise InvalidParameterError(
            f"Connection {conn_id!r}: extra `timeout` must be a number of seconds between 0 "
            f"and 3600, got {raw!r}"
        )
    return timeout_s


def _verify(conn_id: str, raw: Any) -> bool | str:
    if raw is None or isinstance(raw, bool):
        return True if raw is None else raw
    text = str(raw).strip()
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        log.warning("Connection %r disables TLS certificate verification", conn_id)
        return False
    if not os.path.exists(text):
        raise InvalidParameterError(
            f"Connection {conn_id!r}: extra `verify` must be true, false or the path of a CA "
            f"bundle; {text!r} does not exist"
        )
    check_ca_bundle(conn_id, text)
    return text


def check_ca_bundle(conn_id: str, path: str) -> ssl.SSLContext:
    """Load a CA bundle file, or raise :class:`InvalidParameterError` naming extra `verify`.

    Both hooks then fail alike, before any request, on a directory or a file without
    certificates (the async hook builds its TLS context from the file, the sync hook would
    only fail when connecting).
    """
    if not os.path.isfile(path):
        raise InvalidParameterError(
            f"Connection {conn_id!r}: extra `verify` must name a CA bundle file; {path!r} is not "
            "a file"
        )
    try:
        return ssl.create_default_context(cafile=path)
    except (OSError, ValueError) as error:
        # ssl.SSLError is an OSError; its text names the OpenSSL failure, not the content.
        reason = type(error).__name__
    raise InvalidParameterError(
        f"Connection {conn_id!r}: extra `verify` names {path!r}, which holds no readable PEM "
        f"certificates ({reason})"
    )


def _auth_method(conn_id: str, raw: Any) -> str:
    method = _optional_text(raw) or AUTH_METHODS[0]
    if method not in AUTH_METHODS:
        raise InvalidParameterError(
            f"Connection {conn_id!r}: extra `auth_method` must be one of "
            f"{', '.join(AUTH_METHODS)}, got {method!r}"
        )
    return method
