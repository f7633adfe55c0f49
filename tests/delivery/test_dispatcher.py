"""The dispatcher end to end: real Redis stream, real apprise, real HTTP and SMTP receivers."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from standardwebhooks.webhooks import Webhook

from notifier.models import Templates
from notifier.store.deliveries import DeliveryStore, delivery_id
from notifier.store.keys import DISPATCH_GROUP, Keys
from tests.delivery.conftest import (
    FAST,
    SECRET,
    Receiver,
    fast_settings,
    make_event,
    make_sub,
    publish,
    put_subs,
    running,
    wait_until,
)


async def test_event_reaches_json_and_signed_webhook(redis: aioredis.Redis, keys: Keys, receiver: Receiver) -> None:
    """One event goes to every URL of a matching subscription; the webhook body is the event, signed."""
    urls = [receiver.url("json", "/json"), receiver.url("webhook", "/hook", f"secret={SECRET}")]
    await put_subs(redis, keys, make_sub("s1", urls))
    event = make_event(1)
    async with running(redis, keys) as r:
        await publish(redis, keys, event, batch="b1")
        await wait_until(lambda: receiver.at("/json") and receiver.at("/hook"))
        await wait_until(lambda: r.notifications("sent") == 2)
    note = receiver.at("/json")[0].json()
    assert "post.failed" in note["title"] and "post_1" in note["message"] and "Token expired" in note["message"]
    hook = receiver.at("/hook")[0]
    assert hook.json()["id"] == event.id and hook.json()["post"]["id"] == "post_1"
    assert hook.headers["webhook-id"] == delivery_id(event.id, "s1", 1)
    verified = Webhook(SECRET).verify(hook.body, hook.headers)
    assert verified["type"] == "post.failed"


async def test_target_500_then_recovers_is_delivered_once(
    redis: aioredis.Redis, keys: Keys, receiver: Receiver
) -> None:
    """A target that answers 500 twice gets the notification on the third attempt, and only once."""
    receiver.fail("/flaky", 500, 500)
    await put_subs(redis, keys, make_sub("s1", [receiver.url("webhook", "/flaky", f"secret={SECRET}")]))
    settings = fast_settings(retry_schedule=(0.05, 0.05, 0.05))
    async with running(redis, keys, settings=settings) as r:
        await publish(redis, keys, make_event(1))
        await wait_until(
            lambda: r.metrics.registry.get_sample_value("notifier_notifications_total", {"result": "sent"})
        )
        await asyncio.sleep(0.3)
    hits = receiver.at("/flaky")
    assert len(hits) == 3
    assert len({h.headers["webhook-id"] for h in hits}) == 1
    store = DeliveryStore(redis, keys)
    [delivery], total = await store.list(status="sent", subscription_id=None, limit=10, offset=0)
    assert total == 1 and delivery.attempts == 3 and "500" in (delivery.last_error or "")


async def test_two_dispatchers_send_each_delivery_exactly_once(
    redis: aioredis.Redis, keys: Keys, receiver: Receiver
) -> None:
    """Two dispatchers on one stream share the work; every delivery is sent exactly once."""
    await put_subs(
        redis,
        keys,
        make_sub("a", [receiver.url("webhook", "/a"), receiver.url("webhook", "/b")]),
        make_sub("b", [receiver.url("webhook", "/c")]),
    )
    events = [make_event(i) for i in range(40)]
    async with running(redis, keys, consumer="d1"), running(redis, keys, consumer="d2"):
        for i in range(0, 40, 4):
            await publish(redis, keys, *events[i : i + 4], batch=f"cycle{i}")
        await wait_until(lambda: sum(len(receiver.at(p)) for p in ("/a", "/b", "/c")) >= 120)
        await asyncio.sleep(0.3)
    for path in ("/a", "/b", "/c"):
        ids = [r.headers["webhook-id"] for r in receiver.at(path)]
        assert len(ids) == 40 and len(set(ids)) == 40, path
    groups = await redis.xinfo_consumers(keys.events, DISPATCH_GROUP)
    assert {g["name"] for g in groups} == {b"d1", b"d2"}


async def test_redelivered_entry_sends_nothing_again(redis: aioredis.Redis, keys: Keys, receiver: Receiver) -> None:
    """A stream entry handled twice (a new group reading from the start) creates no second delivery."""
    await put_subs(redis, keys, make_sub("s1", [receiver.url("webhook", "/x")]))
    async with running(redis, keys):
        await publish(redis, keys, make_event(1))
        await wait_until(lambda: receiver.at("/x"))
    await redis.xgroup_destroy(keys.events, DISPATCH_GROUP)
    await redis.delete(keys.dispatch_watermark)
    async with running(redis, keys):
        await publish(redis, keys, make_event(2))
        await wait_until(lambda: len(receiver.at("/x")) >= 2)
        await asyncio.sleep(0.3)
    assert [r.json()["id"] for r in receiver.at("/x")] == ["evt_post.failed_1", "evt_post.failed_2"]


async def test_events_written_before_the_group_exists_are_delivered(
    redis: aioredis.Redis, keys: Keys, receiver: Receiver
) -> None:
    """Events the poller wrote before any dispatcher ran are delivered when the first one starts."""
    await put_subs(redis, keys, make_sub("s1", [receiver.url("webhook", "/early")]))
    await publish(redis, keys, make_event(1), make_event(2), batch="c1")
    async with running(redis, keys):
        await wait_until(lambda: len(receiver.at("/early")) == 2)


async def test_filters_and_event_types(redis: aioredis.Redis, keys: Keys, receiver: Receiver) -> None:
    """Only subscriptions whose event types, platforms and accounts match get the event; disabled ones none."""
    await put_subs(
        redis,
        keys,
        make_sub("all", [receiver.url("webhook", "/all")]),
        make_sub("tiktok", [receiver.url("webhook", "/tiktok")], platforms=["tiktok"]),
        make_sub("insta", [receiver.url("webhook", "/insta")], platforms=["instagram"]),
        make_sub("acc2", [receiver.url("webhook", "/acc2")], account_ids=["acc_2"]),
        make_sub("posted", [receiver.url("webhook", "/posted")], events=["post.posted"]),
        make_sub("off", [receiver.url("webhook", "/off")], enabled=False),
    )
    async with running(redis, keys):
        await publish(redis, keys, make_event(1, platform="tiktok", account_id="acc_1"))
        await publish(redis, keys, make_event(2, platform="instagram", account_id="acc_2"))
        await wait_until(lambda: len(receiver.at("/all")) == 2)
        await asyncio.sleep(0.3)
    posts = {p: sorted(r.json()["post"]["id"] for r in receiver.at(p)) for p in ("/tiktok", "/insta", "/acc2")}
    assert posts == {"/tiktok": ["post_1"], "/insta": ["post_2"], "/acc2": ["post_2"]}
    assert receiver.at("/posted") == [] and receiver.at("/off") == []


async def test_storm_becomes_one_summary(redis: aioredis.Redis, keys: Keys, receiver: Receiver) -> None:
    """More than K events of one cycle for a subscription become one summary; K or fewer stay separate."""
    await put_subs(
        redis,
        keys,
        make_sub("storm", [receiver.url("webhook", "/storm")], storm_threshold=3, platforms=["tiktok"]),
        make_sub("calm", [receiver.url("webhook", "/calm")], storm_threshold=3, platforms=["instagram"]),
    )
    storm = [make_event(i) for i in range(5)]
    calm = [make_event(10 + i, platform="instagram") for i in range(2)]
    options = FAST.__class__(**{**FAST.__dict__, "batch_size": 2})  # the cycle spans several reads
    async with running(redis, keys, options=options):
        await publish(redis, keys, *storm, batch="cycle-1")
        await publish(redis, keys, *calm, batch="cycle-2")
        await wait_until(lambda: receiver.at("/storm") and len(receiver.at("/calm")) == 2)
        await asyncio.sleep(0.3)
    [summary] = receiver.at("/storm")
    body = summary.json()
    assert body["type"] == "summary" and body["count"] == 5
    assert [e["id"] for e in body["events"]] == [e.id for e in storm]
    store = DeliveryStore(redis, keys)
    items, _ = await store.list(status=None, subscription_id="storm", limit=10, offset=0)
    assert [len(d.event_ids) for d in items] == [5]


async def test_templates_shape_the_text(redis: aioredis.Redis, keys: Keys, receiver: Receiver) -> None:
    """A subscription's templates replace the default title and body."""
    templates = Templates(title="{{ type }}: {{ subject_id }}", body="{{ caption }} / {{ error }}")
    await put_subs(redis, keys, make_sub("t", [receiver.url("json", "/t")], templates=templates))
    async with running(redis, keys):
        await publish(redis, keys, make_event(7))
        await wait_until(lambda: receiver.at("/t"))
    note = receiver.at("/t")[0].json()
    assert note["title"] == "post.failed: post_7"
    assert note["message"] == "Launch video for the spring collection / Token expired"


