"""Nothing is lost when a dispatcher dies, a target hangs, or Redis restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from notifier.dispatcher import Dispatcher
from notifier.metrics import Metrics
from notifier.store.embedded import EmbeddedRedis
from notifier.store.keys import DISPATCH_GROUP, Keys
from tests.delivery.conftest import (
    FAST,
    Receiver,
    fast_settings,
    make_event,
    make_sub,
    publish,
    put_subs,
    running,
    wait_until,
)


async def test_cancelled_mid_send_is_sent_again_with_the_same_id(
    redis: aioredis.Redis, keys: Keys, receiver: Receiver
) -> None:
    """A dispatcher cancelled while sending loses nothing: the next one sends with the same webhook-id."""
    receiver.delays["/slow"] = 1.0
    await put_subs(redis, keys, make_sub("s1", [receiver.url("webhook", "/slow")]))
    async with running(redis, keys, consumer="first") as r:
        await publish(redis, keys, make_event(1), make_event(2))
        await wait_until(lambda: len(receiver.at("/slow")) == 2)
        r.task.cancel()
        await asyncio.gather(r.task, return_exceptions=True)
        r.stop.set()
    receiver.delays.clear()
    async with running(redis, keys, consumer="second"):
        await wait_until(lambda: len(receiver.at("/slow")) >= 4)
    ids = [h.headers["webhook-id"] for h in receiver.at("/slow")]
    assert set(ids[:2]) == set(ids[2:]) and len(set(ids)) == 2


ROOT = Path(__file__).resolve().parents[2]
_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import redis.asyncio as aioredis
    from notifier.config import Settings
    from notifier.dispatcher import DispatchOptions, Dispatcher
    from notifier.metrics import Metrics
    from notifier.store.keys import Keys

    async def main():
        client = aioredis.Redis.from_url(sys.argv[1])
        options = DispatchOptions(block=0.05, poll_interval=0.05, claim_min_idle=0.3, claim_margin=0.3)
        settings = Settings(retry_schedule=(0.05, 0.1), send_timeout=1.0)
        d = Dispatcher(client, Keys(sys.argv[2]), settings, Metrics.create(), consumer="doomed", options=options)
        await d.run(asyncio.Event())

    asyncio.run(main())
    """
)


async def test_killed_process_mid_send_loses_nothing(
    redis: aioredis.Redis, redis_url: str, keys: Keys, receiver: Receiver, tmp_path: Path
) -> None:
    """A dispatcher process killed (SIGKILL) mid-send: after restart every event arrives, same webhook-id."""
    receiver.delays["/k"] = 5.0
    await put_subs(redis, keys, make_sub("s1", [receiver.url("webhook", "/k")]))
    events = [make_event(i) for i in range(3)]
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = await asyncio.create_subprocess_exec(sys.executable, str(script), redis_url, keys.prefix, env=env, cwd=ROOT)
    try:
        await publish(redis, keys, *events, batch="c1")
        await wait_until(lambda: len(receiver.at("/k")) == 3, within=30)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    receiver.delays.clear()
    async with running(redis, keys, consumer="survivor"):
        await wait_until(lambda: len(receiver.at("/k")) >= 6)
    first = {h.json()["id"]: h.headers["webhook-id"] for h in receiver.at("/k")[:3]}
    again = {h.json()["id"]: h.headers["webhook-id"] for h in receiver.at("/k")[3:]}
    assert first == again and set(first) == {e.id for e in events}


async def test_pending_entries_of_a_dead_consumer_are_taken_over(
    redis: aioredis.Redis, keys: Keys, receiver: Receiver
) -> None:
    """Entries read by a consumer that died before acknowledging them are reclaimed and delivered."""
    await put_subs(redis, keys, make_sub("s1", [receiver.url("webhook", "/orphan")]))
    await redis.xgroup_create(keys.events, DISPATCH_GROUP, id="0", mkstream=True)
    await publish(redis, keys, make_event(1), make_event(2), batch="c1")
    await redis.xreadgroup(DISPATCH_GROUP, "ghost", {keys.events: ">"}, count=10)  # read, never acked
    async with running(redis, keys, consumer="alive"):
        await wait_until(lambda: len(receiver.at("/orphan")) == 2)
        await wait_until(lambda: _no_pending(redis, keys))  # fails the test if entries stay pending
    assert len(receiver.at("/orphan")) == 2  # each taken-over entry delivered once


async def _no_pending(redis: aioredis.Redis, keys: Keys) -> bool:
    info = await redis.xpending(keys.events, DISPATCH_GROUP)
    return info["pending"] == 0


async def test_slow_target_does_not_delay_others(redis: aioredis.Redis, keys: Keys, receiver: Receiver) -> None:
    """While one target hangs on every request, another subscription's notifications all arrive."""
    receiver.delays["/hang"] = 5.0
    await put_subs(
        redis,
        keys,
        make_sub("slow", [receiver.url("webhook", "/hang")]),
        make_sub("fast", [receiver.url("webhook", "/fast")]),
    )
    async with running(redis, keys, settings=fast_settings(send_timeout=10.0)) as r:
        await publish(redis, keys, *[make_event(i) for i in range(10)])
        await wait_until(lambda: receiver.answered.count("/fast") == 10)
        assert "/hang" not in receiver.answered  # all of the fast target's arrived while the slow one hung
        hanging = len(receiver.at("/hang"))
        r.task.cancel()
        await asyncio.gather(r.task, return_exceptions=True)
    assert 1 <= hanging <= 4  # the per-target bound: the slow target's other deliveries wait their turn


async def test_dispatch_survives_a_redis_restart(own_redis: EmbeddedRedis, keys: Keys, receiver: Receiver) -> None:
    """Redis stopped and started again on the same port: the dispatcher reconnects and keeps delivering."""
    client = aioredis.Redis.from_url(own_redis.url, socket_timeout=2)
    try:
        await put_subs(client, keys, make_sub("s1", [receiver.url("webhook", "/r")]))
        async with running(client, keys) as r:
            await publish(client, keys, make_event(1))
            await wait_until(lambda: len(receiver.at("/r")) == 1)
            own_redis.stop()
            await asyncio.sleep(0.5)
            own_redis.start()
            await wait_until(lambda: _publish_ok(client, keys), within=10)
            await wait_until(lambda: len(receiver.at("/r")) == 2, within=10)
            assert not r.task.done()
        assert [h.json()["id"] for h in receiver.at("/r")] == ["evt_post.failed_1", "evt_post.failed_2"]
    finally:
        await client.aclose()


async def _publish_ok(client: aioredis.Redis, keys: Keys) -> bool:
    try:
        await publish(client, keys, make_event(2))
    except Exception:
        return False
    return True


async def test_a_loop_that_dies_stops_the_dispatcher_with_its_error(redis: aioredis.Redis, keys: Keys) -> None:
    """A bug that ends one loop ends run() with that error (the others halted), not a half-working dispatcher."""
    dispatcher = Dispatcher(redis, keys, fast_settings(), Metrics.create(), consumer="d1", options=FAST)

    async def broken_read(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the ingest loop")

    dispatcher.stream.read = broken_read  # type: ignore[method-assign]
    task = asyncio.create_task(dispatcher.run(asyncio.Event()))
    finished, _ = await asyncio.wait([task], timeout=10.0)
    assert task in finished
    assert isinstance(task.exception(), RuntimeError)
