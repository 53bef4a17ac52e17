from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import certifi
import pytest
from hook_fakes import AUTH, CLIENT_SECRET

from airflow_provider_centralmon._compat import Connection
from airflow_provider_centralmon._connection_form import DEFAULT_API_URL, DEFAULT_AUTH_URL
from airflow_provider_centralmon.exceptions import InvalidParameterError
from airflow_provider_centralmon.hooks import _settings
from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook


def settings_of(conn_id: str) -> _settings.ConnectionSettings:
    return CentralMonitoringHook(conn_id).settings


def test_defaults_apply_when_only_credentials_are_set(make_conn: Callable[..., str]) -> None:
    conn_id = make_conn(host=None, extra={"auth_url": None})

    settings = settings_of(conn_id)

    assert settings.base_url == DEFAULT_API_URL
    assert settings.auth_url == DEFAULT_AUTH_URL
    assert settings.scope is None
    assert settings.timeout_s == 60
    assert settings.verify is True
    assert settings.auth_method == "client_secret_post"
    assert dict(settings.routes) == {
        "scroll": "/v2/logs/scroll",
        "batch": "/v1/logs/batch",
        "batch_urls": "/v1/logs/batch/urls",
        "query": "/v1/query",
    }
    assert settings.overridden == frozenset()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"host": "cm.example.com"}, "https://cm.example.com"),
        ({"host": "cm.example.com", "port": 8443}, "https://cm.example.com:8443"),
        ({"host": "https://cm.example.com/api/"}, "https://cm.example.com/api"),
        ({"host": "localhost", "schema": "http", "port": 8080}, "http://localhost:8080"),
        ({"host": "http://127.0.0.9:81"}, "http://127.0.0.9:81"),
        ({"host": "http://[::1]:81"}, "http://[::1]:81"),
    ],
)
def test_host_is_accepted_with_or_without_scheme_port_or_schema(
    make_conn: Callable[..., str], fields: dict[str, Any], expected: str
) -> None:
    assert settings_of(make_conn(**fields)).base_url == expected


@pytest.mark.parametrize(
    ("fields", "field_named"),
    [
        ({"host": "http://cm.example.com"}, "host"),
        ({"host": "cm.example.com", "schema": "http"}, "host"),
        ({"extra": {"auth_url": "http://auth.example.com/oauth2/token"}}, "extra `auth_url`"),
        ({"host": "http://10.0.0.1"}, "host"),
    ],
)
def test_plain_http_is_refused_outside_loopback(
    make_conn: Callable[..., str], fields: dict[str, Any], field_named: str
) -> None:
    with pytest.raises(InvalidParameterError, match="https://") as caught:
        settings_of(make_conn(**fields))

    assert field_named in str(caught.value)


def test_an_unknown_extra_is_named(make_conn: Callable[..., str]) -> None:
    conn_id = make_conn(extra={"headers": {"X-Api-Key": "k"}})

    with pytest.raises(InvalidParameterError, match="unknown extra 'headers'"):
        settings_of(conn_id)


def test_prefixed_and_bare_extras_are_both_read(make_conn: Callable[..., str]) -> None:
    conn_id = make_conn(
        extra={
            "auth_url": None,
            "extra__centralmon__auth_url": "https://auth.example.com/oauth2/token",
            "extra__centralmon__scope": "api/read",
            "timeout": "12.5",
            "extra__centralmon__verify": "",
        }
    )

    settings = settings_of(conn_id)

    assert settings.auth_url == "https://auth.example.com/oauth2/token"
    assert settings.scope == "api/read"
    assert settings.timeout_s == 12.5
    assert settings.verify is True


def test_conflicting_prefixed_and_bare_extras_are_refused(make_conn: Callable[..., str]) -> None:
    conn_id = make_conn(extra={"scope": "a", "extra__centralmon__scope": "b"})

    with pytest.raises(InvalidParameterError, match="'scope' twice"):
        settings_of(conn_id)


