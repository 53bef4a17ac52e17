"""The ``centralmon-simulator`` command: serve a simulator in the foreground.

It prints the base URL, the token URL, the test credentials and a ready-to-export
``AIRFLOW_CONN_CENTRALMON_DEFAULT``, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_centralmon.simulator.faults import FaultRule
from airflow_provider_centralmon.simulator.settings import (
    DEFAULT_QUOTAS,
    ClientConfig,
    SimulatorSettings,
    check_loopback_host,
)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(text: str) -> timedelta:
    """Parse ``90``, ``90s``, ``15m``, ``6h``, ``2d`` or ``1w`` into a timedelta."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 6h or 2d)")
    try:
        return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    except OverflowError:
        raise argparse.ArgumentTypeError(f"duration too long: {text!r}") from None


def loopback_host(text: str) -> str:
    """Accept ``localhost`` or an IPv4 loopback address, nothing that other machines reach."""
    try:
        return check_loopback_host(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def port_number(text: str) -> int:
    """Accept a TCP port, 0 to 65535 (0 picks a free one)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65_535:
        raise argparse.ArgumentTypeError(f"not a port: {text!r} (use 0 to 65535)")
    return port


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="centralmon-simulator",
        description="Serve an offline Central Monitoring API simulator on loopback.",
    )
    _add_server_and_dataset_options(parser.add_argument)
    _add_auth_and_quota_options(parser.add_argument)
    _add_scroll_options(parser.add_argument)
    _add_batch_and_fault_options(parser.add_argument)
    return parser


def _add_server_and_dataset_options(add: Callable[..., object]) -> None:
    add(
        "--host",
        type=loopback_host,
        default="127.0.0.1",
        help="loopback address to bind (default 127.0.0.1)",
    )
    add(
        "--port",
        type=port_number,
        default=8765,
        help="port to bind; 0 picks a free one (default 8765)",
    )
    add("--seed", type=int, default=42, help="seed of the generated records (default 42)")
    add(
        "--span",
        type=parse_duration,
        default=timedelta(days=1),
        help="how far back records reach, e.g. 6h or 2d (default 1d)",
    )
    add(
        "--records-per-minute",
        type=float,
        default=10.0,
        help="records per minute and per application (default 10)",
    )
    add(
        "--records",
        type=int,
        default=None,
        help="total records over the span, overrides --records-per-minute",
    )
    add(
        "--dataset-end",
        type=datetime.fromisoformat,
        default=None,
        help="ISO 8601 instant of the last record (default: now, floored to the minute)",
    )
    add("--client-id", default=None, help="client id of the test client")
    add("--client-secret", default=None, help="client secret of the test client")
    add(
        "--manual-clock",
        action="store_true",
        help="freeze the clock at start; move it with POST /_admin/clock",
    )


def _add_auth_and_quota_options(add: Callable[..., object]) -> None:
    add("--token-lifetime", type=int, default=3600, help="token lifetime, seconds (default 3600)")
    add(
        "--quota",
        action="append",
        default=[],
        metavar="ROUTE=N",
        help="daily quota of a route, e.g. /v1/logs/scroll=20; N 'none' for no limit",
    )
    add(
        "--scroll-continuation-costs-quota",
        action="store_true",
        help="make scroll continuation calls spend quota",
    )


def _add_scroll_options(add: Callable[..., object]) -> None:
    add("--page-size", type=int, default=1000, help="default scroll page size (default 1000)")
    add("--max-page-size", type=int, default=10_000, help="largest page size (default 10000)")
    add(
        "--scroll-idle-timeout",
        type=float,
        default=300.0,
        help="seconds before an unused scroll cursor expires (default 300)",
    )
    add("--unwrap-hits", action="store_true", help="send scroll records without the hit wrapper")


def _add_batch_and_fault_options(add: Callable[..., object]) -> None:
    add(
        "--batch-delay", type=float, default=0.0, help="seconds before a batch is ready (default 0)"
    )
    add(
        "--batch-pending-polls",
        type=int,
        default=0,
        help="URL requests answered 'not ready' before a batch is ready (default 0)",
    )
    add(
        "--batch-pending-shape",
        choices=("null_url", "absent_url", "no_entries"),
        default="null_url",
        help="what a not-ready batch looks like (default null_url)",
    )
    add("--batch-fail", action="store_true", help="make every batch fail")
    add(
        "--batch-file-records",
        type=int,
        default=100_000,
        help="most records in one batch file (default 100000)",
    )
    add(
        "--url-lifetime",
        type=int,
        default=3600,
        help="presigned URL lifetime, seconds (default 3600)",
    )
    add(
        "--fault",
        action="append",
        default=[],
        metavar="ROUTE=KIND[,key=value...]",
        help="inject a fault, e.g. '/v1/logs/scroll=error,status=503,rate=0.1'",
    )


def settings_from_args(args: argparse.Namespace) -> SimulatorSettings:
    """Return the settings the parsed arguments describe."""
    quotas: dict[str, int | None] = dict(DEFAULT_QUOTAS)
    for item in args.quota:
        route, _, limit = item.partition("=")
        quotas[route] = None if limit.strip().lower() == "none" else int(limit)
    dataset_end = args.dataset_end
    if dataset_end is not None and dataset_end.tzinfo is None:
        dataset_end = dataset_end.replace(tzinfo=UTC)
    options: dict[str, Any] = {}
    if args.client_id or args.client_secret:
        default = SimulatorSettings().clients[0]
        options["clients"] = (
            ClientConfig(
                client_id=args.client_id or default.client_id,
                client_secret=args.client_secret or default.client_secret,
            ),
        )
    return SimulatorSettings(
        seed=args.seed,
        span=args.span,
        records_per_minute=args.records_per_minute,
        total_records=args.records,
        dataset_end=dataset_end,
        token_lifetime_s=args.token_lifetime,
        quotas=quotas,
        scroll_continuation_costs_quota=args.scroll_continuation_costs_quota,
        default_page_size=args.page_size,
        max_page_size=args.max_page_size,
        scroll_idle_timeout_s=args.scroll_idle_timeout,
        unwrap_scroll_hits=args.unwrap_hits,
        batch_ready_delay_s=args.batch_delay,
        batch_pending_polls=args.batch_pending_polls,
        batch_pending_shape=args.batch_pending_shape,
        batch_fail=args.batch_fail,
        batch_records_per_file=args.batch_file_records,
        presigned_url_lifetime_s=args.url_lifetime,
        faults=tuple(FaultRule.from_spec(spec) for spec in args.fault),
        **options,
    )


def banner(base_url: str, settings: SimulatorSettings) -> str:
    """Return what the command prints once it listens."""
    client = settings.clients[0]
    auth_url = base_url + "/oauth2/token"
    connection = {
        "conn_type": "centralmon",
        "host": base_url,
        "login": client.client_id,
        "password": client.client_secret,
        "extra": {"auth_url": auth_url},
    }
    return "\n".join(
        [
            "Central Monitoring API simulator",
            f"  base URL:      {base_url}",
            f"  auth URL:      {auth_url}",
            f"  client id:     {client.client_id}",
            f"  client secret: {client.client_secret}   (test credentials, not a secret)",
            "  admin:         GET /_admin/counters, POST /_admin/faults, POST /_admin/reset",
            "",
            "Airflow connection:",
            f"export AIRFLOW_CONN_CENTRALMON_DEFAULT='{json.dumps(connection)}'",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until interrupted; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValueError as error:
        print(f"centralmon-simulator: {error}", file=sys.stderr)
        return 2

    # Heavy imports wait until the arguments are known to be valid.
    import uvicorn

    from airflow_provider_centralmon.simulator.app import create_app
    from airflow_provider_centralmon.simulator.clock import Clock, ManualClock, RealClock
    from airflow_provider_centralmon.simulator.server import hide_injected_drops

    hide_injected_drops()
    clock: Clock = ManualClock() if args.manual_clock else RealClock()
    app = create_app(settings, clock)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((args.host, args.port))
    except OSError as error:
        listener.close()
        print(
            f"centralmon-simulator: cannot listen on {args.host}:{args.port}: "
            f"{error.strerror}; choose another --port (0 picks a free one)",
            file=sys.stderr,
        )
        return 1
    # Listening before the banner is printed: a client that reads the banner and connects
    # at once is queued by the kernel until uvicorn's loop accepts it.
    listener.listen(2048)
    base_url = f"http://{args.host}:{listener.getsockname()[1]}"
    print(banner(base_url, settings), flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    # uvicorn shuts down on Ctrl-C, then raises the interrupt again for the caller: the
    # normal way to stop a foreground server, so no traceback.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[listener])
    return 0


if __name__ == "__main__":
    sys.exit(main())
