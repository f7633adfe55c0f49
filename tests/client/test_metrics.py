"""Every attempt is counted by endpoint and code, and its latency observed."""

from __future__ import annotations

import httpx
import pytest

from notifier.errors import PartnerApiError, TransportError
from notifier.genviral import PartnerClient
from notifier.metrics import ENDPOINTS, Metrics

from .conftest import ScriptedApi, example, fail


def requests(metrics: Metrics, endpoint: str, code: str) -> float | None:
    return metrics.registry.get_sample_value(
        "notifier_partner_api_requests_total", {"endpoint": endpoint, "code": code}
    )


def observed(metrics: Metrics, endpoint: str) -> float | None:
    return metrics.registry.get_sample_value(
        "notifier_partner_api_request_duration_seconds_count", {"endpoint": endpoint}
    )


async def test_each_attempt_counted_with_its_status(api: ScriptedApi, client: PartnerClient, metrics: Metrics) -> None:
    """Two 500s and a 200 count 2 under code 500 and 1 under 200, with three latencies."""
    api.reply(fail(500), fail(500), httpx.Response(200, json=example("list_posts")))
    await client.list_posts()
    assert requests(metrics, "list_posts", "500") == 2.0
    assert requests(metrics, "list_posts", "200") == 1.0
    assert observed(metrics, "list_posts") == 3.0


async def test_transport_failures_counted_by_kind(api: ScriptedApi, client: PartnerClient, metrics: Metrics) -> None:
    """Timeouts and connection errors are counted under code timeout / connection_error."""
    api.reply(
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    )
    with pytest.raises(TransportError):
        await client.get_pack("p1")
    assert requests(metrics, "get_pack", "timeout") == 2.0
    assert requests(metrics, "get_pack", "connection_error") == 2.0
    assert observed(metrics, "get_pack") == 4.0


async def test_client_error_counted_once(api: ScriptedApi, client: PartnerClient, metrics: Metrics) -> None:
    """A 403 is one attempt, counted once under its status."""
    api.reply(fail(403, "tier_not_allowed"))
    with pytest.raises(PartnerApiError):
        await client.list_accounts()
    assert requests(metrics, "list_accounts", "403") == 1.0
    assert requests(metrics, "list_accounts", "200") is None


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_endpoint_label_names_the_call(
    api: ScriptedApi, client: PartnerClient, metrics: Metrics, endpoint: str
) -> None:
    """Each method counts under its own endpoint label from metrics.ENDPOINTS."""
    api.reply(httpx.Response(200, json=example(endpoint)))
    method = getattr(client, endpoint)
    await (method("11111111-1111-1111-1111-111111111111") if endpoint.startswith("get_") else method())
    assert requests(metrics, endpoint, "200") == 1.0
    assert sum(requests(metrics, other, "200") or 0.0 for other in ENDPOINTS) == 1.0


async def test_client_without_metrics_still_works(api: ScriptedApi) -> None:
    """Metrics are optional: a client built without them answers normally."""
    api.reply(httpx.Response(200, json=example("list_accounts")))
    http = httpx.AsyncClient(transport=httpx.MockTransport(api.handler))
    async with http:
        client = PartnerClient(http, base_url="https://partner.test", api_key="k")
        page = await client.list_accounts()
    assert page.owner_user_id == "7be83ba4-14e5-47ba-a662-0ad42d852111"
