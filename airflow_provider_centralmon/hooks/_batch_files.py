"""Batch result files: the urls reply, presigned-URL expiry, and streaming a JSON array.

A result file holds up to 100,000 OpenSearch hits in one JSON array. :class:`JsonArraySplitter`
cuts the array into its elements while the bytes arrive, so only one element (plus one
network chunk) is held at a time, and msgspec decodes each element on its own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

from airflow_provider_centralmon._compat import mask_secret
from airflow_provider_centralmon.exceptions import (
    BatchError,
    CentralMonitoringError,
    InvalidParameterError,
    PresignedUrlExpiredError,
    ProtocolError,
    ServiceError,
    TruncatedFileError,
)
from airflow_provider_centralmon.hooks._replies import RawReply, describe_body, url_for_logs
from airflow_provider_centralmon.hooks._settings import is_loopback
from airflow_provider_centralmon.hooks._types import BatchFile, BatchStatus, CallMeta

FAILED_STATUSES = frozenset(
    {"failed", "failure", "error", "errored", "expired", "cancelled", "canceled", "aborted"}
)
# A single element larger than this is taken for a malformed array rather than buffered on.
MAX_ELEMENT_BYTES = 64 * 1024 * 1024
_COMPACT_AFTER_BYTES = 1024 * 1024
_WHITESPACE_RUN = re.compile(rb"[ \t\r\n]*+")
_SCALAR_END = re.compile(rb"[ \t\r\n,\]]")
# Every quantifier below is possessive: a failed match never backtracks, so each pattern
# runs in time linear in the bytes it looks at. Loops are unrolled ("a*(?:b a*)*") because
# Python's re runs them faster than an alternation inside a repeated group.
_TEXT = rb'[^"\[\]{}]*+'
_STRING_BODY = rb'[^"\\]*+(?:\\.[^"\\]*+)*+'
_STRING = rb'"' + _STRING_BODY + rb'"'
# The rest of a string after its opening quote, up to (not including) the closing quote.
_STRING_REST = re.compile(_STRING_BODY, re.DOTALL)
# Text without brackets or quotes, and whole strings: stops at a bracket outside any string,
# or at the opening quote of a string cut by the buffer end.
_NOT_BRACKET = re.compile(_TEXT + rb"(?:" + _STRING + _TEXT + rb")*+", re.DOTALL)
# Nesting the shallow element pattern can match whole in one call.
_SHALLOW_DEPTH = 6
_UTF8_BOM = b"\xef\xbb\xbf"
# The code of an S3 error document, <Error><Code>...</Code>...</Error>, near its start.
_S3_ERROR_CODE = re.compile(rb"<Code>\s*([A-Za-z]+)\s*</Code>")
_S3_ERROR_SCAN_BYTES = 4096


def _shallow_element_pattern(depth: int) -> re.Pattern[bytes]:
    """Match a whole object or array nested at most ``depth`` deep (Python's re cannot recurse)."""
    inner = _NOT_BRACKET.pattern
    for _ in range(depth - 1):
        inner = _TEXT + rb"(?:(?:" + _STRING + rb"|[\[{]" + inner + rb"[\]}])" + _TEXT + rb")*+"
    return re.compile(rb"[\[{]" + inner + rb"[\]}]", re.DOTALL)


_SHALLOW_ELEMENT = _shallow_element_pattern(_SHALLOW_DEPTH)


class _QueryRedactingFilter(logging.Filter):
    """Cut the query string off request lines that urllib3 logs at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.split("?", 1)[0] + "?***" if isinstance(arg, str) and "?" in arg else arg
                for arg in record.args
            )
        return True


def redact_http_debug_logs() -> None:
    """Keep presigned signatures out of urllib3's DEBUG request lines, once per process.

    urllib3 logs each request's path with its query string; for a presigned URL that query
    is a credential. Only the query of those lines is replaced; nothing else changes.
    """
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _QueryRedactingFilter) for f in logger.filters):
        logger.addFilter(_QueryRedactingFilter())


def mask_query(url: str) -> None:
    """Register a presigned URL's query string with Airflow's secret masker.

    HTTP libraries log request lines at DEBUG; the masker then shows ``***`` in task logs.
    """
    query = urlsplit(url).query
    if query:
        mask_secret(query)


def presigned_expiry(url: str) -> datetime | None:
    """Read when a presigned URL expires: ``Expires`` or ``X-Amz-Date`` + ``X-Amz-Expires``."""
    query = {key.lower(): value for key, value in parse_qsl(urlsplit(url).query)}
    try:
        if "expires" in query:
            return datetime.fromtimestamp(int(query["expires"]), tz=UTC)
        if "x-amz-date" in query and "x-amz-expires" in query:
            signed_at = datetime.strptime(query["x-amz-date"], "%Y%m%dT%H%M%SZ")
            lifetime = timedelta(seconds=int(query["x-amz-expires"]))
            return signed_at.replace(tzinfo=UTC) + lifetime
    except (ValueError, OverflowError, OSError):
        return None
    return None


def check_download_url(url: str) -> None:
    """Refuse a download URL that is not https (plain http only on a loopback host)."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or not parts.hostname or parts.scheme not in ("http", "https"):
        raise InvalidParameterError("A batch file URL must be an http(s) URL with a host name")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InvalidParameterError(
            f"Refusing to download {url_for_logs(url)} over plain http: only https is accepted "
            "outside loopback hosts"
        )


def download_error(reply: RawReply, url: str, where: str, now: float) -> CentralMonitoringError:
    """Build the exception for a failed download of a presigned URL.

    :param reply: the reply of the storage service
    :param url: the presigned URL (its query string is never quoted)
    :param where: the URL as shown in messages
    :param now: current time, epoch seconds
    """
    # S3 quotes the signature it was given in some errors (SignatureDoesNotMatch), and the
    # access key id alone, the first part of the credential scope.
    query = parse_qsl(urlsplit(url).query)
    signed = [value for _, value in query]
    signed += [value.split("/", 1)[0] for key, value in query if key == "X-Amz-Credential"]
    detail = describe_body(reply, (urlsplit(url).query, *signed))
    expires_at = presigned_expiry(url)
    expired = expires_at is not None and expires_at.timestamp() <= now
    # S3 answers 403 "Request has expired" for a signature past its lifetime, and 400
    # ExpiredToken when the temporary credentials that signed the URL have expired.
    s3_code = _S3_ERROR_CODE.search(reply.content[:_S3_ERROR_SCAN_BYTES])
    token_expired = s3_code is not None and s3_code.group(1) == b"ExpiredToken"
    if (reply.status == 403 and (expired or "expired" in detail.lower())) or (
        reply.status in (400, 403) and token_expired
    ):
        return PresignedUrlExpiredError(
            f"{where} has expired"
            + (f" (at {expires_at:%Y-%m-%d %H:%M:%S} UTC)" if expires_at else "")
            + "; ask the batch urls route for fresh URLs",
            expired_at=expires_at,
            http_status=reply.status,
        )
    if reply.status >= 500:
        return ServiceError(f"{where} answered {reply.status}: {detail}", http_status=reply.status)
    return BatchError(f"{where} answered {reply.status}: {detail}", http_status=reply.status)


def batch_status(payload: Any, meta: CallMeta) -> BatchStatus:
    """Build the batch state from the urls route's payload."""
    # A reply without the list is not a pending export: waiting on it would never end.
    entries = payload.get("presigned_urls") if isinstance(payload, Mapping) else payload
    if not isinstance(entries, list):
        raise ProtocolError(
            f"{meta.route} replied without a list of presigned_urls", request_id=meta.request_id
        )
    files = tuple(_batch_file(index, entry, meta) for index, entry in enumerate(entries))
    for file in files:
        if file.url:
            mask_query(file.url)
    # Limitation: what an export with no matching logs looks like is not documented; an empty
    # list is reported as not ready, so a waiting caller times out instead of finishing empty.
    # A file cannot be downloaded without its URL, whatever its flags say: it counts as pending.
    ready = bool(files) and all(f.ready and f.status == "completed" and f.url for f in files)
    failed = any(f.status in FAILED_STATUSES for f in files)
    return BatchStatus(files=files, meta=meta, ready=ready, failed=failed)


def _batch_file(index: int, entry: Any, meta: CallMeta) -> BatchFile:
    if not isinstance(entry, Mapping):
        raise ProtocolError(
            f"{meta.route} replied with a presigned_urls entry that is not an object",
            request_id=meta.request_id,
        )
    url = entry.get("presigned_url") or entry.get("url")
    status = entry.get("status")
    ready = entry.get("ready")
    if isinstance(ready, str):
        ready = ready.strip().lower() == "true"
    count = next((entry[key] for key in ("record_count", "count", "total") if key in entry), None)
    if isinstance(count, str) and count.isascii() and count.isdigit():
        count = int(count)
    return BatchFile(
        index=index,
        time_range=entry.get("time_range"),
        ready=ready is True,
        status=str(status).strip().lower() if status is not None else None,
        url=url if isinstance(url, str) and url else None,
        expires_at=presigned_expiry(url) if isinstance(url, str) else None,
        record_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
    )


def _describe_start(start: bytes) -> str:
    """Name what a file holds from its first bytes, for an error message (no content quoted)."""
    if start == b"\x1f\x8b":
        return "gzip data sent without Content-Encoding: gzip, which is not supported"
    if start[:1] == b"{":
        return "a JSON object (JSON Lines, or an object around the records, are not supported)"
    if start[:1] == b"<":
        return "markup, as of an HTML or XML page"
    return f"the byte 0x{start[0]:02x}"


class JsonArraySplitter:
    """Cut a JSON array arriving in chunks into its decoded elements.

    A scanner finds where each element ends, keeping its state (inside a string or not, the
    bracket depth) across chunks, so every byte is scanned once and every element decoded once
    by msgspec: the time is linear in the file's size, whatever the elements hold. Regular
    expressions skip over plain text and whole strings in C, so Python only steps from one
    bracket (outside strings) to the next. The scanner does not check the JSON grammar inside
    an element; msgspec does, and a malformed element is a :class:`ProtocolError`.

    :param what: names the file in error messages (no query string)
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._buffer = bytearray()
        self._pos = 0
        self._element_start: int | None = None
        self._depth = 0
        self._in_string = False
        self._started = False
        self._after_element = False
        self._finished = False
        self._count = 0

    def feed(self, chunk: bytes) -> list[Any]:
        """Add bytes and return the elements completed by them."""
        self._compact()
        self._buffer += chunk
        elements: list[Any] = []
        while self._step(elements):
            pass
        return elements

    def close(self) -> None:
        """Confirm the array ended; raise :class:`TruncatedFileError` if it was cut short."""
        if not self._finished:
            raise TruncatedFileError(
                f"{self._what} ended before its JSON array was complete "
                f"({self._count} records read)"
            )

    def _step(self, elements: list[Any]) -> bool:
        """Advance by one token or one element; return False when more bytes are needed."""
        if self._element_start is not None:
            return self._scan_element(self._element_start, elements)
        self._pos = _end_of(_WHITESPACE_RUN, self._buffer, self._pos)
        if self._pos >= len(self._buffer):
            return False
        char = self._buffer[self._pos]
        if self._finished:
            raise ProtocolError(f"{self._what} has data after its JSON array")
        if not self._started:
            # Some writers put a UTF-8 byte order mark first, which RFC 8259 lets readers skip.
            if _UTF8_BOM.startswith(self._buffer[self._pos : self._pos + len(_UTF8_BOM)]):
                if len(self._buffer) - self._pos < len(_UTF8_BOM):
                    return False
                self._pos += len(_UTF8_BOM)
                return True
            if char != ord("["):
                found = _describe_start(bytes(self._buffer[self._pos : self._pos + 2]))
                raise ProtocolError(
                    f"{self._what} does not hold a JSON array: it starts with {found}"
                )
            self._started = True
        elif self._after_element or (char == ord("]") and self._count == 0):
            # After an element only a separator or the end may follow; "[]" is empty.
            if char not in b",]":
                raise self._malformed("JSON array")
            self._after_element = False
            self._finished = char == ord("]")
        elif char in b",]":
            raise self._malformed("JSON array")
        else:
            self._element_start = self._pos
            return True
        self._pos += 1
        return True

    def _scan_element(self, start: int, elements: list[Any]) -> bool:
        end = self._element_end(start)
        if end is None:
            if len(self._buffer) - start > MAX_ELEMENT_BYTES:
                raise self._malformed("or oversized JSON element")
            return False
        try:
            element = msgspec.json.decode(self._buffer[start:end])
        except (msgspec.DecodeError, RecursionError):
            raise self._malformed("JSON element") from None
        elements.append(element)
        self._count += 1
        self._element_start = None
        self._after_element = True
        self._pos = end
        return True

    def _element_end(self, start: int) -> int | None:
        """Scan on from ``self._pos``; return the end of the element, or None if not there yet."""
        buffer = self._buffer
        first = buffer[start]
        if first not in b'{["':
            # A number, true, false or null ends at the next separator or space.
            found = _SCALAR_END.search(buffer, max(self._pos, start))
            self._pos = found.start() if found else len(buffer)
            return found.start() if found else None
        if self._pos == start:
            # Most elements are shallow and complete in the buffer: one match finds their end.
            # Only the first scan of an element tries it, so a miss costs one extra pass.
            shallow = _SHALLOW_ELEMENT.match(buffer, start) if first != ord('"') else None
            if shallow:
                self._pos = shallow.end()
                return self._pos
            self._pos = start + 1
            self._depth = 0 if first == ord('"') else 1
            self._in_string = first == ord('"')
        while True:
            if self._in_string:
                # Up to the closing quote; a backslash at the buffer's end waits for its pair.
                self._pos = _end_of(_STRING_REST, buffer, self._pos)
                if self._pos >= len(buffer) or buffer[self._pos] != ord('"'):
                    return None
                self._pos += 1
                self._in_string = False
            if self._depth == 0:
                return self._pos
            # Plain text and complete strings, then a bracket or a string cut by the buffer end.
            self._pos = _end_of(_NOT_BRACKET, buffer, self._pos)
            if self._pos >= len(buffer):
                return None
            char = buffer[self._pos]
            self._pos += 1
            if char == ord('"'):
                self._in_string = True
            elif char in b"{[":
                self._depth += 1
            else:
                self._depth -= 1

    def _malformed(self, what: str) -> ProtocolError:
        return ProtocolError(f"{self._what} holds a malformed {what}")

    def _compact(self) -> None:
        # Drop consumed bytes now and then; deleting from the front of a bytearray is cheap
        # only when it is done rarely.
        keep_from = self._pos if self._element_start is None else self._element_start
        if keep_from < _COMPACT_AFTER_BYTES:
            return
        del self._buffer[:keep_from]
        self._pos -= keep_from
        if self._element_start is not None:
            self._element_start -= keep_from


def _end_of(pattern: re.Pattern[bytes], buffer: bytearray, pos: int) -> int:
    """Return where ``pattern``, which may match empty text, stops matching from ``pos``."""
    found = pattern.match(buffer, pos)
    return found.end() if found else pos
