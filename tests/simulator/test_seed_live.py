"""Seed data, bulk creation and live mode of the simulator."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx

from notifier.simulator import LiveDriver, SimState, SimulatorServer, seed_workspace

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def test_seed_is_deterministic() -> None:
    """The same seed and instant give the same accounts, posts and packs; another seed gives others."""
    ws, owner = "4cb5d3fd-8c8f-4ed7-a17c-4ffb52c7e6ac", "7be83ba4-14e5-47ba-a662-0ad42d852111"
    one, two, three = (SimState("k", workspace_id=ws, owner_user_id=owner) for _ in range(3))
    seed_workspace(one, posts=40, seed=7, now=NOW)
    seed_workspace(two, posts=40, seed=7, now=NOW)
    seed_workspace(three, posts=40, seed=8, now=NOW)
    assert one.posts() == two.posts() and one.all_accounts() == two.all_accounts()
    assert [p["name"] for p in one.all_packs()] == [p["name"] for p in two.all_packs()]
    assert one.posts() != three.posts()


def test_seed_is_realistic(sim: SimulatorServer, api: httpx.Client) -> None:
    """Seeded posts span many statuses with matching deliveries; posted ones carry published URLs."""
    info = seed_workspace(sim.state, posts=60, seed=1, now=NOW)
    posts = api.get("/posts", params={"limit": 100}).json()["data"]["posts"]
    assert len(posts) == 61 and {p["id"] for p in posts} == set(info.post_ids)
    assert {"scheduled", "posted", "failed", "partial", "draft"} <= {p["status"] for p in posts}
    platforms = {a["platform"] for a in api.get("/accounts").json()["data"]["accounts"]}
    assert platforms == {"tiktok", "instagram", "youtube", "pinterest", "linkedin", "facebook"}
    for post in posts:
        for state in post["accounts"]["states"]:
            if post["status"] == "posted":
                assert state["status"] == "posted" and state["published_url"].startswith("https://")
            if post["status"] == "failed":
                assert state["error_message"]
    ties = [p["created_at"] for p in posts]
    assert len(set(ties)) < len(ties)  # at least two posts share a created_at


def test_bulk_creates_thousands_of_listable_posts(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """add_posts_bulk creates 5,000 posts that the list endpoint pages through with until."""
    ids = sim.state.add_posts_bulk(5000, statuses=["scheduled", "pending"], start="2025-01-01T00:00:00Z")
    assert len(set(ids)) == 5000
    seen: list[str] = []
    until = None
    while True:
        params = {"limit": 100} if until is None else {"limit": 100, "until": until}
        posts = api.get("/posts", params=params).json()["data"]["posts"]
        fresh = [p for p in posts if p["id"] not in seen[-100:]]
        if not fresh:
            break
        seen.extend(p["id"] for p in fresh)
        until = posts[-1]["created_at"]
    assert len(seen) == 5000 and set(seen) == set(ids)


def _clocked(start: datetime) -> tuple[SimState, list[datetime]]:
    now = [start]
    state = SimState("k", clock=lambda: now[0])
    seed_workspace(state, posts=10, seed=2, now=start)
    return state, now


def test_live_tick_schedules_then_publishes_then_adds_the_url() -> None:
    """A tick schedules a post due before the next tick; the next tick settles it; a later one adds its URL."""
    state, now = _clocked(NOW)
    driver = LiveDriver(state, interval=2.5, seed=4)
    changes = driver.tick(now[0])
    [new_id] = [c.split()[1] for c in changes if "scheduled for" in c]
    now[0] += timedelta(seconds=2.5)
    driver.tick(now[0])
    settled = state.post(new_id)["status"]
    assert settled in {"posted", "failed", "partial", "retry"}
    for _ in range(6):
        now[0] += timedelta(seconds=2.5)
        driver.tick(now[0])
    states = state.post(new_id)["accounts"]["states"]
    for delivery in states:
        if delivery["status"] == "posted":
            assert delivery["published_url"] and delivery["published_at"]
        if delivery["status"] == "failed":
            assert delivery["error_message"]


def test_live_leaves_long_overdue_posts_stuck() -> None:
    """Posts due more than ten minutes ago are not published by live mode (they stay overdue)."""
    state, now = _clocked(NOW)
    account = state.all_accounts()[0]["id"]
    stuck = state.add_post(status="scheduled", scheduled_at=NOW - timedelta(hours=2), accounts=[account])["id"]
    driver = LiveDriver(state, interval=2.5, seed=5)
    for _ in range(5):
        now[0] += timedelta(seconds=2.5)
        driver.tick(now[0])
    assert state.post(stuck)["status"] == "scheduled"


def test_live_thread_changes_posts_over_http() -> None:
    """A server started with live=True shows posts changing on their own."""
    with (
        SimulatorServer(api_key="k", seed_posts=5, live=True, live_interval=0.05) as sim,
        httpx.Client(base_url=sim.base_url, headers={"Authorization": "Bearer k"}) as client,
    ):
        first = client.get("/posts").json()["data"]["summary"]["total"]
        deadline = time.monotonic() + 20
        while client.get("/posts").json()["data"]["summary"]["total"] == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/posts").json()["data"]["summary"]["total"] > first
