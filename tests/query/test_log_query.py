from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_centralmon._query import LogQuery
from airflow_provider_centralmon.exceptions import InvalidParameterError


def test_search_body_holds_only_the_fields_set() -> None:
    query = LogQuery(application="atr", domain="d1", filters={"level": "ERROR"}, page_size=500)

    body = query.search_body("now-15m")

    assert body == {
        "application": "atr",
        "time_range": "now-15m",
        "domain": "d1",
        "filters": {"level": "ERROR"},
        "size": 500,
    }


def test_extra_body_adds_fields_the_service_may_add_later() -> None:
    query = LogQuery(application="atr", extra_body={"sort": "asc"})

    assert query.search_body("now-1d")["sort"] == "asc"


def test_identity_ignores_page_size_and_time_range() -> None:
    small = LogQuery(application="klewer", domain="d", page_size=10)
    large = LogQuery(application="klewer", domain="d", page_size=5000)

    assert small.identity() == large.identity() == {"application": "klewer", "domain": "d"}
    assert small.fingerprint() == large.fingerprint()
    assert small.fingerprint() != LogQuery(application="klewer", domain="e").fingerprint()


def test_eventops_fields_are_accepted_for_eventops() -> None:
    LogQuery(application="eventops", log_group="g", tenant="t", stage="prod").validate()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"application": "nope"}, "allow_unknown_application=True"),
        ({"application": ""}, "non-empty string"),
        ({"application": "atr", "tenant": "t"}, "tenant applies to application 'eventops' only"),
        ({"application": "atr", "app_type": "lambda"}, "through extra_body"),
        ({"application": "atr", "domain": 3}, "domain must be a string"),
        ({"application": "atr", "filters": ["level"]}, "filters must be a mapping"),
        ({"application": "atr", "filters": {"level": ["a"]}}, "match exactly"),
        ({"application": "atr", "page_size": 0}, "at least 1"),
        ({"application": "atr", "page_size": True}, "whole number"),
        ({"application": "atr", "extra_body": {"time_range": "now-1d"}}, "may not set time_range"),
        ({"application": "atr", "filters": {"latency": float("nan")}}, "a finite number"),
        ({"application": "atr", "filters": {"latency": float("-inf")}}, "a finite number"),
        ({"application": "atr", "extra_body": {"Application": "x"}}, "may not set Application"),
        ({"application": "atr", "extra_body": {"TIME_RANGE": "now-1d"}}, "may not set TIME_RANGE"),
        (
            {"application": "atr", "app_type": "ec2", "extra_body": {"app_type": "caas"}},
            "sets app_type, and so does the app_type parameter",
        ),
        (
            {"application": "atr", "app_type": "ec2", "extra_body": {"App_Type": "caas"}},
            "sets App_Type, and so does the app_type parameter",
        ),
    ],
)
def test_bad_fields_are_refused_with_what_to_change(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        LogQuery(**fields).validate()


def test_a_new_application_can_be_allowed() -> None:
    LogQuery(application="newapp", allow_unknown_application=True).validate()


def test_templated_values_are_left_for_after_rendering() -> None:
    LogQuery(application="{{ params.app }}", tenant="{{ params.tenant }}").validate()


def test_a_new_app_type_goes_through_extra_body() -> None:
    query = LogQuery(application="atr", extra_body={"app_type": "lambda"})

    query.validate()

    assert query.search_body("now-1h")["app_type"] == "lambda"
