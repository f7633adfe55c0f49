"""Poll-cycle benchmark: prints (a) the steady-state diff rate and (b) Partner API requests per quiet cycle.

(a) Decoded post states compared against real Redis snapshots, the poller's hot path: read the scope index
    (HGETALL), fingerprint every fresh post, look it up, decide nothing changed. For 10k and 100k tracked
    posts. Target: >= 200,000 post states per second at 100k.
(b) A real poller against the simulated Partner API over HTTP, after its baseline: requests made by one
    steady-state cycle with 250 and 5,000 open posts (plus settled history). Target: <= ceil(open/100) + 2.

Run: uv run python benchmarks/cycle.py
"""

from __future__ import annotations

import asyncio
import math
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from notifier.config import Settings
from notifier.diff import diff_posts, index_entry, select_changed
from notifier.genviral.client import PartnerClient
from notifier.metrics import Metrics
from notifier.models import DeliveryState, Media, Post, PostAccounts
from notifier.poller import Poller
from notifier.simulator.server import SimulatorServer
from notifier.store.embedded import EmbeddedRedis
from notifier.store.keys import Keys
from notifier.store.lease import Lease
from notifier.store.snapshots import CycleWrite, SnapshotStore

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def make_posts(n: int) -> list[Post]:
    base = NOW - timedelta(days=30)
    posts = []
    for i in range(n):
        created = (base + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        states = [
            DeliveryState(account_id=f"acc-{i % 6}", status="scheduled"),
            DeliveryState(account_id=f"acc-{(i + 1) % 6}", status="scheduled"),
        ]
        posts.append(
            Post(
                id=f"post-{i:07d}",
                status="scheduled",
                created_at=created,
                caption=f"Caption number {i} #launch",
                scheduled_at="2026-06-02T15:00:00Z",
                media=Media(type="video", url=f"https://cdn.example/{i}.mp4"),
                accounts=PostAccounts(total=2, states=states),
            )
        )
    return posts


async def diff_rate(redis: aioredis.Redis, n: int) -> tuple[float, float]:
    keys = Keys(f"bench{n}:")
    store = SnapshotStore(redis, keys)
    hold = await Lease(redis, keys.poller("bench"), owner="bench", ttl=600).acquire()
    assert hold is not None
    posts = make_posts(n)
    result = diff_posts("scope", {}, posts, now=NOW, overdue_after=900, accounts={}, notify_new=False)
    write = CycleWrite()
    write.posts = {pid: (snap, index_entry(snap, fp)) for pid, (snap, fp) in result.snaps.items()}
    await store.commit("scope", hold, 0, write)
    now_ms = int(NOW.timestamp() * 1000)
    rates, load_share = [], []
    for round_ in range(6):  # the first round warms caches up and is not counted
        started = time.perf_counter()
        index = await store.load_index("scope")
        loaded = time.perf_counter()
        changed = select_changed(posts, index, now_ms, 900_000)
        elapsed = time.perf_counter() - started
        assert changed == [], "a steady state must find nothing to diff"
        if round_:
            rates.append(n / elapsed)
            load_share.append((loaded - started) / elapsed)
    await redis.delete(*[k for k in await redis.keys(keys.prefix + "*")])
    return statistics.median(rates), statistics.median(load_share)


async def requests_per_cycle(redis_url: str, open_posts: int, settled: int) -> list[int]:
    with SimulatorServer(api_key="bench") as sim:
        s = sim.state
        accounts = [s.add_account(p)["id"] for p in ("tiktok", "instagram", "youtube")]
        s.add_pack("Motivation", images=3)
        s.add_posts_bulk(
            settled,
            statuses=("posted", "failed"),
            account_ids=accounts,
            start=NOW - timedelta(days=200),
            step_ms=60_000,
        )
        s.add_posts_bulk(
            open_posts, statuses=("scheduled",), account_ids=accounts, start=NOW - timedelta(days=90), step_ms=30_000
        )
        redis = aioredis.Redis.from_url(redis_url)
        keys = Keys(f"req{open_posts}:")
        settings = Settings(genviral_api_key="bench", genviral_base_url=sim.base_url, key_prefix=keys.prefix)
        async with httpx.AsyncClient(timeout=30) as http:
            client = PartnerClient(http, base_url=sim.base_url, api_key="bench")
            poller = Poller(client, redis, keys, settings, Metrics.create(), owner="bench")
            assert (await poller.cycle()).result == "ok"  # baseline
            counts = []
            for _ in range(3):
                s.reset_requests()
                assert (await poller.cycle()).result == "ok"
                counts.append(s.request_count())
        await redis.aclose()
        return counts


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persist=False) as server:
        redis = aioredis.Redis.from_url(server.url)
        print("(a) steady-state diff rate, decoded post states vs Redis snapshots (median of 5, after a warm-up)")
        for n in (10_000, 100_000):
            rate, share = await diff_rate(redis, n)
            print(f"    {n:>7,} tracked posts: {rate:>10,.0f} post states/s  (index read {share:.0%} of the time)")
        await redis.aclose()
        print("(b) Partner API requests per steady-state cycle (3 quiet cycles after the baseline)")
        for open_posts in (250, 5_000):
            counts = await requests_per_cycle(server.url, open_posts, settled=2_000)
            target = math.ceil(open_posts / 100) + 2
            verdict = "ok" if max(counts) <= target else "OVER TARGET"
            print(f"    {open_posts:>5,} open posts (+2,000 settled): {counts} requests; target <= {target}: {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
