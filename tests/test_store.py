"""The snapshot store and the lease against a real Redis: atomic, fenced, compare-and-set writes."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from notifier.diff import IndexEntry
from notifier.errors import FencedOut, StoreError
from notifier.models import AccountSnap, Event, PostSnap
from notifier.store.events import decode_entry
from notifier.store.keys import Keys
from notifier.store.lease import Lease
from notifier.store.snapshots import CycleWrite, SnapshotStore

SCOPE = "ws-1"


def snap(status: str = "scheduled", v: int = 1) -> PostSnap:
    return PostSnap(
        v=v,
        status=status,
        created_at="2026-01-01T00:00:00.000Z",
        scheduled_at=None,
        caption="c",
        media_type="video",
        deliveries=(),
    )


def write_with(n_posts: int, n_events: int, *, settled: float | None = None) -> CycleWrite:
    w = CycleWrite(batch="b1")
    for i in range(n_posts):
        w.posts[f"p{i}"] = (snap(), IndexEntry("scheduled", 1_000 + i, None, False, f"{i:016x}"))
        if settled is not None:
            w.settled[f"p{i}"] = settled
    w.accounts["a1"] = AccountSnap(v=1, platform="tiktok", username="u", display_name=None, status="active")
    w.events = [
        Event(id=f"e{i}", type="post.failed", detected_at="2026-01-01T00:00:00.000Z", scope=SCOPE)
        for i in range(n_events)
    ]
    return w


async def test_commit_writes_snapshots_and_events_together(redis: aioredis.Redis, keys: Keys) -> None:
    """One commit writes the index, the snapshots, the accounts and the events, and bumps the revision."""
    store = SnapshotStore(redis, keys)
    lease = Lease(redis, keys.poller("k"), owner="me", ttl=5)
    hold = await lease.acquire()
    assert hold is not None
    result = await store.commit(SCOPE, hold, 0, write_with(3, 2))
    assert result.rev == 1
    index = await store.load_index(SCOPE)
    assert {IndexEntry.decode(v).fp for v in index.values()} == {f"{i:016x}" for i in range(3)}
    assert (await store.load_posts(SCOPE, ["p1", "zz"])) == {"p1": snap()}
    assert set(await store.load_accounts(SCOPE)) == {"a1"}
    entries = await redis.xrange(keys.events)
    assert [decode_entry(f).id for _, f in entries] == ["e0", "e1"]
    assert {f[b"batch"] for _, f in entries} == {b"b1"}
    meta = await store.load_meta(SCOPE)
    assert meta.rev == 1 and meta.baseline_done


async def test_fenced_out_writer_changes_nothing(redis: aioredis.Redis, keys: Keys) -> None:
    """A poller whose lease expired and was taken over cannot write: no snapshot, no event."""
    store = SnapshotStore(redis, keys)
    old = Lease(redis, keys.poller("k"), owner="old", ttl=0.05)
    new = Lease(redis, keys.poller("k"), owner="new", ttl=5)
    old_hold = await old.acquire()
    assert old_hold is not None
    assert await new.acquire() is None  # held
    await asyncio.sleep(0.1)  # the old holder pauses past its TTL
    new_hold = await new.acquire()
    assert new_hold is not None and new_hold.token > old_hold.token
    with pytest.raises(FencedOut):
        await store.commit(SCOPE, old_hold, 0, write_with(2, 2))
    assert await redis.xlen(keys.events) == 0
    assert await store.load_index(SCOPE) == {}
    assert not await old.renew(old_hold)
    assert await new.renew(new_hold)


async def test_stale_revision_is_refused(redis: aioredis.Redis, keys: Keys) -> None:
    """A write computed from an older revision is refused whole."""
    store = SnapshotStore(redis, keys)
    hold = await Lease(redis, keys.poller("k"), owner="me", ttl=5).acquire()
    assert hold is not None
    await store.commit(SCOPE, hold, 0, write_with(1, 1))
    with pytest.raises(StoreError):
        await store.commit(SCOPE, hold, 0, write_with(5, 3))
    assert await redis.xlen(keys.events) == 1
    assert len(await store.load_index(SCOPE)) == 1


async def test_settled_posts_expire_after_retention(redis: aioredis.Redis, keys: Keys) -> None:
    """Posts settled before the cutoff leave the index and the snapshots; newer ones stay."""
    store = SnapshotStore(redis, keys)
    hold = await Lease(redis, keys.poller("k"), owner="me", ttl=5).acquire()
    assert hold is not None
    await store.commit(SCOPE, hold, 0, write_with(3, 0, settled=100.0))
    fresh = CycleWrite(expire_before=150.0)
    fresh.posts["new"] = (snap("posted"), IndexEntry("posted", 5, None, False, "f" * 16))
    fresh.settled["new"] = 200.0
    result = await store.commit(SCOPE, hold, 1, fresh)
    assert result.expired == 3
    assert set(await store.load_index(SCOPE)) == {b"new"}
    assert await store.load_posts(SCOPE, ["p0"]) == {}


async def test_release_lets_another_take_over(redis: aioredis.Redis, keys: Keys) -> None:
    """A released lease is free at once, and the next holder gets a larger fencing token."""
    a = Lease(redis, keys.poller("k"), owner="a", ttl=30)
    b = Lease(redis, keys.poller("k"), owner="b", ttl=30)
    ha = await a.acquire()
    assert ha is not None and await b.acquire() is None
    await a.release(ha)
    hb = await b.acquire()
    assert hb is not None and hb.token == ha.token + 1
