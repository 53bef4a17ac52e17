"""Read the service's replies: both envelopes, every error-body shape, and the errors to raise.

Pure functions over (status, headers, bytes), shared by the sync and the async hook so that
an error means the same thing on both paths.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urljoin, urlsplit

import msgspec

from airflow_provider_centralmon.exceptions import (
    AuthenticationError,
    BadRequestError,
    CentralMonitoringError,
    InvalidParameterError,
    PermissionDeniedError,
    ProtocolError,
    QuotaExhaustedError,
    ServiceError,
)

MAX_DETAIL_CHARS = 240
# Airflow's secret masker also leaves values this short alone.
MIN_SECRET_CHARS = 5
# Request body fields that are credentials: a scroll cursor, a batch token.
_SECRET_BODY_FIELDS = ("scroll_id", "token")
# A quota count fits in far fewer digits; int() refuses a string of thousands.
MAX_COUNT_DIGITS = 18
# How deep the search for an error message follows nested objects, lists and JSON strings.
MAX_MESSAGE_DEPTH = 8
# Only the start of a body can end up in the characters shown; the rest is never parsed.
MAX_SCANNED_CHARS = 64 * 1024
# No pattern below can backtrack over more than one tag: a tag ends at the next "<" at the
# latest, and closing tags are searched once, from where their opening tag ended. So even a
# page of unclosed tags is read in linear time (a trigger must never block its event loop).
_TAG = re.compile(r"<[^<>]*+>")
_HIDDEN_OPEN = re.compile(r"<(script|style)\b", re.IGNORECASE)
_HIDDEN_CLOSE = {name: re.compile(rf"</{name}\s*+>", re.IGNORECASE) for name in ("script", "style")}
_TITLE_OPEN = re.compile(r"<title\b[^<>]*+>", re.IGNORECASE)
_TITLE_CLOSE = re.compile(r"</title\s*+>", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
# Top-level fields of the documented V1 replies; next to them, ``data`` is payload.
V1_PAYLOAD_FIELDS = frozenset(
    {"logs", "scroll_id", "has_more", "token", "presigned_urls", "daily_requests_remaining"}
)


@dataclass(frozen=True)
class RawReply:
    """An HTTP reply as bytes, independent of the HTTP library that fetched it.

    :param status: HTTP status
    :param headers: reply headers with lower-case names
    :param content: the body
    :param secrets: the secrets its request carried (see :func:`request_secrets`), blanked
        from any text built from the reply
    """

    status: int
    headers: Mapping[str, str] = field(repr=False)
    content: bytes = field(repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Envelope:
    """A successful reply with the envelope taken apart.

    :param payload: the V1 top-level object, or the V2 ``data``
    :param request_id: V2 ``meta.request_id`` or the ``x-request-id`` header
    :param daily_remaining: calls left today, when the reply says so
    """

    payload: Any
    request_id: str | None
    daily_remaining: int | None


def decode_json(content: bytes, what: str) -> Any:
    """Decode a JSON body, raising :class:`ProtocolError` for empty or malformed bytes."""
    if not content.strip():
        raise ProtocolError(f"{what} replied with an empty body where JSON was expected")
    try:
        return msgspec.json.decode(content)
    except (msgspec.DecodeError, RecursionError):
        # RecursionError: nested deeper than the decoder follows, no reply the API sends.
        raise ProtocolError(
            f"{what} replied with malformed or truncated JSON, or JSON nested too deeply "
            f"({len(content)} bytes)"
        ) from None


def unwrap(reply: RawReply, route: str) -> Envelope:
    """Decode a successful reply of either envelope version.

    A reply is a V2 envelope when it is an object with a ``data`` key and either its ``meta``
    is an object or it holds none of the V1 payload fields (:data:`V1_PAYLOAD_FIELDS`). So a
    V2 reply whose ``meta`` is null, missing or garbled still yields its ``data`` (only the
    request id and quota are then unknown), while a V1 payload that happens to hold a
    ``data`` field next to V1 fields stays whole.
    """
    body = decode_json(reply.content, route)
    header_request_id = reply.headers.get("x-request-id") or None
    if not _is_v2_envelope(body):
        remaining = body.get("daily_requests_remaining") if isinstance(body, dict) else None
        return Envelope(body, header_request_id, _int_or_none(remaining))

    meta = body.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    rate_limit = meta.get("rate_limit")
    remaining = rate_limit.get("daily_remaining") if isinstance(rate_limit, dict) else None
    request_id = meta.get("request_id") or header_request_id
    return Envelope(body["data"], _text_or_none(request_id), _int_or_none(remaining))


def _is_v2_envelope(body: Any) -> bool:
    if not isinstance(body, dict) or "data" not in body:
        return False
    return isinstance(body.get("meta"), dict) or V1_PAYLOAD_FIELDS.isdisjoint(body)


def request_id_of(reply: RawReply) -> str | None:
    """Return the request id of any reply, error replies included."""
    body = _decoded_or_none(reply.content)
    meta = body.get("meta") if isinstance(body, dict) else None
    from_meta = meta.get("request_id") if isinstance(meta, dict) else None
    return _text_or_none(from_meta or reply.headers.get("x-request-id"))


def request_secrets(headers: Mapping[str, str] | None, body: Any) -> tuple[str, ...]:
    """Return the secrets a request carries: whatever a reply must never show again.

    The bearer token or HTTP Basic credentials of ``Authorization``, the client secret of a
    token form, and the ``scroll_id`` or batch ``token`` of a JSON body.

    :param headers: the request headers
    :param body: the form fields (a mapping) or the JSON body (bytes)
    """
    found: list[str] = []
    authorization = next(
        (value for name, value in (headers or {}).items() if name.lower() == "authorization"), ""
    )
    scheme, _, credential = authorization.partition(" ")
    if credential:
        found.append(credential)
    if scheme.lower() == "basic":
        try:
            pair = base64.b64decode(credential, validate=True).decode()
        except ValueError:
            pair = ""
        found.append(unquote(pair.partition(":")[2]))
    if isinstance(body, Mapping):
        found.append(str(body.get("client_secret") or ""))
    elif isinstance(body, bytes | bytearray):
        decoded = _decoded_or_none(body)
        if isinstance(decoded, dict):
            found.extend(str(decoded.get(key) or "") for key in _SECRET_BODY_FIELDS)
    return tuple(secret for secret in found if secret)


_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def secret_forms(secrets: Iterable[str]) -> tuple[str, ...]:
    """Return every spelling in which a reply may echo the secrets, longest first.

    As sent, JSON-escaped (with or without ``/`` written ``\\/``, non-ASCII raw or as
    ``\\u`` escapes), URL-encoded (form or path style, upper or lower case hex) and
    HTML-escaped. A value shorter than :data:`MIN_SECRET_CHARS` is no credential, and
    blanking it would garble the message.
    """
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_SECRET_CHARS:
            continue
        escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
        forms.update(escaped, (form.replace("/", "\\/") for form in escaped))
        encoded = {quote(secret, safe=""), quote(secret, safe="/"), quote_plus(secret)}
        # Percent escapes are case-insensitive: some servers write %2f where Python writes %2F.
        encoded |= {_PERCENT_ESCAPE.sub(lambda m: m.group(0).lower(), form) for form in encoded}
        forms.update(encoded, {secret, html.escape(secret)})
    return tuple(sorted(forms, key=len, reverse=True))


def redact(text: str, forms: Iterable[str]) -> str:
    """Blank every form of :func:`secret_forms` out of a text."""
    for form in forms:
        text = text.replace(form, "***")
    return text


def describe_body(reply: RawReply, secrets: Iterable[str] = ()) -> str:
    """Summarise an error body in one readable line, whatever its shape.

    Every text the provider builds from a reply passes here, so this is where the secrets of
    the request (``reply.secrets``, plus ``secrets``) are blanked: in the raw body, before
    JSON or HTML decoding can change their spelling, and again in the summary.

    :param reply: the reply
    :param secrets: more values to blank out should the service echo them
    """
    forms = secret_forms((*reply.secrets, *secrets))
    text = redact(reply.content.decode("utf-8", "replace"), forms)
    text = redact(_summary(text, reply.headers.get("content-type", "")), forms)
    if len(text) > MAX_DETAIL_CHARS:
        text = text[: MAX_DETAIL_CHARS - 3].rstrip() + "..."
    return text


def _summary(text: str, content_type: str) -> str:
    if not text.strip():
        return "empty body"
    try:
        body = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return _text_summary(text[:MAX_SCANNED_CHARS], content_type)
    found = _message_in(body)
    return _one_line((found or text)[:MAX_SCANNED_CHARS])


def _message_in(body: Any, depth: int = 0) -> str | None:
    """Find the human explanation in the documented and common JSON error shapes."""
    if depth > MAX_MESSAGE_DEPTH:
        # Deeper than any error shape seen: whatever sits there is not worth a RecursionError.
        return None
    if isinstance(body, str):
        # Some gateways wrap a JSON document in a string.
        try:
            return _message_in(msgspec.json.decode(body), depth + 1) or body
        except (msgspec.DecodeError, RecursionError):
            return body
    if isinstance(body, list):
        parts = [_message_in(item, depth + 1) for item in body[:3]]
        return "; ".join(part for part in parts if part) or None
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("error"), str):
        description = body.get("error_description")
        return f"{body['error']}: {description}" if description else body["error"]
    for key in ("detail", "body", "error", "message", "Message", "msg", "errors"):
        if key in body and body[key] not in (None, "", [], {}):
            return _message_in(body[key], depth + 1)
    return None


def _text_summary(text: str, content_type: str) -> str:
    if "html" in content_type.lower() or text.lstrip()[:1] == "<":
        title = _title_of(text)
        summary = _one_line(html.unescape(title if title is not None else _visible_text(text)))
        return f"HTML page: {summary}" if summary else "HTML page without text"
    return _one_line(text)


def _title_of(page: str) -> str | None:
    opening = _TITLE_OPEN.search(page)
    closing = _TITLE_CLOSE.search(page, opening.end()) if opening else None
    return page[opening.end() : closing.start()] if opening and closing else None


def _visible_text(page: str) -> str:
    """Return a page without its tags, scripts and style sheets."""
    parts: list[str] = []
    position = 0
    while opening := _HIDDEN_OPEN.search(page, position):
        parts.append(page[position : opening.start()])
        closing = _HIDDEN_CLOSE[opening.group(1).lower()].search(page, opening.end())
        # An unclosed script hides the rest of the page, as in a browser.
        position = closing.end() if closing else len(page)
    parts.append(page[position:])
    return _TAG.sub(" ", "".join(parts))


def _one_line(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def oauth_error_of(reply: RawReply) -> str | None:
    """Return the OAuth2 ``error`` code of a token-endpoint reply, if there is one."""
    body = _decoded_or_none(reply.content)
    error = body.get("error") if isinstance(body, dict) else None
    return redact(error, secret_forms(reply.secrets)) if isinstance(error, str) else None


def _decoded_or_none(content: bytes | bytearray) -> Any:
    try:
        return msgspec.json.decode(content)
    except (msgspec.DecodeError, RecursionError):
        return None


def url_for_logs(url: str) -> str:
    """Return a URL without its query string, whose signature is a credential."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def redirect_error(reply: RawReply, url: str, where: str) -> ProtocolError | None:
    """Return the error for a redirect, or None when the reply is not one.

    Redirects are never followed: the request carries a client secret, a bearer token, a batch
    token, a scroll id or a presigned signature, and a 307 or 308 would send it again to a
    host nobody configured, perhaps over plain http.

    :param reply: the reply
    :param url: the URL that was requested, to resolve a relative ``Location``
    :param where: names the call in the message
    """
    if not 300 <= reply.status < 400:
        return None
    location = reply.headers.get("location")
    try:
        target = url_for_logs(urljoin(url, location)) if location else "nowhere stated"
    except ValueError:
        target = "an unreadable Location"
    return ProtocolError(
        f"{where} answered {reply.status}, a redirect to {target}; redirects are never "
        "followed, since the request would carry its credentials there. Configure the final "
        "URL instead",
        http_status=reply.status,
    )


