"""GET /events (newest first, filtered, paged) and /deliveries with replay of dead ones."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from notifier.api import AppDeps
from notifier.dispatcher import Dispatcher, DispatchOptions
from notifier.models import EVENT_TYPES, Event, PostRef, SubscriptionInput
from notifier.store.events import event_fields
from tests.api.conftest import make_settings

DEAD_URL = "json://hookuser:DeadSecretPw99@127.0.0.1:1/hook"


def event(n: int, event_type: str) -> Event:
    post = PostRef(
        id=f"post-{n}",
        caption=f"caption {n}",
        status="failed",
        scheduled_at=None,
        created_at="2025-03-01T12:00:00.000Z",
        media_type="video",
        account_ids=["acc-1"],
        platforms=["tiktok"],
    )
    return Event(
        id=f"evt-{n}",
        type=event_type,
        detected_at="2025-03-01T12:00:00.000Z",
        scope="ws_1",
        post=post,
        previous={"status": "scheduled"},
        current={"status": "failed"},
    )


async def add_events(deps: AppDeps, types: list[str]) -> list[str]:
    """Append events to the stream in the poller's entry format; returns their ids, oldest first."""
    for n, event_type in enumerate(types):
        await deps.redis.xadd(deps.keys.events, event_fields(event(n, event_type), batch="b1"))
    return [f"evt-{n}" for n in range(len(types))]


async def test_events_newest_first_with_limit(client: httpx.AsyncClient, deps: AppDeps) -> None:
    """GET /events lists the most recent transitions first, at most limit of them, with full event bodies."""
    ids = await add_events(deps, ["post.failed", "post.posted", "delivery.failed", "post.failed"])
    response = await client.get("/events", params={"limit": 3})
    assert response.status_code == 200
    items = response.json()["items"]
    assert [e["id"] for e in items] == list(reversed(ids))[:3]
    assert items[0]["post"]["id"] == "post-3"
    assert items[0]["previous"] == {"status": "scheduled"}
    assert response.json()["next_before"] is not None


async def test_events_filter_by_type_and_page_back(client: httpx.AsyncClient, deps: AppDeps) -> None:
    """type= keeps one event type; next_before pages back to older events until none are left."""
    await add_events(deps, ["post.failed", "post.posted", "post.failed", "post.posted", "post.failed"])
    first = (await client.get("/events", params={"type": "post.failed", "limit": 2})).json()
    assert [e["id"] for e in first["items"]] == ["evt-4", "evt-2"]
    second = (await client.get("/events", params={"type": "post.failed", "before": first["next_before"]})).json()
    assert [e["id"] for e in second["items"]] == ["evt-0"]
    assert second["next_before"] is None
    everything = (await client.get("/events")).json()
    assert len(everything["items"]) == 5 and everything["next_before"] is None


async def test_events_empty_stream(client: httpx.AsyncClient) -> None:
    """With no events yet, GET /events is an empty list."""
    assert (await client.get("/events")).json() == {"items": [], "next_before": None}


async def test_unknown_event_type_is_422_listing_valid_ones(client: httpx.AsyncClient) -> None:
    """An unknown type filter is a 422 naming type and listing every valid event type."""
    response = await client.get("/events", params={"type": "post.vanished"})
    assert response.status_code == 422
    error = response.json()["extra"]["errors"][0]
    assert error["field"] == "type"
    assert all(t in error["message"] for t in EVENT_TYPES)


@pytest.mark.parametrize(("params", "field"), [({"before": "yesterday"}, "before"), ({"limit": 0}, "limit")])
async def test_bad_event_query_is_422(client: httpx.AsyncClient, params: dict[str, object], field: str) -> None:
    """A malformed cursor or limit is a 422 naming the parameter."""
    response = await client.get("/events", params=params)
    assert response.status_code == 422
    assert response.json()["extra"]["errors"][0]["field"] == field


async def make_dead_delivery(deps: AppDeps) -> tuple[str, str]:
    """Run the real dispatcher against a dead target with no retries; returns (subscription id, delivery id)."""
    settings = make_settings(deps.keys, retry_schedule=(), send_timeout=2.0)
    sub = await deps.subscriptions.create(
        SubscriptionInput(name="to nowhere", urls=[DEAD_URL], events=["post.failed"]), now=datetime.now(UTC)
    )
    options = DispatchOptions(block=0.05, poll_interval=0.05, gauge_interval=0.05)
    dispatcher = Dispatcher(deps.redis, deps.keys, settings, deps.metrics, consumer="dead-test", options=options)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await add_events(deps, ["post.failed"])
    try:
        for _ in range(250):
            page, _ = await deps.deliveries.list(status="dead", subscription_id=None, limit=5, offset=0)
            if page:
                return sub.id, page[0].id
            await asyncio.sleep(0.02)
        raise AssertionError("no delivery died")
    finally:
        stop.set()
        await task


async def test_dead_delivery_listed_masked_and_replayed(client: httpx.AsyncClient, deps: AppDeps) -> None:
    """A dead delivery is listed with its target masked, replayed once by retry (200), then 409."""
    sub_id, delivery_id = await make_dead_delivery(deps)
    dead = await client.get("/deliveries", params={"status": "dead"})
    assert dead.status_code == 200
    body = dead.json()
    assert body["total"] == 1
    item = body["items"][0]
    assert (item["id"], item["status"], item["subscription_id"]) == (delivery_id, "dead", sub_id)
    assert item["last_error"]
    assert item["target"].startswith("json://")
    assert "DeadSecretPw99" not in dead.text

    metrics = (await client.get("/metrics")).text
    assert "notifier_dead_deliveries 1.0" in metrics

    one = await client.get(f"/deliveries/{delivery_id}")
    assert one.status_code == 200 and one.json()["id"] == delivery_id
    assert "DeadSecretPw99" not in one.text

    retried = await client.post(f"/deliveries/{delivery_id}/retry")
    assert retried.status_code == 200
    assert retried.json()["status"] == "pending"
    assert retried.json()["replays"] == 1
    again = await client.post(f"/deliveries/{delivery_id}/retry")
    assert again.status_code == 409
    assert "only a dead delivery" in again.json()["detail"]
    assert (await client.get("/deliveries", params={"status": "dead"})).json()["total"] == 0
    assert "notifier_dead_deliveries 0.0" in (await client.get("/metrics")).text


async def test_deliveries_filter_by_subscription(client: httpx.AsyncClient, deps: AppDeps) -> None:
    """subscription_id keeps the deliveries of that subscription only."""
    sub_id, delivery_id = await make_dead_delivery(deps)
    mine = (await client.get("/deliveries", params={"subscription_id": sub_id})).json()
    other = (await client.get("/deliveries", params={"subscription_id": "someone-else"})).json()
    assert [d["id"] for d in mine["items"]] == [delivery_id]
    assert other == {"items": [], "total": 0, "limit": 50, "offset": 0}


async def test_unknown_delivery_is_404(client: httpx.AsyncClient) -> None:
    """GET and retry of an unknown delivery id answer 404."""
    assert (await client.get("/deliveries/dlv_nope")).status_code == 404
    response = await client.post("/deliveries/dlv_nope/retry")
    assert response.status_code == 404
    assert response.json()["detail"] == "no delivery with this id"


async def test_unknown_delivery_status_is_422(client: httpx.AsyncClient) -> None:
    """A status filter outside pending/failed/sent/dead is a 422 naming status."""
    response = await client.get("/deliveries", params={"status": "lost"})
    assert response.status_code == 422
    assert response.json()["extra"]["errors"][0]["field"] == "status"
    assert "dead" in response.json()["detail"]
