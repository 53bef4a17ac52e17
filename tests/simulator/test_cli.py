from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
import requests

from airflow_provider_centralmon.simulator.cli import (
    build_parser,
    main,
    parse_duration,
    settings_from_args,
)


@pytest.fixture
def cli_simulator():
    command = [
        sys.executable,
        "-m",
        "airflow_provider_centralmon.simulator.cli",
        "--port",
        "0",
        "--records",
        "4000",
        "--span",
        "2h",
        "--token-lifetime",
        "120",
        "--quota",
        "/v1/logs/scroll=3",
        "--fault",
        "/v1/query=error,status=502,count=1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if line.startswith("export AIRFLOW_CONN_CENTRALMON_DEFAULT="):
            break
    yield "".join(lines)
    process.kill()
    process.wait(timeout=10)
    process.stdout.close()


def test_cli_prints_urls_credentials_and_a_working_connection(cli_simulator):
    export = cli_simulator.strip().splitlines()[-1]
    connection = json.loads(export.split("=", 1)[1].strip("'"))

    token = requests.post(
        connection["extra"]["auth_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": connection["login"],
            "client_secret": connection["password"],
        },
        timeout=10,
    ).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    scroll = requests.post(
        connection["host"] + "/v1/logs/scroll",
        json={"application": "atr", "time_range": "now-1h"},
        headers=headers,
        timeout=10,
    )
    query = requests.post(
        connection["host"] + "/v1/query",
        json={"domain_name": "acme-prod", "time_range": "now-1h"},
        headers=headers,
        timeout=10,
    )

    assert f"base URL:      {connection['host']}" in cli_simulator
    assert "centralmon-sim-client" in cli_simulator
    assert "centralmon-sim-secret" in cli_simulator
    assert connection["conn_type"] == "centralmon"
    assert token["expires_in"] == 120
    assert scroll.json()["daily_requests_remaining"] == 2
    assert 400 < len(scroll.json()["logs"]) < 600
    assert query.status_code == 502


def test_cli_arguments_map_to_settings():
    args = build_parser().parse_args(
        [
            "--seed",
            "7",
            "--batch-delay",
            "5",
            "--batch-pending-shape",
            "no_entries",
            "--quota",
            "/v2/query=none",
            "--unwrap-hits",
            "--dataset-end",
            "2026-12-01T00:00:00",
            "--client-id",
            "me",
            "--client-secret",
            "pw",
        ]
    )

    settings = settings_from_args(args)

    assert (settings.seed, settings.batch_ready_delay_s) == (7, 5.0)
    assert settings.batch_pending_shape == "no_entries"
    assert settings.quota_limit("/v2/query") is None
    assert settings.unwrap_scroll_hits
    assert settings.dataset_end is not None
    assert settings.dataset_end.utcoffset() is not None
    assert (settings.clients[0].client_id, settings.clients[0].client_secret) == ("me", "pw")


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("15m", 900), ("2d", 172_800)])
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost"])
def test_loopback_hosts_are_accepted(host):
    assert build_parser().parse_args(["--host", host]).host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.com", "::"])
def test_a_host_off_loopback_is_refused(host, capsys):
    # The simulator's admin routes and test credentials need no secret: never on a network.
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--host", host])

    assert stopped.value.code == 2
    assert "loopback" in capsys.readouterr().err


def test_a_port_in_use_is_a_one_line_error(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]

        status = main(["--port", str(port)])

    error = capsys.readouterr().err
    assert status == 1
    assert error.startswith(f"centralmon-simulator: cannot listen on 127.0.0.1:{port}: ")
    assert "choose another --port" in error
    assert "Traceback" not in error


def test_the_openapi_document_is_served_without_an_online_docs_page(cli_simulator):
    base_url = cli_simulator.split("base URL:", 1)[1].split()[0]

    document = requests.get(base_url + "/_openapi.json", timeout=10)
    docs_page = requests.get(base_url + "/_docs", timeout=10)

    assert document.json()["info"]["title"] == "Central Monitoring API simulator"
    assert docs_page.status_code == 404


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "99999"], "not a port"),
        (["--port", "-1"], "not a port"),
        (["--span", "99999999999d"], "duration too long"),
        (["--records-per-minute", "nan"], "records_per_minute must be above 0"),
        (["--token-lifetime", "-5"], "token_lifetime_s must be above 0"),
        (["--quota", "/v1/nothing=3"], "quota for unknown route '/v1/nothing'"),
        (["--quota", "/v1/logs/scroll=-1"], "cannot be negative"),
    ],
)
def test_bad_values_are_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        sys.exit(main(argv))

    error = capsys.readouterr().err
    assert stopped.value.code == 2
    assert message in error
    assert "Traceback" not in error