async def test_dead_then_replayed(redis: aioredis.Redis, keys: Keys, receiver: Receiver) -> None:
    """A target failing every attempt leaves a dead delivery with attempts and masked error; retry sends it."""
    receiver.fail("/down", 503, 503, 503)
    url = receiver.url("webhook", "/down", f"secret={SECRET}")
    await put_subs(redis, keys, make_sub("s1", [url]))
    store = DeliveryStore(redis, keys)
    async with running(redis, keys) as r:
        await publish(redis, keys, make_event(1))
        [dead] = (await wait_until(lambda: _dead(store)))[0]
        assert dead.attempts == 3 and "503" in (dead.last_error or "")
        assert SECRET not in (dead.last_error or "") and SECRET not in dead.target and "****" in dead.target
        await wait_until(lambda: r.metrics.registry.get_sample_value("notifier_dead_deliveries") == 1)
        assert r.notifications("dead") == 1
        replayed = await store.retry(dead.id, now=r.dispatcher._clock())
        assert replayed.status == "pending" and replayed.replays == 1
        await wait_until(lambda: len(receiver.at("/down")) == 4)
        await wait_until(lambda: r.metrics.registry.get_sample_value("notifier_dead_deliveries") == 0)
    assert (await store.get(dead.id)).status == "sent"  # type: ignore[union-attr]


async def _dead(store: DeliveryStore) -> object:
    items, total = await store.list(status="dead", subscription_id=None, limit=10, offset=0)
    return (items, total) if total else None


async def test_mailto_reaches_a_real_smtp_server(redis: aioredis.Redis, keys: Keys, smtp: tuple[int, list]) -> None:
    """A mailto:// subscription sends the readable notification as an e-mail."""
    port, mailbox = smtp
    url = f"mailto://127.0.0.1:{port}?from=notifier@example.com&to=ops@example.com&mode=insecure"
    await put_subs(redis, keys, make_sub("mail", [url]))
    async with running(redis, keys):
        await publish(redis, keys, make_event(3))
        await wait_until(lambda: mailbox)
    [mail] = mailbox
    assert "post.failed" in mail["Subject"]
    assert "ops@example.com" in mail["To"]
    text = mail.get_payload(decode=True) if not mail.is_multipart() else mail.get_payload(0).get_payload(decode=True)
    assert b"post_3" in text and b"Token expired" in text
