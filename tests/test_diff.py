"""The pure diff core: which change is which event, and the properties of event ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.diff import (
    IndexEntry,
    diff_accounts,
    diff_packs,
    diff_posts,
    fingerprint,
    index_entry,
    select_changed,
)
from notifier.models import (
    Account,
    AccountSnap,
    DeliveryState,
    Event,
    Pack,
    Post,
    PostAccounts,
    PostSnap,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SCOPE = "ws-1"
ACCOUNTS = {
    "a1": AccountSnap(v=1, platform="tiktok", username="t", display_name="T", status="active"),
    "a2": AccountSnap(v=1, platform="instagram", username="i", display_name="I", status="active"),
}


def post(pid: str = "p1", status: str = "scheduled", deliveries: list[DeliveryState] | None = None, **kw: Any) -> Post:
    states = deliveries if deliveries is not None else [DeliveryState(account_id="a1", status=status)]
    return Post(
        id=pid,
        status=status,
        created_at=kw.pop("created_at", "2026-02-01T10:00:00.000Z"),
        scheduled_at=kw.pop("scheduled_at", "2026-03-01T13:00:00.000Z"),
        caption=kw.pop("caption", "Holiday drops start Monday!"),
        accounts=PostAccounts(total=len(states), states=states),
        **kw,
    )


def run(prev: dict[str, PostSnap], posts: list[Post], *, now: datetime = NOW, notify_new: bool = True):
    return diff_posts(SCOPE, prev, posts, now=now, overdue_after=900, accounts=ACCOUNTS, notify_new=notify_new)


def snaps(result: Any) -> dict[str, PostSnap]:
    return {pid: snap for pid, (snap, _fp) in result.snaps.items()}


def types(events: list[Event]) -> list[str]:
    return sorted(e.type for e in events)


# ------------------------------------------------------------------------------------------------ table tests


def test_scheduled_to_failed_emits_status_post_and_delivery_events() -> None:
    """A scheduled post that fails yields post.status_changed, post.failed and delivery.failed."""
    base = snaps(run({}, [post()], notify_new=False))
    failed = post(
        status="failed", deliveries=[DeliveryState(account_id="a1", status="failed", error_message="expired")]
    )
    result = run(base, [failed])
    assert types(result.events) == ["delivery.failed", "post.failed", "post.status_changed"]
    by_type = {e.type: e for e in result.events}
    assert by_type["post.failed"].current == {"status": "failed", "error_message": "expired"}
    assert by_type["delivery.failed"].account is not None
    assert by_type["delivery.failed"].account.platform == "tiktok"
    assert by_type["post.failed"].post is not None
    assert by_type["post.failed"].post.platforms == ["tiktok"]


def test_published_url_appearing_later_is_its_own_event() -> None:
    """A published_url that appears after the post is posted yields delivery.published only."""
    posted = post(status="posted", deliveries=[DeliveryState(account_id="a1", status="posted")])
    base = snaps(run({}, [posted], notify_new=False))
    with_url = post(
        status="posted", deliveries=[DeliveryState(account_id="a1", status="posted", published_url="https://t/1")]
    )
    result = run(base, [with_url])
    assert types(result.events) == ["delivery.published"]
    assert result.events[0].current is not None
    assert result.events[0].current["published_url"] == "https://t/1"


def test_baseline_is_silent_but_new_posts_later_are_not() -> None:
    """The first poll records silently; a post first seen already posted after that is notified."""
    assert run({}, [post(status="posted")], notify_new=False).events == []
    result = run({}, [post(status="posted")], notify_new=True)
    assert types(result.events) == ["delivery.posted", "post.posted"]


def test_overdue_raised_once() -> None:
    """A post still scheduled past scheduled_at + window raises post.overdue once, not every cycle."""
    base = snaps(
        run({}, [post(scheduled_at="2026-03-01T11:00:00.000Z")], notify_new=False, now=NOW - timedelta(hours=2))
    )
    first = run(base, [post(scheduled_at="2026-03-01T11:00:00.000Z")])
    assert types(first.events) == ["post.overdue"]
    second = run(snaps(first), [post(scheduled_at="2026-03-01T11:00:00.000Z")], now=NOW + timedelta(minutes=5))
    assert second.events == []


def test_rescheduling_rearms_overdue() -> None:
    """Moving scheduled_at re-arms post.overdue, and the second one has a different id."""
    old = run({}, [post(scheduled_at="2026-03-01T11:00:00.000Z")], notify_new=True)
    s1 = snaps(old)
    assert types(old.events) == ["post.overdue"]
    moved = run(s1, [post(scheduled_at="2026-03-01T11:30:00.000Z")])
    assert types(moved.events) == ["post.overdue"]
    assert moved.events[0].id != old.events[0].id


def test_fail_retry_fail_same_error_gives_distinct_ids() -> None:
    """A post that fails, is retried and fails again with the same error yields two different ids."""

    def failed(attempt: str) -> Post:
        d = DeliveryState(account_id="a1", status="failed", error_message="boom", last_attempted_at=attempt)
        return post(status="failed", deliveries=[d])

    s = snaps(run({}, [post()], notify_new=False))
    r1 = run(s, [failed("2026-03-01T12:00:00.000Z")])
    r2 = run(snaps(r1), [post(status="retry", deliveries=[DeliveryState(account_id="a1", status="retry")])])
    r3 = run(snaps(r2), [failed("2026-03-01T12:05:00.000Z")])
    first = {e.type: e.id for e in r1.events}
    again = {e.type: e.id for e in r3.events}
    assert set(first) == set(again) == {"post.status_changed", "post.failed", "delivery.failed"}
    assert all(first[t] != again[t] for t in first)


def test_failed_again_without_status_change_is_a_new_failure() -> None:
    """A failed delivery attempted again and still failed yields a new delivery.failed with a new id."""

    def failed(attempt: str) -> Post:
        d = DeliveryState(account_id="a1", status="failed", error_message="boom", last_attempted_at=attempt)
        return post(status="failed", deliveries=[d])

    r1 = run({}, [failed("2026-03-01T12:00:00.000Z")])
    r2 = run(snaps(r1), [failed("2026-03-01T12:10:00.000Z")])
    assert types(r2.events) == ["delivery.failed"]
    assert r2.events[0].id not in {e.id for e in r1.events}


def test_accounts_added_changed_removed_and_back() -> None:
    """Accounts: added, changed, removed, and a return after removal gets a new id."""
    a = Account(id="a1", platform="tiktok", username="u", display_name="U", status="active")
    base = diff_accounts(SCOPE, {}, [a], now=NOW, baseline=True)
    assert base.events == []
    changed = diff_accounts(
        SCOPE,
        base.snaps,
        [Account(id="a1", platform="tiktok", username="u2", status="active", display_name="U")],
        now=NOW,
        baseline=False,
    )
    assert types(changed.events) == ["account.changed"]
    assert changed.events[0].previous == {"username": "u"}
    gone = diff_accounts(SCOPE, changed.snaps, [], now=NOW, baseline=False)
    assert types(gone.events) == ["account.removed"]
    back = diff_accounts(SCOPE, gone.snaps, [a], now=NOW, baseline=False)
    assert types(back.events) == ["account.added"]
    ids = [e.id for r in (changed, gone, back) for e in r.events]
    assert len(set(ids)) == 3


def test_packs_added_and_changed() -> None:
    """Packs: a new pack is pack.added, a new image_count or name is pack.changed."""
    base = diff_packs(SCOPE, {}, [Pack(id="k1", name="Motivation", image_count=2)], now=NOW, baseline=True)
    grown = diff_packs(
        SCOPE,
        base.snaps,
        [Pack(id="k1", name="Motivation", image_count=3), Pack(id="k2", name="New", image_count=1)],
        now=NOW,
        baseline=False,
    )
    assert types(grown.events) == ["pack.added", "pack.changed"]
    changed = next(e for e in grown.events if e.type == "pack.changed")
    assert changed.previous == {"image_count": 2} and changed.current == {"image_count": 3}


def test_index_entry_round_trip_and_changed_posts() -> None:
    """The index entry encodes and decodes, and an unchanged post needs no full diff."""
    p = post()
    snap = snaps(run({}, [p], notify_new=False))["p1"]
    entry = index_entry(snap, fingerprint(p))
    assert IndexEntry.decode(entry.encode()) == entry
    index = {b"p1": entry.encode().encode()}
    now_ms = int(NOW.timestamp() * 1000)
    assert select_changed([p], index, now_ms, 900_000) == []
    moved = post(caption="edited")
    assert [q for q, _ in select_changed([moved], index, now_ms, 900_000)] == [moved]
    assert [q for q, _ in select_changed([p], index, now_ms + 3 * 3600_000, 900_000)] == [p]  # now overdue


# ------------------------------------------------------------------------------------------------ properties

ACCOUNT_IDS = ["a1", "a2", "a3"]
TERMINAL = ["posted", "failed"]
STATUSES = ["draft", "pending", "scheduled", "posted", "failed", "partial", "retry", "deleted"]

delivery_st = st.builds(
    DeliveryState,
    account_id=st.sampled_from(ACCOUNT_IDS),
    status=st.sampled_from(STATUSES),
    error_message=st.sampled_from([None, "token expired", "rate limited"]),
    published_url=st.sampled_from([None, "https://x/1", "https://x/2"]),
    last_attempted_at=st.sampled_from([None, "2026-03-01T10:00:00.000Z", "2026-03-01T11:00:00.000Z"]),
)


@st.composite
def post_st(draw: st.DrawFn, pid: str) -> Post:
    ds = draw(st.lists(delivery_st, max_size=3, unique_by=lambda d: d.account_id))
    return post(
        pid,
        status=draw(st.sampled_from(STATUSES)),
        deliveries=ds,
        scheduled_at=draw(st.sampled_from([None, "2026-03-01T11:00:00.000Z", "2026-03-01T13:00:00.000Z"])),
    )


posts_st = st.lists(st.sampled_from(["p1", "p2", "p3", "p4"]), unique=True, max_size=4).flatmap(
    lambda ids: st.tuples(*[post_st(i) for i in ids]).map(list)
)


@settings(max_examples=150, deadline=None)
@given(posts_st)
def test_property_nothing_changed_no_transitions(posts: list[Post]) -> None:
    """Diffing a state against its own snapshot yields no transitions and no new versions."""
    first = run({}, posts, notify_new=True)
    again = run(snaps(first), posts)
    assert again.events == []
    assert snaps(again) == snaps(first)


def _forward(old: Post, new: Post) -> Post:
    """``new`` restricted to changes the events describe: deliveries keep or reach posted/failed."""
    before = {d.account_id: d for d in old.accounts.states}
    states = []
    for d in new.accounts.states:
        prior = before.get(d.account_id)
        if d.status not in TERMINAL and prior is not None:
            d = prior  # a move to a non-terminal delivery status has no delivery event
        elif d.status not in TERMINAL:
            continue
        if prior is not None and prior.published_url and not d.published_url:
            d = DeliveryState(
                d.account_id, d.status, d.published_at, d.error_message, d.last_attempted_at, prior.published_url
            )
        states.append(d)
    kept = {d.account_id for d in states}
    states += [d for d in old.accounts.states if d.account_id not in kept]
    return post(new.id, status=new.status, deliveries=states, scheduled_at=old.scheduled_at)


def _project(posts: dict[str, PostSnap]) -> dict[str, Any]:
    return {
        pid: (s.status, {d.account_id: (d.status, d.published_url) for d in s.deliveries if d.status in TERMINAL})
        for pid, s in posts.items()
    }


def _apply(old: dict[str, PostSnap], events: list[Event]) -> dict[str, Any]:
    state = _project(old)
    for e in events:
        assert e.post is not None and e.current is not None
        status, deliveries = state[e.post.id]
        if e.type == "post.status_changed":
            status = e.current["status"]
        elif e.type in ("delivery.posted", "delivery.failed", "delivery.published"):
            assert e.account is not None
            deliveries[e.account.id] = (e.current["status"], e.current["published_url"])
        state[e.post.id] = (status, deliveries)
    return state


@settings(max_examples=200, deadline=None)
@given(posts_st, posts_st)
def test_property_apply_transitions_gives_new_snapshot(old_posts: list[Post], drawn: list[Post]) -> None:
    """Applying the transitions to the old snapshot gives the new one (status, delivery outcomes, URLs)."""
    old_snaps = snaps(run({}, old_posts, notify_new=False))
    by_id = {p.id: p for p in drawn}
    new_posts = [_forward(p, by_id[p.id]) if p.id in by_id else p for p in old_posts]
    result = run(old_snaps, new_posts)
    expected = _project({**old_snaps, **snaps(result)})
    non_overdue = [e for e in result.events if e.type != "post.overdue"]
    assert _apply(old_snaps, non_overdue) == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(post_st("p1"), min_size=1, max_size=8))
def test_property_ids_stable_and_unique(history: list[Post]) -> None:
    """Replaying a history gives the same ids; no two transitions in a history share an id."""

    def replay() -> list[str]:
        ids: list[str] = []
        prev: dict[str, PostSnap] = {}
        for i, p in enumerate(history):
            r = run(prev, [p], now=NOW + timedelta(minutes=i))
            ids += [e.id for e in r.events]
            prev = {**prev, **snaps(r)}
        return ids

    ids = replay()
    assert ids == replay()
    assert len(ids) == len(set(ids))


def test_select_changed_reads_raw_index_entries() -> None:
    """The hot path skips unchanged posts and picks changed, new and newly overdue ones."""
    later = "2026-03-01T13:00:00.000Z"  # not due at NOW
    due = "2026-03-01T11:00:00.000Z"  # more than 900 s before NOW
    base = [
        post("same", scheduled_at=later),
        post("edit", scheduled_at=later),
        post("late", scheduled_at=due),
        post("flag", scheduled_at=due),
        post("none", scheduled_at=None),
    ]
    first = run({}, base, notify_new=False, now=NOW - timedelta(hours=3))
    snaps_fp = dict(first.snaps)
    flagged = run({"flag": snaps_fp["flag"][0]}, [post("flag", scheduled_at=due)])  # raises overdue once
    snaps_fp["flag"] = flagged.snaps["flag"]
    index = {pid.encode(): index_entry(s, fp).encode().encode() for pid, (s, fp) in snaps_fp.items()}
    fresh = [
        post("same", scheduled_at=later),
        post("edit", caption="new words", scheduled_at=later),
        post("late", scheduled_at=due),
        post("flag", scheduled_at=due),
        post("none", status="pending", scheduled_at=None),
        post("new"),
    ]
    now_ms = int(NOW.timestamp() * 1000)
    picked = {p.id: entry for p, entry in select_changed(fresh, index, now_ms, 900_000)}
    assert set(picked) == {"edit", "late", "none", "new"}
    assert picked["new"] is None and picked["late"] is not None and picked["late"].scheduled_ms is not None
