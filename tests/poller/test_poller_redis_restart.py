"""The poll loop survives Redis going away and coming back, and loses nothing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import httpx
import redis.asyncio as aioredis

from notifier.config import Settings
from notifier.genviral.client import PartnerClient, RetryPolicy
from notifier.metrics import Metrics
from notifier.poller import Poller
from notifier.simulator.server import SimulatorServer
from notifier.store.connect import connect
from notifier.store.embedded import EmbeddedRedis
from notifier.store.events import decode_entry
from notifier.store.keys import Keys

from .conftest import API_KEY


async def wait_for(predicate: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_redis_restart_never_kills_the_loop(own_redis: EmbeddedRedis, sim: SimulatorServer) -> None:
    """Redis stops mid-run: cycles fail without writing; after its restart the next change is found once."""
    keys = Keys("r:")
    client = aioredis.Redis.from_url(own_redis.url, socket_timeout=1, socket_connect_timeout=1)
    metrics = Metrics.create()
    settings = Settings(
        genviral_api_key=API_KEY, genviral_base_url=sim.base_url, key_prefix=keys.prefix, poll_interval=0.1
    )
    http = httpx.AsyncClient(timeout=5)
    partner = PartnerClient(http, base_url=sim.base_url, api_key=API_KEY, retry=RetryPolicy(attempts=1))
    poller = Poller(partner, client, keys, settings, metrics, owner="solo")
    sim.state.add_post(id="p", status="scheduled", accounts=["acc-tt"])
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))

    async def baseline_done() -> bool:
        return bool(metrics.poll_cycles.labels("ok")._value.get())

    assert await wait_for(baseline_done)
    port = own_redis.port
    own_redis.stop()
    await asyncio.sleep(0.5)
    assert not task.done()
    assert metrics.poll_cycles.labels("redis_error")._value.get() >= 1
    own_redis.port = port
    own_redis.start()
    sim.state.set_delivery("p", "acc-tt", status="failed", error_message="token expired")
    sim.state.update_post("p", status="failed")

    async def found() -> bool:
        try:
            return await client.xlen(keys.events) >= 3
        except (OSError, aioredis.ConnectionError):
            return False

    assert await wait_for(found)
    await asyncio.sleep(0.3)  # a few more cycles: nothing more may appear
    stop.set()
    await task
    types = sorted(decode_entry(f).type for _, f in await client.xrange(keys.events))
    assert types == ["delivery.failed", "post.failed", "post.status_changed"]
    await client.aclose()
    await http.aclose()


async def test_a_redis_that_stops_answering_fails_the_cycle_instead_of_hanging(sim: SimulatorServer) -> None:
    """A Redis that accepts connections and never answers (a partition): the cycle reports redis_error."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections are accepted by the kernel and never answered
    client = connect(f"redis://127.0.0.1:{silent.getsockname()[1]}", command_timeout=0.3, connect_timeout=0.3)
    keys = Keys("silent:")
    settings = Settings(genviral_api_key=API_KEY, genviral_base_url=sim.base_url, key_prefix=keys.prefix)
    async with httpx.AsyncClient(timeout=5) as http:
        partner = PartnerClient(http, base_url=sim.base_url, api_key=API_KEY, retry=RetryPolicy(attempts=1))
        poller = Poller(partner, client, keys, settings, Metrics.create(), owner="solo")
        cycle = asyncio.create_task(poller.cycle())
        finished, _ = await asyncio.wait([cycle], timeout=10.0)  # waits without cancelling anything
        assert cycle in finished, "the cycle is still waiting for Redis"
        assert cycle.result().result == "redis_error"
    await client.aclose()
    silent.close()