@pytest.mark.parametrize(
    "routes",
    [
        {"scroll": "/v1/logs/scroll", "query": "/v2/query"},
        '{"scroll": "/v1/logs/scroll", "query": "/v2/query"}',
    ],
)
def test_routes_override_defaults_as_object_or_json_string(
    make_conn: Callable[..., str], routes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_of(make_conn(extra={"routes": routes}))

    assert settings.route("scroll") == "/v1/logs/scroll"
    assert settings.route("query") == "/v2/query"
    assert settings.route("batch") == "/v1/logs/batch"
    assert settings.overridden == {"scroll", "query"}
    assert "deprecated from 2026-03-01" in caplog.text


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ({"workloads": "/v2/workloads/scroll"}, "unknown operation 'workloads'"),
        ({"scroll": "v2/logs/scroll"}, "must be a path starting with '/'"),
        ({"scroll": 3}, "must be a path"),
        ("[1, 2]", "must be an object"),
        ("{not json", "must be a JSON object"),
    ],
)
def test_bad_routes_are_refused(make_conn: Callable[..., str], routes: Any, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        settings_of(make_conn(extra={"routes": routes}))


@pytest.mark.parametrize(("raw", "expected"), [("false", False), ("True", True), (False, False)])
def test_verify_reads_booleans_and_strings(
    make_conn: Callable[..., str], raw: Any, expected: bool
) -> None:
    assert settings_of(make_conn(extra={"verify": raw})).verify is expected


def test_verify_takes_an_existing_ca_bundle_path(
    make_conn: Callable[..., str], tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes())

    assert settings_of(make_conn(extra={"verify": str(bundle)})).verify == str(bundle)
    with pytest.raises(InvalidParameterError, match="does not exist"):
        settings_of(make_conn("other", extra={"verify": str(tmp_path / "missing.pem")}))


@pytest.mark.parametrize("content", [None, "-----BEGIN CERTIFICATE-----\nnot base64\n", ""])
def test_verify_refuses_a_directory_or_a_file_without_certificates(
    make_conn: Callable[..., str], tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "ca.pem"
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)

    with pytest.raises(InvalidParameterError, match="extra `verify`"):
        settings_of(make_conn(extra={"verify": str(path)}))


async def test_async_hook_reports_an_unusable_ca_bundle_as_a_parameter_error(
    make_async_hook: Callable[..., Any], make_conn: Callable[..., str], tmp_path: Path
) -> None:
    conn_id = make_conn(extra={"verify": str(tmp_path)})

    with pytest.raises(InvalidParameterError, match="extra `verify`"):
        await make_async_hook(conn_id).get_batch_files("t")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/logs/batch/urls\r\n",
        "/v1/logs\nX-Injected: 1",
        "/v1/logs/batch urls",
        "/v1/logs/\tscroll",
        "/v1/logs/\x00scroll",
        "/v1/logs/\u00e9",
        "/v1/logs#fragment",
    ],
)
def test_a_route_with_characters_a_url_path_cannot_hold_is_refused(
    make_conn: Callable[..., str], path: str
) -> None:
    with pytest.raises(InvalidParameterError, match="route of 'batch_urls'"):
        settings_of(make_conn(extra={"routes": {"batch_urls": path}}))


@pytest.mark.parametrize(
    "extra",
    [
        '{"auth_url": "http://127.0.0.1:8765/oauth2/token",}',
        "{not json",
        '["timeout", 5]',
        '"timeout=5"',
        "5",
    ],
)
# Airflow 2 warns of such extras when the connection is built; the hook must refuse them.
@pytest.mark.filterwarnings("ignore:Encountered JSON value in `extra`")
def test_an_extra_that_is_not_a_json_object_is_refused(
    monkeypatch: pytest.MonkeyPatch, extra: str
) -> None:
    # Built directly: Airflow 2 refuses to read some of these from an environment variable.
    conn = Connection(
        conn_id="bad_extra", conn_type="centralmon", login="id", password="secret", extra=extra
    )
    monkeypatch.setattr(CentralMonitoringHook, "get_connection", classmethod(lambda *_: conn))

    with pytest.raises(InvalidParameterError, match="extra must be a JSON object"):
        settings_of("bad_extra")


@pytest.mark.parametrize("field", ["login", "password"])
def test_credentials_of_only_spaces_are_refused(make_conn: Callable[..., str], field: str) -> None:
    with pytest.raises(InvalidParameterError, match="client id as login and the client secret"):
        settings_of(make_conn(**{field: "  \t "}))


@pytest.mark.parametrize("timeout", ["soon", 0, -1, 5000, True])
def test_bad_timeouts_are_refused(make_conn: Callable[..., str], timeout: Any) -> None:
    with pytest.raises(InvalidParameterError, match="extra `timeout`"):
        settings_of(make_conn(extra={"timeout": timeout}))


def test_auth_method_is_checked(make_conn: Callable[..., str]) -> None:
    basic = make_conn(extra={"auth_method": "client_secret_basic"})
    assert settings_of(basic).auth_method == "client_secret_basic"

    with pytest.raises(InvalidParameterError, match="auth_method"):
        settings_of(make_conn("other", extra={"auth_method": "private_key_jwt"}))


@pytest.mark.parametrize("missing", ["login", "password"])
def test_missing_credentials_name_the_fields(make_conn: Callable[..., str], missing: str) -> None:
    conn_id = make_conn(**{missing: None})

    with pytest.raises(InvalidParameterError, match="client id as login and the client secret"):
        settings_of(conn_id)


def test_client_secret_is_masked_when_read_and_never_shown(
    make_conn: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    masked: list[str] = []
    monkeypatch.setattr(_settings, "mask_secret", masked.append)

    settings = settings_of(make_conn())

    assert CLIENT_SECRET in masked
    assert CLIENT_SECRET not in repr(settings)
    assert settings.auth_url == AUTH
