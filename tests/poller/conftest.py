"""Fixtures for poller tests: the simulated Partner API over real HTTP, and pollers wired to it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from notifier.config import Settings
from notifier.genviral.client import PartnerClient, RetryPolicy
from notifier.metrics import Metrics
from notifier.models import Event
from notifier.poller import CycleReport, Poller
from notifier.simulator.server import SimulatorServer
from notifier.store.events import decode_entry
from notifier.store.keys import Keys

API_KEY = "test-key"
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(api_key=API_KEY) as server:
        server.state.add_account("tiktok", id="acc-tt", username="tt", display_name="TT")
        server.state.add_account("instagram", id="acc-ig", username="ig", display_name="IG")
        yield server


@dataclass
class Rig:
    """A poller against the simulator and a real Redis, with helpers to read what it wrote."""

    sim: SimulatorServer
    redis: aioredis.Redis
    keys: Keys
    make: Callable[..., Poller]
    metrics: Metrics

    async def events(self) -> list[Event]:
        return [decode_entry(fields) for _, fields in await self.redis.xrange(self.keys.events)]

    async def cycle(self, poller: Poller) -> CycleReport:
        report = await poller.cycle()
        assert report.result in ("ok", "standby"), report
        return report

    def requests(self) -> dict[str, int]:
        return dict(self.sim.state.request_counts())


@pytest.fixture
async def rig(sim: SimulatorServer, redis: aioredis.Redis, keys: Keys) -> AsyncIterator[Rig]:
    clients: list[httpx.AsyncClient] = []
    metrics = Metrics.create()

    def make(owner: str | None = None, clock: Callable[[], float] | None = None, **overrides: Any) -> Poller:
        settings = Settings(
            genviral_api_key=API_KEY,
            genviral_base_url=sim.base_url,
            key_prefix=keys.prefix,
            poll_interval=overrides.pop("poll_interval", 0.1),
            **overrides,
        )
        http = httpx.AsyncClient(timeout=5)
        clients.append(http)
        client = PartnerClient(
            http,
            base_url=sim.base_url,
            api_key=API_KEY,
            metrics=metrics,
            retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02),
        )
        kwargs: dict[str, Any] = {"owner": owner or uuid.uuid4().hex[:8]}
        if clock is not None:
            kwargs["clock"] = clock
        return Poller(client, redis, keys, settings, metrics, **kwargs)

    yield Rig(sim, redis, keys, make, metrics)
    for http in clients:
        await http.aclose()


def old(days: float) -> datetime:
    return LONG_AGO - timedelta(days=days)
