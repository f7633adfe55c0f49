"""`notifier send-test` and the API's per-subscription test send."""

from __future__ import annotations

import io

import redis.asyncio as aioredis

from notifier.config import Settings
from notifier.senders.sendtest import run_send_test
from notifier.store.keys import Keys
from tests.delivery.conftest import SECRET, Receiver, make_sub, running


def test_send_test_reports_each_url_masked_and_exit_code(receiver: Receiver) -> None:
    """Each URL gets a line (ok / error, masked); the exit code is 1 if any failed, 0 if all succeeded."""
    good = receiver.url("webhook", "/ok", f"secret={SECRET}")
    dead = "json://user:hunter2pass@127.0.0.1:1/nothing"
    out = io.StringIO()
    assert run_send_test(Settings(send_timeout=2), [good, dead], out=out) == 1
    text = out.getvalue()
    assert "ok     webhook://127.0.0.1" in text and "error  json://user:****@127.0.0.1:1" in text
    assert SECRET not in text and "hunter2pass" not in text
    assert receiver.at("/ok")[0].json()["type"] == "test"
    assert run_send_test(Settings(send_timeout=2), [good], out=io.StringIO()) == 0


async def test_dispatcher_send_test_gives_per_url_results(
    redis: aioredis.Redis, keys: Keys, receiver: Receiver
) -> None:
    """Dispatcher.send_test sends to every URL of a subscription and reports each, URL masked."""
    sub = make_sub("s", [receiver.url("json", "/t"), "json://127.0.0.1:1/down"])
    async with running(redis, keys) as r:
        results = await r.dispatcher.send_test(sub)
    assert [(x.ok, x.url) for x in results] == [
        (True, f"json://127.0.0.1:{receiver.port}/t?method=POST"),
        (False, "json://127.0.0.1:1/down?method=POST"),
    ]
    assert results[1].error and "Connection" in results[1].error
    assert "test" in receiver.at("/t")[0].json()["title"]
