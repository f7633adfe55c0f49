"""The delivery store's operator side: listing, replay rules, counts, pruning."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from notifier.errors import NotReplayable, RecordNotFound
from notifier.models import Delivery
from notifier.store.deliveries import DeliveryStore, NewDelivery, Payload
from notifier.store.keys import DISPATCH_GROUP, Keys


def _new(i: int, sub: str = "s1") -> NewDelivery:
    d = Delivery(
        id=f"d{i}",
        event_ids=[f"e{i}"],
        event_type="post.failed",
        subscription_id=sub,
        url_index=0,
        next_attempt_at=float(i),
        created_at="t",
        updated_at="t",
        target="json://h",
    )
    return NewDelivery(d, Payload(url="json://h", title="t", body="b", level="info", data="{}"))


async def _store_with(redis: aioredis.Redis, keys: Keys, n: int) -> DeliveryStore:
    store = DeliveryStore(redis, keys)
    await redis.xgroup_create(keys.events, DISPATCH_GROUP, id="0", mkstream=True)
    created = await store.create_and_ack(
        [_new(i, "s1" if i % 2 else "s2") for i in range(n)], group=DISPATCH_GROUP, ack_ids=[]
    )
    assert created == n
    return store


async def test_create_is_idempotent(redis: aioredis.Redis, keys: Keys) -> None:
    """Creating a delivery that exists changes nothing (the record and its schedule stay)."""
    store = await _store_with(redis, keys, 2)
    assert await store.create_and_ack([_new(0), _new(5)], group=DISPATCH_GROUP, ack_ids=[]) == 1
    assert (await store.counts()) == {"backlog": 3, "dead": 0}


async def test_list_filters_and_pages(redis: aioredis.Redis, keys: Keys) -> None:
    """Listing filters by status and subscription, newest first, with a total and limit/offset."""
    store = await _store_with(redis, keys, 6)
    page, total = await store.list(status="pending", subscription_id="s1", limit=2, offset=1)
    assert total == 3 and [d.id for d in page] == ["d3", "d1"]
    page, total = await store.list(status=None, subscription_id=None, limit=4, offset=0)
    assert total == 6 and len(page) == 4
    assert (await store.list(status="dead", subscription_id=None, limit=5, offset=0)) == ([], 0)
    with pytest.raises(ValueError, match="valid"):
        await store.list(status="lost", subscription_id=None, limit=5, offset=0)


async def test_only_dead_deliveries_can_be_retried(redis: aioredis.Redis, keys: Keys) -> None:
    """retry refuses unknown ids and deliveries that are not dead."""
    store = await _store_with(redis, keys, 1)
    with pytest.raises(RecordNotFound):
        await store.retry("nope", now=1.0)
    with pytest.raises(NotReplayable) as info:
        await store.retry("d0", now=1.0)
    assert info.value.status == "pending"


async def claim(
    store: DeliveryStore, delivery_id: str, *, token: str, now: float, lease: float
) -> tuple[Delivery, Payload] | None:
    return (await store.finish_and_claim([], [(delivery_id, token)], now=now, lease=lease))[1].get(delivery_id)


async def test_claim_is_exclusive_and_sent_ones_are_pruned(redis: aioredis.Redis, keys: Keys) -> None:
    """A due delivery is claimed by one sender only; once sent and old enough it is pruned."""
    store = await _store_with(redis, keys, 1)
    got = await claim(store, "d0", token="a", now=10.0, lease=5)
    assert got is not None and await claim(store, "d0", token="b", now=10.0, lease=5) is None
    delivery, _ = got
    sent = Delivery(
        **{**{f: getattr(delivery, f) for f in delivery.__struct_fields__}, "status": "sent", "attempts": 1}
    )
    assert (await store.finish_and_claim([(sent, "a")], [], now=20.0, lease=1.0))[0] == [True]
    assert await claim(store, "d0", token="c", now=99.0, lease=5) is None
    assert await store.prune_sent(before=19.0) == 0
    assert await store.prune_sent(before=21.0) == 1
    assert await store.get("d0") is None


async def test_finish_and_claim_in_one_call(redis: aioredis.Redis, keys: Keys) -> None:
    """One call records an outcome and takes new claims; a delivery another sender holds is not taken."""
    store = await _store_with(redis, keys, 3)
    _, first = await store.finish_and_claim([], [("d0", "a")], now=10.0, lease=30)
    assert set(first) == {"d0"}
    assert (await store.finish_and_claim([], [("d1", "b")], now=10.0, lease=30))[1]  # d1 is held by sender b
    sent = first["d0"][0]
    sent.status, sent.attempts = "sent", 1
    done, claimed = await store.finish_and_claim([(sent, "a")], [("d1", "a"), ("d2", "a")], now=11.0, lease=30)
    assert done == [True]
    assert set(claimed) == {"d2"}
    stored = await store.get("d0")
    assert stored is not None and stored.status == "sent"
    stale, _ = await store.finish_and_claim([(sent, "not-the-holder")], [], now=12.0, lease=30)
    assert stale == [False]
