"""/metrics: Prometheus text with every metric of DESIGN §6, gauges read from Redis, no id or URL in a label."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from notifier.api import AppDeps
from notifier.dispatcher import Dispatcher, DispatchOptions
from notifier.genviral.client import PartnerClient, RetryPolicy
from notifier.models import SubscriptionInput
from notifier.poller import Poller
from notifier.simulator.server import SimulatorServer
from tests.api.conftest import API_KEY, SLACK, Receiver, make_settings
from tests.design import DESIGN_METRICS

ALLOWED_LABELS = {"result", "endpoint", "code", "type", "role", "le", "quantile"}
_LOW_CARDINALITY = re.compile(r"^[a-z0-9_.+-]{1,32}$|^\+Inf$")


def parse(text: str) -> dict[str, list[Sample]]:
    families: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        name = family.name + ("_total" if family.type == "counter" else "")
        families[name] = list(family.samples)
    return families


def value(families: dict[str, list[Sample]], name: str) -> float:
    (sample,) = families[name]
    return float(sample.value)


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(api_key=API_KEY) as server:
        server.state.add_account("tiktok", id="acc-tiktok-1", username="tt", display_name="TT")
        server.state.add_post(id="post-0001", status="scheduled", caption="hello", accounts=["acc-tiktok-1"])
        yield server


async def exercise(deps: AppDeps, sim: SimulatorServer, receiver: Receiver) -> None:
    """Run the real poller (baseline, then a failure) and dispatcher so every labelled metric has samples."""
    settings = make_settings(deps.keys, genviral_base_url=sim.base_url)
    async with httpx.AsyncClient(timeout=5) as http:
        client = PartnerClient(
            http, base_url=sim.base_url, api_key=API_KEY, metrics=deps.metrics, retry=RetryPolicy(attempts=1)
        )
        poller = Poller(client, deps.redis, deps.keys, settings, deps.metrics, owner="metrics-test")
        assert (await poller.cycle()).result == "ok"
        subscription = SubscriptionInput(
            name="all to a receiver", urls=[receiver.url("json", "/metrics-hook")], events=["*"]
        )
        await deps.subscriptions.create(subscription, now=datetime.now(UTC))
        sim.state.update_post("post-0001", status="failed")
        sim.state.set_delivery("post-0001", "acc-tiktok-1", status="failed", error_message="TikTok said no")
        report = await poller.cycle()
        assert report.result == "ok" and report.events > 0
    options = DispatchOptions(block=0.05, poll_interval=0.05, gauge_interval=0.05)
    dispatcher = Dispatcher(deps.redis, deps.keys, settings, deps.metrics, consumer="m", options=options)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    for _ in range(200):
        if receiver.bodies:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await task
    assert receiver.bodies


async def test_every_design_metric_is_exposed_with_low_cardinality_labels(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, deps: AppDeps, sim: SimulatorServer, receiver: Receiver
) -> None:
    """After real polls and sends, /metrics parses, has every DESIGN §6 name, and no label holds an id or URL."""
    await exercise(deps, sim, receiver)
    response = await anon.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = parse(response.text)
    missing = [name for name in DESIGN_METRICS if name not in families]
    assert missing == []
    ids = {"post-0001", "acc-tiktok-1", *(s.id for s in await deps.subscriptions.list_all())}
    for name, samples in families.items():
        for sample in samples:
            assert set(sample.labels) <= ALLOWED_LABELS, (name, sample.labels)
            for label_value in sample.labels.values():
                assert _LOW_CARDINALITY.match(label_value), (name, sample.labels)
                assert label_value not in ids and "://" not in label_value
    assert "acc-tiktok-1" not in response.text and "post-0001" not in response.text
    transitions = {s.labels["type"] for s in families["notifier_transitions_total"]}
    assert "post.failed" in transitions
    endpoints = {s.labels["endpoint"] for s in families["notifier_partner_api_requests_total"]}
    assert {"list_accounts", "list_posts"} <= endpoints
    assert any(s.labels == {"result": "sent"} and s.value >= 1 for s in families["notifier_notifications_total"])


async def test_gauges_are_read_from_redis_at_scrape(
    anon: httpx.AsyncClient, client: httpx.AsyncClient, deps: AppDeps, sim: SimulatorServer, receiver: Receiver
) -> None:
    """Subscriptions, tracked posts, backlog and last successful poll reflect Redis when scraped."""
    await exercise(deps, sim, receiver)
    for n in range(2):
        await client.post("/subscriptions", json={"name": f"extra {n}", "urls": [SLACK], "events": ["*"]})
    m = deps.metrics
    for gauge in (m.subscriptions, m.tracked_posts, m.dead_deliveries, m.delivery_backlog, m.last_successful_poll):
        gauge.set(-1)  # whatever the loops left: the scrape must replace it with what Redis holds
    counts = await deps.deliveries.counts()
    families = parse((await anon.get("/metrics")).text)
    assert value(families, "notifier_subscriptions") == 3
    assert value(families, "notifier_tracked_posts") == 1
    assert value(families, "notifier_dead_deliveries") == counts["dead"] == 0
    assert value(families, "notifier_delivery_backlog") == counts["backlog"]
    assert value(families, "notifier_last_successful_poll_timestamp_seconds") > 1.7e9
