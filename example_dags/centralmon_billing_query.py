"""Daily ATR billing figures: the ticket count of each domain, from the query route.

``count_tickets`` is one query per domain (dynamic task mapping: one task instance per
entry of ``DOMAINS``); ``billing_report`` gathers the answers into one mapping of domain to
ticket count, the run's XCom value for whatever consumes it next.

The query route takes OpenSearch date math, resolved by the service against its own
clock: ``now-1d/d`` counts from the start of yesterday (UTC) until the moment of the call.
Such a result cannot be reproduced later; run it shortly after midnight.

Limitation: the service documents the purpose of the query route but not its body or reply;
``billing_report`` reads the ``ticket_count`` field that the bundled simulator returns.

Try it: ``airflow dags test centralmon_billing_query``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

from airflow_provider_centralmon.operators.query import CentralMonitoringQueryOperator

# The domains billed; replace them with yours.
DOMAINS = ["acme-prod", "globex-uat", "initech-dev"]

with DAG(
    dag_id="centralmon_billing_query",
    description="Count yesterday's ATR tickets of each domain",
    # The query uses no data interval, so a plain cron preset is right on Airflow 2 and 3.
    schedule="@daily",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["centralmon", "example"],
) as dag:
    count_tickets = CentralMonitoringQueryOperator.partial(
        task_id="count_tickets",
        time_range="now-1d/d",
        centralmon_conn_id="centralmon_default",
    ).expand(domain_name=DOMAINS)

    @task
    def billing_report(payloads: list[dict[str, Any]]) -> dict[str, Any]:
        """Return the ticket count of each domain."""
        counts = {payload["domain_name"]: payload["ticket_count"] for payload in payloads}
        for domain, tickets in sorted(counts.items()):
            print(f"{domain}: {tickets} tickets")
        return counts

    billing_report(count_tickets.output)
