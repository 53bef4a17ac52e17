"""CentralMonitoringQueryOperator against the simulator's query route."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from operator_support import attach, make_context, record_secrets, xcom_arg

from airflow_provider_centralmon.exceptions import (
    BadRequestError,
    InvalidParameterError,
    QuotaExhaustedError,
    QuotaFloorError,
)
from airflow_provider_centralmon.operators.query import CentralMonitoringQueryOperator
from airflow_provider_centralmon.simulator.handle import SimulatorHandle

QUERY = "/v1/query"


def query_operator(**kwargs: Any) -> CentralMonitoringQueryOperator:
    arguments = {"task_id": "billing", "domain_name": "acme-prod", "time_range": "now-1h"}
    return CentralMonitoringQueryOperator(**{**arguments, **kwargs})


def query_calls(sim: SimulatorHandle) -> int:
    return int(sim.counters()["routes"].get(QUERY, {}).get("calls", 0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"domain_name": ""}, "domain_name must be a non-empty string"),
        ({"domain_name": None}, "domain_name must be a non-empty string"),
        ({"time_range": " "}, "time_range must be a non-empty string"),
        ({"time_range": 3600}, "time_range must be a non-empty string"),
        ({"extra_body": ["application"]}, "extra_body must be a mapping"),
        ({"extra_body": {"domain_name": "x"}}, "extra_body may not set domain_name"),
        ({"extra_body": {"Time_Range": "now-1d"}}, "extra_body may not set Time_Range"),
        ({"centralmon_conn_id": ""}, "centralmon_conn_id must be a non-empty connection id"),
        ({"min_daily_remaining": -2}, "min_daily_remaining must be a whole number"),
    ],
)
def test_a_bad_parameter_fails_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError) as raised:
        query_operator(**kwargs)

    assert message in str(raised.value)


def test_returns_the_reply_payload(sim: SimulatorHandle) -> None:
    payload = query_operator().execute(make_context())

    expected = sim.hits_between(
        {"application": "atr", "domain": "acme-prod"}, sim.now() - timedelta(hours=1), sim.now()
    )
    # The V1 route states the remaining quota inside the payload, which is returned as is.
    assert payload == {
        "domain_name": "acme-prod",
        "time_range": "now-1h",
        "ticket_count": len(expected),
        "daily_requests_remaining": 499,
    }
    assert payload["ticket_count"] > 0
    assert query_calls(sim) == 1


def test_templated_fields_are_rendered(sim: SimulatorHandle) -> None:
    task = query_operator(
        domain_name="{{ params.domain }}",
        time_range="now-{{ params.hours }}h",
        extra_body={"application": "{{ params.app }}"},
    )
    context = make_context(params={"domain": "globex-uat", "hours": 2, "app": "klewer"})
    task.render_template_fields(context)

    payload = task.execute(context)

    expected = sim.hits_between(
        {"application": "klewer", "domain": "globex-uat"},
        sim.now() - timedelta(hours=2),
        sim.now(),
    )
    assert payload["ticket_count"] == len(expected) > 0
    assert payload["time_range"] == "now-2h"


def test_values_from_xcom_are_checked_when_the_task_runs() -> None:
    upstream = xcom_arg()

    task = query_operator(domain_name=upstream, time_range=upstream, extra_body=upstream)

    assert task.upstream_task_ids == {"upstream"}


def test_a_template_left_unrendered_fails_before_the_call(sim: SimulatorHandle) -> None:
    task = query_operator(domain_name="{{ params.domain }}")

    with pytest.raises(InvalidParameterError, match="domain_name still holds a template"):
        task.execute(make_context())

    assert query_calls(sim) == 0


def test_the_services_refusal_is_a_bad_request(sim: SimulatorHandle) -> None:
    with pytest.raises(BadRequestError):
        query_operator(time_range="not date math").execute(make_context())


def test_quota_floor_and_exhausted_quota(
    centralmon_simulator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = attach(centralmon_simulator_factory(quotas={QUERY: 2}), monkeypatch)
    query_operator().execute(make_context())

    with pytest.raises(QuotaFloorError, match="below min_daily_remaining=2"):
        query_operator(min_daily_remaining=2).execute(make_context())
    assert query_calls(sim) == 1

    query_operator().execute(make_context())
    with pytest.raises(QuotaExhaustedError) as raised:
        query_operator().execute(make_context())
    assert raised.value.http_status == 429


def test_no_secret_in_the_xcom_value_or_the_logs(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    secrets = record_secrets(sim, monkeypatch)

    payload = query_operator().execute(make_context())

    text = logs() + json.dumps(payload)
    assert "Query of acme-prod over now-1h" in text
    assert len(secrets) == 2
    for secret in secrets:
        assert secret not in text
