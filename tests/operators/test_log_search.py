"""LogSearchMixin: its checks at parse and run time, the window of a run, the scroll loop."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from operator_support import make_context, xcom_arg
from requests.adapters import HTTPAdapter

from airflow_provider_centralmon._log_search import SearchStats, data_interval_of
from airflow_provider_centralmon.exceptions import (
    InvalidParameterError,
    InvalidWindowError,
    QuotaExhaustedError,
    QuotaFloorError,
    RecordTimeError,
    StaleTimeRangeError,
)
from airflow_provider_centralmon.hooks.centralmon import CentralMonitoringHook
from airflow_provider_centralmon.operators.logs import CentralMonitoringLogsOperator
from airflow_provider_centralmon.simulator.handle import SimulatorHandle

SCROLL = "/v2/logs/scroll"
START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
END = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


def operator(**kwargs: Any) -> CentralMonitoringLogsOperator:
    return CentralMonitoringLogsOperator(**{"task_id": "logs", "application": "atr", **kwargs})


def scroll_calls(sim: SimulatorHandle) -> int:
    return int(sim.counters()["routes"].get(SCROLL, {}).get("calls", 0))


def recent_window(sim: SimulatorHandle, minutes: int = 30) -> tuple[datetime, datetime]:
    end = sim.now() - timedelta(minutes=5)
    return end - timedelta(minutes=minutes), end


# -- checks when the DAG is parsed ----------------------------------------------------------

PARSE_TIME_ERRORS = [
    ({"application": "splunk"}, "allow_unknown_application=True"),
    ({"application": ""}, "application must be a non-empty string"),
    ({"application": 7}, "application must be a non-empty string"),
    ({"app_type": "lambda"}, "app_type 'lambda' is not one of caas, ec2"),
    ({"domain": 3}, "domain must be a string"),
    ({"log_group": "/aws/x"}, "log_group applies to application 'eventops' only"),
    ({"tenant": "t"}, "tenant applies to application 'eventops' only"),
    ({"stage": "prod"}, "stage applies to application 'eventops' only"),
    ({"filters": ["level"]}, "filters must be a mapping"),
    ({"filters": {"level": ["a", "b"]}}, "must be a string, number or boolean"),
    ({"filters": {"": "x"}}, "filter names must be non-empty strings"),
    ({"page_size": 0}, "page_size must be at least 1"),
    ({"page_size": True}, "page_size must be a whole number"),
    ({"page_size": "{{ params.size }}"}, "page_size is not templated"),
    ({"extra_body": "size=5"}, "extra_body must be a mapping"),
    ({"extra_body": {"size": 5}}, "extra_body may not set size"),
    ({"extra_body": {"time_range": "now-1d"}}, "extra_body may not set time_range"),
    ({"allow_unknown_application": "yes"}, "allow_unknown_application must be True or False"),
    ({"start": START}, "end is missing"),
    ({"end": END}, "start is missing"),
    ({"start": END, "end": START}, "is after end"),
    ({"start": START, "end": START}, "the window is empty (start equals end"),
    ({"start": "2026-12-01T10:00:00", "end": END}, "has no time zone"),
    ({"start": START, "end": datetime(2026, 12, 1, 11)}, "has no time zone"),
    ({"start": "yesterday", "end": END}, "is not an ISO 8601 datetime"),
    ({"start": 5, "end": END}, "start must be a datetime or an ISO 8601 string"),
    ({"time_range": "now-1h", "start": START, "end": END}, "set either time_range or start"),
    ({"time_range": " "}, "time_range must be a non-empty OpenSearch date math string"),
    ({"timestamp_field": ""}, "timestamp_field must be a non-empty field name"),
    ({"untimed_records": "ignore"}, "untimed_records 'ignore' is unknown"),
    ({"lower_bound_style": "absolute"}, "lower_bound_style 'absolute' is unknown"),
    ({"clock_skew_margin": -1}, "clock_skew_margin must not be negative"),
    ({"clock_skew_margin": "5m"}, "clock_skew_margin must be a timedelta or a number"),
    ({"clock_skew_margin": float("nan")}, "clock_skew_margin must be at most 1 day"),
    ({"clock_skew_margin": float("inf")}, "clock_skew_margin must be at most 1 day"),
    ({"clock_skew_margin": 1e15}, "clock_skew_margin must be at most 1 day"),
    ({"clock_skew_margin": 10**400}, "clock_skew_margin must be at most 1 day"),
    ({"clock_skew_margin": timedelta(days=2)}, "clock_skew_margin must be at most 1 day"),
    ({"time_range": 5}, "time_range must be a non-empty OpenSearch date math string"),
    ({"filters": {"latency": float("nan")}}, "filter 'latency' must be a finite number"),
    ({"app_type": "ec2", "extra_body": {"app_type": "caas"}}, "extra_body sets app_type"),
    ({"extra_body": {"Application": "klewer"}}, "extra_body may not set Application"),
    ({"keep_hit_metadata": 1}, "keep_hit_metadata must be True or False"),
    ({"centralmon_conn_id": ""}, "centralmon_conn_id must be a non-empty connection id"),
    ({"min_daily_remaining": -1}, "min_daily_remaining must be a whole number"),
    ({"min_daily_remaining": 2.5}, "min_daily_remaining must be a whole number"),
    ({"max_records": 0}, "max_records must be a positive whole number"),
    ({"max_records": True}, "max_records must be a positive whole number"),
]


@pytest.mark.parametrize(("kwargs", "message"), PARSE_TIME_ERRORS)
def test_a_bad_literal_parameter_fails_when_the_dag_is_parsed(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidParameterError) as raised:
        operator(**kwargs)

    assert message in str(raised.value)


def test_a_time_range_from_xcom_is_checked_at_run_time() -> None:
    upstream = xcom_arg()

    assert operator(time_range=upstream).time_range is upstream


def test_window_errors_are_window_errors() -> None:
    with pytest.raises(InvalidWindowError):
        operator(start=END, end=START)


def test_eventops_fields_and_a_new_application_are_accepted_when_allowed() -> None:
    eventops = operator(application="eventops", log_group="/aws/x", tenant="t", stage="prod")
    new = operator(application="observer", allow_unknown_application=True)

    assert (eventops.log_group, eventops.tenant, eventops.stage) == ("/aws/x", "t", "prod")
    assert new.application == "observer"


def test_templated_values_are_left_for_run_time() -> None:
    task = operator(
        application="{{ params.app }}",
        domain="{{ params.domain }}",
        start="{{ data_interval_start }}",
        end="{{ data_interval_end }}",
        filters={"level": "{{ params.level }}"},
    )

    assert task.application == "{{ params.app }}"


# -- checks once rendered, before the first call ----------------------------------------------


def test_rendered_fields_are_checked_before_any_call(sim: SimulatorHandle) -> None:
    task = operator(application="{{ params.app }}")
    context = make_context(params={"app": "splunk"})
    task.render_template_fields(context)

    with pytest.raises(InvalidParameterError, match="allow_unknown_application"):
        task.execute(context)

    assert sim.counters()["token_requests"] == 0
    assert scroll_calls(sim) == 0


def test_rendered_eventops_field_of_another_application_fails(sim: SimulatorHandle) -> None:
    task = operator(application="{{ params.app }}", stage="prod")
    context = make_context(params={"app": "klewer"})
    task.render_template_fields(context)

    with pytest.raises(InvalidParameterError, match="stage applies to application 'eventops'"):
        task.execute(context)

    assert scroll_calls(sim) == 0


def test_a_bound_rendered_without_time_zone_fails(sim: SimulatorHandle) -> None:
    start, end = recent_window(sim)
    task = operator(start="{{ params.start }}", end=end)
    context = make_context(params={"start": start.replace(tzinfo=None).isoformat()})
    task.render_template_fields(context)

    with pytest.raises(InvalidWindowError, match="has no time zone"):
        task.execute(context)

    assert scroll_calls(sim) == 0


def test_a_template_left_after_rendering_fails(sim: SimulatorHandle) -> None:
    task = operator(domain="{{ params.domain }}")
    task.domain = "{{ never rendered }}"
    start, end = recent_window(sim)

    with pytest.raises(InvalidParameterError, match="still holds a template"):
        task.execute(make_context(interval_start=start, interval_end=end))


def test_zero_length_data_interval_says_what_to_set(sim: SimulatorHandle) -> None:
    # Manual runs on Airflow 3 have start == end == the logical date.
    instant = sim.now() - timedelta(minutes=10)
    task = operator()

    with pytest.raises(InvalidWindowError) as raised:
        task.execute(make_context(interval_start=instant, interval_end=instant))

    message = str(raised.value)
    assert "the run's data interval is empty" in message
    assert "pass start and end explicitly" in message
    assert scroll_calls(sim) == 0


def test_a_run_without_data_interval_says_what_to_set(sim: SimulatorHandle) -> None:
    with pytest.raises(InvalidWindowError, match="set start and end"):
        operator().execute(make_context())

    assert scroll_calls(sim) == 0


def test_an_end_in_the_future_fails(sim: SimulatorHandle) -> None:
    start = sim.now() - timedelta(minutes=30)
    end = sim.now() + timedelta(minutes=1)

    with pytest.raises(InvalidWindowError, match="lies in the future"):
        operator(start=start, end=end).execute(make_context())

    assert scroll_calls(sim) == 0


def test_the_data_interval_is_the_default_window(sim: SimulatorHandle) -> None:
    start, end = recent_window(sim)
    task = operator()

    plan = task.plan_search(make_context(interval_start=start, interval_end=end))

    assert (plan.window.start, plan.window.end) == (start, end)


def test_the_data_interval_is_read_from_the_dag_run_when_the_context_lacks_it() -> None:
    dag_run = type("DagRun", (), {"data_interval_start": START, "data_interval_end": END})()

    assert data_interval_of({"dag_run": dag_run}) == (START, END)


# -- the scroll loop ---------------------------------------------------------------------------


def test_only_the_records_of_the_window_are_yielded(sim: SimulatorHandle) -> None:
    start, end = recent_window(sim, minutes=45)
    task = operator(start=start, end=end, page_size=100)
    plan = task.plan_search(make_context())
    stats = SearchStats()
    pages: list[int] = []

    with task.get_hook() as hook:
        found = list(
            task.iter_window_records(
                hook, plan, stats=stats, on_page=lambda page: pages.append(page.number)
            )
        )

    expected = sim.records_between(start, end, "atr")
    assert [record.record_id for record in found] == [hit["_id"] for hit in expected]
    assert [record.record for record in found] == [hit["_source"] for hit in expected]
    assert pages == list(range(1, stats.pages + 1))
    assert stats.pages == scroll_calls(sim)
    assert stats.records_yielded == len(expected) == plan.window_filter.counts.in_window
    assert stats.records_received == sim.counters()["routes"][SCROLL]["records"]
    assert stats.time_range == "now-55m"
    assert stats.route == SCROLL
    assert stats.first_request_id
    assert stats.last_request_id
    assert stats.daily_remaining == 99


def test_the_lower_bound_is_computed_when_the_first_page_is_requested(
    sim: SimulatorHandle,
) -> None:
    start, end = recent_window(sim, minutes=20)
    task = operator(start=start, end=end)
    plan = task.plan_search(make_context())
    sim.clock.advance(600)  # the task waited ten minutes between planning and fetching
    stats = SearchStats()

    with task.get_hook() as hook:
        found = list(task.iter_window_records(hook, plan, stats=stats))

    assert stats.time_range == "now-40m"
    assert len(found) == len(sim.records_between(start, end, "atr"))


def test_a_limit_stops_the_scroll_at_the_page_holding_the_last_record(
    sim: SimulatorHandle,
) -> None:
    start, end = recent_window(sim, minutes=60)
    task = operator(start=start, end=end, page_size=50)
    plan = task.plan_search(make_context())
    stats = SearchStats()

    with task.get_hook() as hook:
        found = list(task.iter_window_records(hook, plan, limit=120, stats=stats))

    # The scroll starts five minutes before the window: those records come first.
    before = len(sim.records_between(start - timedelta(minutes=5), start, "atr"))
    assert len(found) == 120
    assert stats.stopped_at_limit
    assert scroll_calls(sim) == stats.pages == (before + 120 + 49) // 50


def test_a_limit_below_one_is_refused(sim: SimulatorHandle) -> None:
    task = operator(start=recent_window(sim)[0], end=recent_window(sim)[1])
    plan = task.plan_search(make_context())

    with task.get_hook() as hook, pytest.raises(InvalidParameterError, match="limit"):
        next(task.iter_window_records(hook, plan, limit=0))


@pytest.mark.parametrize(
    ("policy", "kept"),
    [("keep", True), ("drop", False)],
)
def test_untimed_records_follow_the_policy(sim: SimulatorHandle, policy: str, kept: bool) -> None:
    start, end = recent_window(sim, minutes=10)
    task = operator(start=start, end=end, timestamp_field="no_such_field", untimed_records=policy)
    plan = task.plan_search(make_context())

    with task.get_hook() as hook:
        found = list(task.iter_window_records(hook, plan))

    received = sim.counters()["routes"][SCROLL]["records"]
    counts = plan.window_filter.counts
    assert len(found) == (received if kept else 0)
    assert (counts.untimed_kept, counts.untimed_dropped) == (
        (received, 0) if kept else (0, received)
    )


def test_untimed_records_fail_the_search_when_asked(sim: SimulatorHandle) -> None:
    start, end = recent_window(sim, minutes=10)
    task = operator(start=start, end=end, timestamp_field="no_such_field", untimed_records="fail")
    plan = task.plan_search(make_context())

    with task.get_hook() as hook, pytest.raises(RecordTimeError, match="no_such_field") as raised:
        list(task.iter_window_records(hook, plan))

    # The message names the operator's parameter.
    assert "set untimed_records to 'keep' or 'drop'" in str(raised.value)


def test_keep_hit_metadata_keeps_the_whole_hit(sim: SimulatorHandle) -> None:
    start, end = recent_window(sim, minutes=10)
    task = operator(start=start, end=end, keep_hit_metadata=True)
    plan = task.plan_search(make_context())

    with task.get_hook() as hook:
        found = list(task.iter_window_records(hook, plan))

    assert [record.record for record in found] == sim.records_between(start, end, "atr")
    assert plan.export_fields()["keep_hit_metadata"] is True


# -- the first call's lower bound under retries and delays ------------------------------------


class DelayedFirstScroll(HTTPAdapter):
    """Sits in front of the simulator and holds up the first scroll call (no scroll_id).

    It answers that call ``busy`` times with a 503 and ``Retry-After: 120`` before letting it
    through, and moves the simulator's clock on by ``in_flight_s`` while the call that goes
    through travels, as a slow network or a slow service would.
    """

    def __init__(self, sim: SimulatorHandle, *, busy: int = 0, in_flight_s: float = 0) -> None:
        super().__init__()
        self.sim = sim
        self.busy = busy
        self.in_flight_s = in_flight_s
        self.first_time_ranges: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if str(request.url).endswith(SCROLL):
            body = json.loads(request.body or b"{}")
            if "scroll_id" not in body:
                self.first_time_ranges.append(body["time_range"])
                if self.busy > 0:
                    self.busy -= 1
                    return self._busy(request)
                self.sim.clock.advance(self.in_flight_s)
        return super().send(request, **kwargs)

    @staticmethod
    def _busy(request: requests.PreparedRequest) -> requests.Response:
        response = requests.Response()
        response.status_code = 503
        response._content = b"<html>busy</html>"
        response.headers["Retry-After"] = "120"
        response.url, response.request = str(request.url), request
        return response


def delayed_operator(
    sim: SimulatorHandle, adapter: DelayedFirstScroll, **kwargs: Any
) -> CentralMonitoringLogsOperator:
    """An operator whose hook goes through ``adapter`` and whose retry waits move the clock."""

    class DelayedLogsOperator(CentralMonitoringLogsOperator):
        def get_hook(self) -> CentralMonitoringHook:
            return CentralMonitoringHook(
                self.centralmon_conn_id,
                http_adapter=adapter,
                clock=lambda: self.now().timestamp(),
                sleep=sim.clock.advance,
                rng=lambda: 0.5,
            )

    return DelayedLogsOperator(**{"task_id": "logs", "application": "atr", **kwargs})


def test_retries_of_the_first_call_keep_the_start_of_the_window(sim: SimulatorHandle) -> None:
    # Two 429s from the token endpoint, then four 503s, each asking for two minutes: eight
    # minutes in all, more than the five-minute margin.
    sim.set_faults("/oauth2/token=rate_limit,count=2")
    adapter = DelayedFirstScroll(sim, busy=4)
    start, end = recent_window(sim, minutes=30)

    found = delayed_operator(sim, adapter, start=start, end=end).execute(make_context())

    assert found == [hit["_source"] for hit in sim.records_between(start, end, "atr")]
    first = int(adapter.first_time_ranges[0].removeprefix("now-").removesuffix("m"))
    assert adapter.first_time_ranges == [f"now-{first + 2 * n}m" for n in range(5)]


def test_a_first_reply_later_than_the_margin_allows_fails_loudly(sim: SimulatorHandle) -> None:
    adapter = DelayedFirstScroll(sim, in_flight_s=6 * 60)
    start, end = recent_window(sim, minutes=30)
    task = delayed_operator(sim, adapter, start=start, end=end)

    with pytest.raises(StaleTimeRangeError) as raised:
        task.execute(make_context())

    message = str(raised.value)
    assert "records from the start of the window may be missing" in message
    assert "clock_skew_margin" in message
    assert raised.value.retryable


def test_a_late_first_reply_is_fine_with_an_anchored_lower_bound(sim: SimulatorHandle) -> None:
    adapter = DelayedFirstScroll(sim, in_flight_s=6 * 60)
    start, end = recent_window(sim, minutes=30)
    task = delayed_operator(sim, adapter, start=start, end=end, lower_bound_style="anchored")

    found = task.execute(make_context())

    assert found == [hit["_source"] for hit in sim.records_between(start, end, "atr")]


# -- quota ---------------------------------------------------------------------------------------


def test_quota_floor_refuses_before_any_call(
    centralmon_simulator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from operator_support import attach

    sim = attach(centralmon_simulator_factory(quotas={SCROLL: 3}), monkeypatch)
    start, end = recent_window(sim, minutes=10)
    operator(start=start, end=end).execute(make_context())
    spent = sim.counters()

    with pytest.raises(QuotaFloorError) as raised:
        operator(start=start, end=end, min_daily_remaining=5).execute(make_context())

    assert sim.counters() == spent
    assert raised.value.remaining == 2
    assert "below min_daily_remaining=5" in str(raised.value)
    assert raised.value.resets_at == datetime.combine(
        sim.now().date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC
    )


def test_quota_floor_passes_at_or_above_the_floor_and_without_a_reading(
    centralmon_simulator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from operator_support import attach

    sim = attach(centralmon_simulator_factory(quotas={SCROLL: 3}), monkeypatch)
    start, end = recent_window(sim, minutes=10)

    operator(start=start, end=end, min_daily_remaining=50).execute(make_context())
    operator(start=start, end=end, min_daily_remaining=2).execute(make_context())

    assert scroll_calls(sim) == 2


def test_an_exhausted_quota_raises_quota_exhausted_and_is_remembered(
    sim: SimulatorHandle,
) -> None:
    sim.set_faults("/v2/logs/scroll=rate_limit")
    start, end = recent_window(sim, minutes=10)

    with pytest.raises(QuotaExhaustedError) as raised:
        operator(start=start, end=end).execute(make_context())

    assert not isinstance(raised.value, QuotaFloorError)
    assert raised.value.http_status == 429
    assert scroll_calls(sim) == 1

    sim.set_faults()
    with pytest.raises(QuotaFloorError):
        operator(start=start, end=end, min_daily_remaining=1).execute(make_context())
    assert scroll_calls(sim) == 1
