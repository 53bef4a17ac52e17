"""Helpers shared by the simulator tests."""

from __future__ import annotations

from typing import Any

import requests

from airflow_provider_centralmon.simulator.handle import SimulatorHandle


class Api:
    """A bearer-token HTTP client of one simulator, as a test would write one by hand."""

    def __init__(self, simulator: SimulatorHandle) -> None:
        self.simulator = simulator
        self.session = requests.Session()
        reply = self.session.post(
            simulator.auth_url,
            data={
                "grant_type": "client_credentials",
                "client_id": simulator.client_id,
                "client_secret": simulator.client_secret,
            },
            timeout=10,
        )
        reply.raise_for_status()
        self.token = reply.json()["access_token"]

    def post(self, route: str, body: Any, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 10)
        return self.session.post(
            self.simulator.base_url + route, json=body, headers=headers, **kwargs
        )

    def scroll_all(self, body: dict[str, Any], route: str = "/v1/logs/scroll") -> list[Any]:
        pages = [self.post(route, body)]
        while payload(pages[-1])["has_more"]:
            pages.append(self.post(route, {"scroll_id": payload(pages[-1])["scroll_id"]}))
        assert all(page.status_code == 200 for page in pages)
        return pages


def payload(reply: requests.Response) -> Any:
    """Return the payload of a V1 or V2 reply."""
    body = reply.json()
    return body["data"] if "meta" in body else body


def ids(hits: list[Any]) -> list[str]:
    return [hit["_id"] for hit in hits]
