"""The poller against the simulated Partner API over HTTP and a real Redis: what it fetches and what it finds."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from notifier.diff import IndexEntry
from notifier.store.health import read_health
from notifier.store.snapshots import SnapshotStore

from .conftest import Rig, old


def by_type(events: list) -> Counter[str]:  # type: ignore[type-arg]
    return Counter(e.type for e in events)


async def test_first_poll_is_a_silent_baseline(rig: Rig) -> None:
    """The first poll records posts, accounts and packs without notifying; the next change is notified."""
    s = rig.sim.state
    s.add_post(id="done", status="posted", accounts=[{"account_id": "acc-tt", "status": "posted"}])
    s.add_post(id="open", status="scheduled", accounts=["acc-tt"])
    s.add_pack("Motivation", images=2)
    poller = rig.make()
    await rig.cycle(poller)
    assert await rig.events() == []
    s.set_delivery("open", "acc-tt", status="failed", error_message="token expired")
    s.update_post("open", status="failed")
    await rig.cycle(poller)
    assert by_type(await rig.events()) == {"post.status_changed": 1, "post.failed": 1, "delivery.failed": 1}


async def test_notify_existing_reports_settled_posts_at_baseline(rig: Rig) -> None:
    """With NOTIFIER_NOTIFY_EXISTING, the first poll notifies posts already failed or posted."""
    s = rig.sim.state
    s.add_post(id="f", status="failed", accounts=[{"account_id": "acc-tt", "status": "failed"}])
    s.add_post(id="s", status="scheduled", accounts=["acc-tt"])
    await rig.cycle(rig.make(notify_existing=True))
    assert by_type(await rig.events()) == {"post.failed": 1, "delivery.failed": 1}


async def test_more_than_100_open_posts_and_steady_cost(rig: Rig) -> None:
    """With 250 open posts every one is watched, and a quiet cycle costs ceil(250/100) list requests + 2."""
    s = rig.sim.state
    ids = s.add_posts_bulk(250, statuses=("scheduled",), account_ids=["acc-tt"], start=old(30))
    poller = rig.make()
    await rig.cycle(poller)
    s.reset_requests()
    await rig.cycle(poller)
    assert sum(rig.requests().values()) <= math.ceil(250 / 100) + 2
    for pid in (ids[0], ids[120], ids[249]):  # oldest, middle, newest
        s.update_post(pid, status="failed")
    await rig.cycle(poller)
    failed = {e.post.id for e in await rig.events() if e.type == "post.failed"}
    assert failed == {ids[0], ids[120], ids[249]}


async def test_150_posts_sharing_one_created_at(rig: Rig) -> None:
    """150 posts created at the same instant are all tracked, and a change to any of them is found."""
    s = rig.sim.state
    same = old(1)
    scheduled = [s.add_post(status="scheduled", created_at=same, accounts=["acc-tt"])["id"] for _ in range(90)]
    pending = [s.add_post(status="pending", created_at=same, accounts=["acc-ig"])["id"] for _ in range(60)]
    s.add_posts_bulk(30, statuses=("posted",), account_ids=["acc-tt"])  # newer posts on top
    poller = rig.make()
    await rig.cycle(poller)
    index = await SnapshotStore(rig.redis, rig.keys).load_index(poller_scope(rig))
    assert {pid.decode() for pid in index} >= set(scheduled + pending)
    s.update_post(scheduled[-1], status="posted")
    s.update_post(pending[0], status="failed")
    await rig.cycle(poller)
    changed = {e.post.id for e in await rig.events() if e.type == "post.status_changed"}
    assert changed == {scheduled[-1], pending[0]}


def poller_scope(rig: Rig) -> str:
    return rig.sim.state.default_scope.id


async def test_post_created_months_ago_still_scheduled(rig: Rig) -> None:
    """A post created months ago and still scheduled, under hundreds of newer posts, is watched."""
    s = rig.sim.state
    s.add_post(id="ancient", status="scheduled", created_at=old(200), accounts=["acc-tt"])
    s.add_posts_bulk(300, statuses=("posted",), account_ids=["acc-ig"], start=old(10))
    poller = rig.make()
    await rig.cycle(poller)
    s.update_post("ancient", status="failed")
    await rig.cycle(poller)
    assert [e.post.id for e in await rig.events() if e.type == "post.failed"] == ["ancient"]


async def test_post_leaving_open_set_is_fetched_by_id(rig: Rig) -> None:
    """A watched post that leaves the open set (posted) is fetched by id, once, and its transition found."""
    s = rig.sim.state
    s.add_post(id="leaver", status="scheduled", created_at=old(5), accounts=["acc-tt"])
    s.add_posts_bulk(150, statuses=("posted",), account_ids=["acc-ig"], start=old(3))
    poller = rig.make()
    await rig.cycle(poller)
    s.set_delivery("leaver", "acc-tt", status="posted", published_url="https://tiktok.example/v/1")
    s.update_post("leaver", status="posted")
    s.reset_requests()
    await rig.cycle(poller)
    assert rig.requests().get("get_post") == 1
    assert by_type(await rig.events()) == {
        "post.status_changed": 1,
        "post.posted": 1,
        "delivery.posted": 1,
        "delivery.published": 1,
    }
    s.reset_requests()
    await rig.cycle(poller)
    assert rig.requests().get("get_post", 0) == 0  # settled with its URL: no longer fetched


async def test_published_url_appearing_hours_after_posted(rig: Rig) -> None:
    """A published_url that appears hours after `posted` is still found, by the late-URL checks."""
    s = rig.sim.state
    now = [time.time()]
    s.add_post(id="p", status="scheduled", created_at=old(2), accounts=["acc-tt"])
    s.add_posts_bulk(150, statuses=("posted",), account_ids=["acc-ig"], start=old(1))
    poller = rig.make(clock=lambda: now[0])
    await rig.cycle(poller)
    s.set_delivery("p", "acc-tt", status="posted", published_at=time_text(now[0]))
    s.update_post("p", status="posted")
    await rig.cycle(poller)
    assert "delivery.published" not in by_type(await rig.events())
    for _hour in range(3):  # hours pass, checks thin out but go on
        now[0] += 3600
        await rig.cycle(poller)
    s.set_delivery("p", "acc-tt", published_url="https://tiktok.example/v/late")
    now[0] += 901  # the longest wait between two checks
    await rig.cycle(poller)
    published = [e for e in await rig.events() if e.type == "delivery.published"]
    assert len(published) == 1 and published[0].current["published_url"] == "https://tiktok.example/v/late"


def time_text(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


async def test_thousands_of_old_open_posts_found_in_one_cycle(rig: Rig) -> None:
    """3,000 old scheduled posts that appear at once are all tracked after a single cycle."""
    s = rig.sim.state
    poller = rig.make()
    await rig.cycle(poller)
    ids = s.add_posts_bulk(3000, statuses=("scheduled",), account_ids=["acc-tt"], start=old(120), step_ms=60_000)
    await rig.cycle(poller)
    index = await SnapshotStore(rig.redis, rig.keys).load_index(poller_scope(rig))
    assert {pid.decode() for pid in index} >= set(ids)
    assert all(IndexEntry.decode(v).status == "scheduled" for v in index.values())
    s.update_post(ids[1234], status="failed")
    await rig.cycle(poller)
    assert [e.post.id for e in await rig.events() if e.type == "post.failed"] == [ids[1234]]


async def test_failed_fetch_changes_nothing_then_transition_found_once(rig: Rig) -> None:
    """A 500 mid-cycle aborts it with nothing written; the next good cycle finds the transition once."""
    s = rig.sim.state
    s.add_post(id="x", status="scheduled", created_at=old(5), accounts=["acc-tt"])
    s.add_posts_bulk(120, statuses=("posted",), account_ids=["acc-ig"], start=old(3))
    poller = rig.make()
    await rig.cycle(poller)
    store = SnapshotStore(rig.redis, rig.keys)
    rev = (await store.load_meta(poller_scope(rig))).rev
    s.update_post("x", status="failed")
    s.inject_fault("get_post", 500, error_code="get_failed")
    report = await poller.cycle()
    assert report.result == "api_error" and report.error_code == "get_failed"
    assert await rig.events() == []
    assert (await store.load_meta(poller_scope(rig))).rev == rev
    s.clear_faults()
    await rig.cycle(poller)
    await rig.cycle(poller)
    assert by_type(await rig.events())["post.failed"] == 1


async def test_accounts_500_never_invents_a_removal(rig: Rig) -> None:
    """GET /accounts answering 500 yields no account.removed, then nothing once it recovers."""
    poller = rig.make()
    await rig.cycle(poller)
    rig.sim.state.inject_fault("list_accounts", 500, error_code="accounts_failed", times=2)  # both attempts
    assert (await poller.cycle()).result == "api_error"
    await rig.cycle(poller)
    assert await rig.events() == []
    rig.sim.state.remove_account("acc-ig")  # a real removal is found
    await rig.cycle(poller)
    assert by_type(await rig.events()) == {"account.removed": 1}


async def test_auth_errors_back_off_and_show_the_cause(rig: Rig) -> None:
    """402 stops the hammering (doubling waits) and records subscription_required for /readyz."""
    rig.sim.state.set_condition("subscription_required")
    poller = rig.make(poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    await asyncio.sleep(1.0)
    stop.set()
    await task
    # at 0.05 s intervals an unthrottled loop would make ~20 cycles; doubling waits make about 4
    assert rig.sim.state.request_count("list_accounts") <= 5
    health = await read_health(rig.redis, rig.keys, poller._client.key_id)
    assert health is not None and health.last_error_code == "subscription_required"
    assert health.backoff_until is not None


async def test_two_pollers_one_writer_and_takeover(rig: Rig) -> None:
    """Two pollers on one key: one polls, every transition is written once; the other takes over on death."""
    s = rig.sim.state
    s.add_post(id="a", status="scheduled", accounts=["acc-tt"])
    s.add_post(id="b", status="scheduled", accounts=["acc-tt"])
    first, second = rig.make(owner="one"), rig.make(owner="two")
    stop1, stop2 = asyncio.Event(), asyncio.Event()
    t1 = asyncio.create_task(first.run(stop1))
    await asyncio.sleep(0.3)
    t2 = asyncio.create_task(second.run(stop2))
    await asyncio.sleep(0.3)
    assert first.holds_lease and not second.holds_lease
    s.update_post("a", status="failed")
    await asyncio.sleep(0.4)
    t1.cancel()  # the leader dies without releasing its lease
    await asyncio.gather(t1, return_exceptions=True)
    s.update_post("b", status="failed")
    for _ in range(100):  # up to 5 s for the takeover
        if by_type(await rig.events())["post.failed"] >= 2:
            break
        await asyncio.sleep(0.05)
    stop2.set()
    await t2
    failed = [e.post.id for e in await rig.events() if e.type == "post.failed"]
    assert sorted(failed) == ["a", "b"]
    assert rig.metrics.lease_acquisitions._value.get() >= 2  # type: ignore[attr-defined]


async def test_first_seen_settled_posts_new_ones_notified_old_ones_not(rig: Rig) -> None:
    """A post first seen already posted is notified when it is recent, recorded silently when it is old."""
    s = rig.sim.state
    s.add_post(id="newest", status="scheduled", created_at=old(0), accounts=["acc-tt"])
    poller = rig.make()
    await rig.cycle(poller)
    posted = [{"account_id": "acc-tt", "status": "posted"}]
    s.add_post(id="late-commit", status="posted", created_at=old(0) - timedelta(minutes=2), accounts=posted)
    s.add_post(id="resurfaced", status="posted", created_at=old(90), accounts=posted)
    await rig.cycle(poller)
    assert {e.post.id for e in await rig.events()} == {"late-commit"}


async def test_fingerprints_of_another_kind_cost_one_full_diff_and_invent_nothing(rig: Rig) -> None:
    """Index fingerprints that no longer match (made by an older release): one cycle rewrites them, no event."""
    s = rig.sim.state
    s.add_posts_bulk(40, statuses=("scheduled", "posted", "failed"), account_ids=["acc-tt"], start=old(3))
    poller = rig.make()
    await rig.cycle(poller)
    store = SnapshotStore(rig.redis, rig.keys)
    index = await store.load_index(poller_scope(rig))
    idx_key = rig.keys.scope(poller_scope(rig)).idx
    stale = {pid: b"%016x" % (i + 1) + raw[16:] for i, (pid, raw) in enumerate(index.items())}
    await rig.redis.hset(idx_key, mapping=stale)  # type: ignore[arg-type]
    await rig.cycle(poller)
    assert await rig.events() == []
    assert await store.load_index(poller_scope(rig)) == index


async def test_a_cycle_ends_even_when_a_lease_renewal_ignores_cancellation(rig: Rig) -> None:
    """redis-py can swallow a cancellation that lands inside a command; the renewer must still stop."""
    poller = rig.make()
    await rig.cycle(poller)
    renew = poller._lease.renew

    async def stubborn_renew(hold: Any) -> bool:
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as redis-py sometimes does
            await asyncio.sleep(0.25)  # a renewal is in flight most of the time
        return await renew(hold)

    poller._lease.renew = stubborn_renew  # type: ignore[method-assign]
    for _ in range(5):
        rig.sim.state.inject_fault("list_posts", None, delay=0.45, times=1)  # the cycle outlives a renewal
        cycle = asyncio.create_task(rig.cycle(poller))
        finished, _ = await asyncio.wait([cycle], timeout=10.0)  # waits without cancelling anything
        assert cycle in finished, "the cycle never ended: its lease renewer did not stop"
        assert cycle.result().result == "ok"