def next_reset(now: float) -> datetime:
    """Return the next 00:00 UTC after ``now`` (epoch seconds), when daily quotas reset."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    return datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), UTC)


def api_error(
    reply: RawReply,
    *,
    route: str,
    conn_id: str,
    now: float,
    last_remaining: int | None = None,
    secrets: Iterable[str] = (),
) -> CentralMonitoringError:
    """Build the exception for an unsuccessful API reply.

    :param reply: the reply
    :param route: the path that was called
    :param conn_id: the connection in use, named in messages about configuration
    :param now: current time, epoch seconds
    :param last_remaining: the last remaining quota observed on this route, if any
    :param secrets: values to blank out should the service echo them
    """
    status = reply.status
    detail = describe_body(reply, secrets)
    request_id = request_id_of(reply)
    where = f"{route} answered {status}"
    if status == 400:
        return BadRequestError(
            f"{where}: the service rejected the request: {detail}",
            detail=detail,
            request_id=request_id,
        )
    if status == 401:
        return AuthenticationError(
            f"{where} twice with a freshly issued token: {detail}. Check that the client of "
            f"connection {conn_id!r} is allowed to call this API",
            http_status=401,
            request_id=request_id,
        )
    if status == 403:
        return PermissionDeniedError(
            f"{where}: the token does not grant this route ({detail}). Ask the vendor to "
            f"grant it to the client of connection {conn_id!r}, or set extra `scope`",
            http_status=403,
            request_id=request_id,
        )
    if status == 404:
        return InvalidParameterError(
            f"{where}: route not found ({detail}). Check extra `routes` of connection {conn_id!r}",
            http_status=404,
            request_id=request_id,
        )
    if status == 429:
        return quota_error(route, now, last_remaining, detail, request_id)
    if status >= 500:
        return ServiceError(f"{where}: {detail}", http_status=status, request_id=request_id)
    return BadRequestError(
        f"{where}: {detail}", detail=detail, http_status=status, request_id=request_id
    )


def quota_error(
    route: str, now: float, last_remaining: int | None, detail: str, request_id: str | None
) -> QuotaExhaustedError:
    """Build the error for a used-up daily quota, saying when it resets."""
    resets_at = next_reset(now)
    left = "unknown" if last_remaining is None else str(last_remaining)
    return QuotaExhaustedError(
        f"The daily quota of {route} is used up ({detail}; last reported remaining: {left}). "
        f"It resets at 00:00 UTC, next at {resets_at:%Y-%m-%d %H:%M} UTC; retrying earlier "
        "only fails again",
        remaining=last_remaining,
        resets_at=resets_at,
        request_id=request_id,
    )


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = value.strip() if isinstance(value, str) else ""
    # str.isdigit() also accepts superscripts and other scripts' digits, which int() refuses
    # or reads as ASCII ones.
    if text.isascii() and text.isdigit() and len(text) <= MAX_COUNT_DIGITS:
        return int(text)
    return None


def _text_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
