"""Fixtures of the Partner API client tests: a scripted API behind httpx.MockTransport, recorded sleeps."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifier.genviral import PartnerClient, RetryPolicy
from notifier.metrics import Metrics

API_KEY = "gv_live_S3cr3t-partner-key-0123456789abcdef"
BASE_URL = "https://partner.test/api/partner/v1"
DATA = Path(__file__).parent / "data"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def example(name: str) -> dict[str, Any]:
    """The documented example response of an endpoint (copied from the API pages)."""
    loaded: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return loaded


def ok(data: Any, **headers: str) -> httpx.Response:
    return httpx.Response(200, json={"ok": True, "code": 200, "message": "ok", "data": data}, headers=headers)


def fail(status: int, error_code: str | None = None, message: str = "failed", **headers: str) -> httpx.Response:
    body: dict[str, Any] = {"ok": False, "code": status, "message": message}
    if error_code is not None:
        body["error_code"] = error_code
    return httpx.Response(status, json=body, headers=headers)


class ScriptedApi:
    """Answers requests from a script, in order; the last reply repeats. Records every request."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[httpx.Request] = []

    def reply(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        if isinstance(item, httpx.Response):
            return item
        return item(request)


@pytest.fixture
def api() -> ScriptedApi:
    return ScriptedApi()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics.create()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
async def make_client(
    api: ScriptedApi, metrics: Metrics, sleeps: list[float]
) -> AsyncIterator[Callable[..., PartnerClient]]:
    """Builds clients over the scripted API; sleeping only records the delay."""
    https: list[httpx.AsyncClient] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    def make(retry: RetryPolicy | None = None, base_url: str = BASE_URL, **kwargs: Any) -> PartnerClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(api.handler))
        https.append(http)
        return PartnerClient(
            http, base_url=base_url, api_key=API_KEY, metrics=metrics, retry=retry, sleep=sleep, **kwargs
        )

    yield make
    for http in https:
        await http.aclose()


@pytest.fixture
def client(make_client: Callable[..., PartnerClient]) -> PartnerClient:
    return make_client()
