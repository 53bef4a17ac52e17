"""CentralMonitoringLogsOperator against the simulator: records, the XCom guard, templating."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from operator_support import make_context, record_secrets, xcom_arg

from airflow_provider_centralmon.exceptions import InvalidParameterError
from airflow_provider_centralmon.operators.logs import CentralMonitoringLogsOperator
from airflow_provider_centralmon.simulator.handle import SimulatorHandle
from airflow_provider_centralmon.simulator.scroll import Page

SCROLL = "/v2/logs/scroll"


def operator(**kwargs: Any) -> CentralMonitoringLogsOperator:
    return CentralMonitoringLogsOperator(**{"task_id": "logs", "application": "atr", **kwargs})


def window(sim: SimulatorHandle, minutes: int) -> tuple[datetime, datetime]:
    end = sim.now() - timedelta(minutes=3)
    return end - timedelta(minutes=minutes), end


def scroll_calls(sim: SimulatorHandle) -> int:
    return int(sim.counters()["routes"].get(SCROLL, {}).get("calls", 0))


def test_returns_the_records_of_the_data_interval_unwrapped_and_in_order(
    sim: SimulatorHandle,
) -> None:
    start, end = window(sim, 40)

    records = operator(page_size=64).execute(make_context(interval_start=start, interval_end=end))

    expected = sim.records_between(start, end, "atr")
    assert len(expected) > 300
    assert records == [hit["_source"] for hit in expected]
    assert scroll_calls(sim) > 1


def test_filters_and_domain_are_sent(sim: SimulatorHandle) -> None:
    start, end = window(sim, 60)
    task = operator(start=start, end=end, domain="acme-prod", filters={"level": "ERROR"})

    records = task.execute(make_context())

    expected = sim.records_between(start, end, "atr", domain="acme-prod", level="ERROR")
    assert records == [hit["_source"] for hit in expected]
    assert 0 < len(records) < len(sim.records_between(start, end, "atr"))


def test_keep_hit_metadata_returns_whole_hits(sim: SimulatorHandle) -> None:
    start, end = window(sim, 10)

    records = operator(start=start, end=end, keep_hit_metadata=True).execute(make_context())

    assert records == sim.records_between(start, end, "atr")


def test_exactly_max_records_are_returned(sim: SimulatorHandle) -> None:
    start, end = window(sim, 30)
    count = len(sim.records_between(start, end, "atr"))

    records = operator(start=start, end=end, max_records=count).execute(make_context())

    assert len(records) == count


def test_past_max_records_the_task_fails_without_fetching_further_pages(
    sim: SimulatorHandle,
) -> None:
    start, end = window(sim, 120)
    page_size = 100
    task = operator(start=start, end=end, max_records=250, page_size=page_size)

    with pytest.raises(InvalidParameterError) as raised:
        task.execute(make_context())

    # The scroll starts five minutes (the clock skew margin) before the window.
    before = len(sim.records_between(start - timedelta(minutes=5), start, "atr"))
    pages_needed = (before + 251 + page_size - 1) // page_size
    assert scroll_calls(sim) == pages_needed
    assert pages_needed < (len(sim.records_between(start, end, "atr")) + before) // page_size
    message = str(raised.value)
    assert "more than max_records=250" in message
    assert "CentralMonitoringLogsToStorageOperator" in message


def repeat_each_page_end(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every page after the first start with the last hit of the page before it."""
    cursors = sim.state.cursors
    open_cursor, advance = cursors.open, cursors.advance
    last_hits: list[Any] = []

    def opening(*args: Any, **kwargs: Any) -> Page:
        page = open_cursor(*args, **kwargs)
        last_hits[:] = page.hits[-1:]
        return page

    def advancing(*args: Any, **kwargs: Any) -> Page | None:
        page = advance(*args, **kwargs)
        if page is None:
            return None
        repeated = Page([*last_hits, *page.hits], page.scroll_id, page.has_more)
        last_hits[:] = page.hits[-1:]
        return repeated

    monkeypatch.setattr(cursors, "open", opening)
    monkeypatch.setattr(cursors, "advance", advancing)


def test_a_hit_sent_on_two_pages_is_returned_once(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    repeat_each_page_end(sim, monkeypatch)
    start, end = window(sim, 40)
    expected = sim.records_between(start, end, "atr")

    records = operator(start=start, end=end, page_size=64).execute(make_context())
    exactly = operator(start=start, end=end, page_size=64, max_records=len(expected))

    assert records == [hit["_source"] for hit in expected]
    assert exactly.execute(make_context()) == records
    assert "duplicates dropped" in logs()


def test_templated_fields_are_rendered_from_the_context(sim: SimulatorHandle) -> None:
    start, end = window(sim, 30)
    task = operator(
        application="{{ params.app }}",
        domain="{{ params.domain }}",
        filters={"level": "{{ params.level }}"},
        start="{{ data_interval_start.isoformat() }}",
        end="{{ (data_interval_end - macros.timedelta(minutes=10)).isoformat() }}",
    )
    context = make_context(
        interval_start=start,
        interval_end=end,
        params={"app": "klewer", "domain": "globex-uat", "level": "INFO"},
        macros=type("Macros", (), {"timedelta": timedelta}),
    )
    task.render_template_fields(context)

    records = task.execute(context)

    assert (task.application, task.domain, task.filters) == (
        "klewer",
        "globex-uat",
        {"level": "INFO"},
    )
    assert task.end == (end - timedelta(minutes=10)).isoformat()
    expected = sim.records_between(
        start, end - timedelta(minutes=10), "klewer", domain="globex-uat", level="INFO"
    )
    assert records == [hit["_source"] for hit in expected]
    assert records


def test_a_value_from_xcom_is_checked_only_at_run_time() -> None:
    upstream = xcom_arg()

    task = operator(application=upstream, domain=upstream, start=upstream, end=upstream)

    assert task.application is upstream
    assert task.upstream_task_ids == {"upstream"}


def test_no_secret_reaches_the_xcom_value_or_the_logs(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    secrets = record_secrets(sim, monkeypatch)
    start, end = window(sim, 60)

    records = operator(start=start, end=end, page_size=100).execute(make_context())
    with pytest.raises(InvalidParameterError) as raised:
        operator(start=start, end=end, page_size=100, max_records=5).execute(make_context())

    text = logs() + json.dumps(records) + str(raised.value)
    assert len(secrets) > 5  # the client secret, a token, several scroll ids
    assert "Fetched" in text
    for secret in secrets:
        assert secret not in text
