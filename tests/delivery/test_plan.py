"""Pure dispatch rules: matching, storm grouping, stable ids, the retry policy."""

from __future__ import annotations

import pytest

from notifier.dispatch_plan import after_attempt, matches, plan_run, split_runs
from notifier.models import Delivery, Templates
from notifier.store.deliveries import delivery_id, summary_delivery_id
from notifier.store.dispatch_stream import StreamEvent
from tests.delivery.conftest import make_event, make_sub

PACK_EVENT = make_event(1).__class__(id="evt_pack", type="pack.added", detected_at="t", scope="ws")


@pytest.mark.parametrize(
    ("events", "platforms", "accounts", "event", "expected"),
    [
        (["*"], [], [], make_event(1), True),
        (["post.failed"], [], [], make_event(1), True),
        (["post.posted"], [], [], make_event(1), False),
        (["*"], ["tiktok"], [], make_event(1, platform="tiktok"), True),
        (["*"], ["instagram"], [], make_event(1, platform="tiktok"), False),
        (["*"], [], ["acc_1"], make_event(1, account_id="acc_1"), True),
        (["*"], [], ["acc_9"], make_event(1, account_id="acc_1"), False),
        (["*"], ["tiktok"], ["acc_9"], make_event(1, account_id="acc_1"), False),
        (["*"], [], [], PACK_EVENT, True),
        (["*"], ["tiktok"], [], PACK_EVENT, False),
        (["delivery.failed"], ["tiktok"], [], make_event(1, etype="delivery.failed"), True),
    ],
)
def test_matches(events: list[str], platforms: list[str], accounts: list[str], event: object, expected: bool) -> None:
    """Event type (or "*"), platform and account filters decide a match; empty filters match all."""
    sub = make_sub("s", ["json://h"], events=events, platforms=platforms, account_ids=accounts)
    assert matches(sub, event) is expected  # type: ignore[arg-type]


def _run(n: int, batch: str = "b") -> list[StreamEvent]:
    return [StreamEvent(stream_id=f"1-{i}", batch=batch, event=make_event(i)) for i in range(n)]


def test_plan_one_delivery_per_event_and_url() -> None:
    """Without a storm, each received event gets one delivery per URL with a stable id; others get none."""
    run = _run(3)
    sub = make_sub("s", ["json://h/1", "json://h/2"])
    plan = plan_run(run, {"1-0", "1-2"}, [sub], now=10.0, now_iso="x")
    ids = [n.delivery.id for n in plan.deliveries]
    expected = [delivery_id(e, "s", i) for e in ("evt_post.failed_0", "evt_post.failed_2") for i in (0, 1)]
    assert ids == expected
    assert all(n.delivery.next_attempt_at == 10.0 for n in plan.deliveries)
    assert plan_run(run, {"1-0", "1-2"}, [sub], now=99.0, now_iso="y").deliveries[0].delivery.id == ids[0]


def test_plan_storm_is_one_summary_whoever_reads_it() -> None:
    """Over the threshold, any reader of any part of the cycle plans the same single summary per URL."""
    run = _run(4)
    sub = make_sub("s", ["json://h/1"], storm_threshold=3)
    a = plan_run(run, {"1-0"}, [sub], now=1.0, now_iso="x").deliveries
    b = plan_run(run, {"1-3"}, [sub], now=2.0, now_iso="x").deliveries
    assert (
        [n.delivery.id for n in a]
        == [n.delivery.id for n in b]
        == [summary_delivery_id([e.event.id for e in run], "s", 0)]
    )
    assert a[0].delivery.event_ids == [e.event.id for e in run] and a[0].delivery.event_type == "summary"
    assert '"count":4' in a[0].payload.data and "4 events" in a[0].payload.title
    exactly = plan_run(_run(3), {"1-0", "1-1", "1-2"}, [sub], now=1.0, now_iso="x").deliveries
    assert len(exactly) == 3  # K events are not a storm


def test_plan_skips_disabled_and_masks_target() -> None:
    """Disabled subscriptions get nothing; the stored target is the masked URL, the payload the real one."""
    url = "json://user:s3cretpass@127.0.0.1:9/x"
    plan = plan_run(
        _run(1), {"1-0"}, [make_sub("on", [url]), make_sub("off", [url], enabled=False)], now=1, now_iso="x"
    )
    [only] = plan.deliveries
    assert only.delivery.subscription_id == "on"
    assert "s3cretpass" not in only.delivery.target and only.payload.url == url


def test_split_runs_groups_consecutive_batches() -> None:
    """Consecutive entries of one batch form a run; an empty batch stands alone."""
    entries = [*_run(2, "a"), *_run(1, ""), *_run(1, ""), *_run(2, "b")]
    assert [len(r) for r in split_runs(entries)] == [2, 1, 1, 2]


def test_after_attempt_walks_the_schedule_then_dies() -> None:
    """Failures are retried after schedule[n] x jitter; past the schedule the delivery is dead; success is sent."""
    d = Delivery(id="d", event_ids=["e"], event_type="post.failed", subscription_id="s", url_index=0)
    schedule = (5.0, 30.0)
    d, result = after_attempt(d, False, "HTTP 500", now=100.0, schedule=schedule, jitter=1.2)
    assert (result, d.status, d.attempts, d.next_attempt_at, d.last_error) == ("retry", "failed", 1, 106.0, "HTTP 500")
    d, result = after_attempt(d, False, "HTTP 502", now=200.0, schedule=schedule, jitter=0.8)
    assert (result, d.attempts, d.next_attempt_at) == ("retry", 2, 224.0)
    dead, result = after_attempt(d, False, "HTTP 503", now=300.0, schedule=schedule, jitter=1.0)
    assert (result, dead.status, dead.attempts, dead.last_error, dead.next_attempt_at) == (
        "dead",
        "dead",
        3,
        "HTTP 503",
        None,
    )
    sent, result = after_attempt(d, True, None, now=300.0, schedule=schedule, jitter=1.0)
    assert (result, sent.status, sent.attempts) == ("sent", "sent", 3)


def test_plan_storm_summary_uses_the_subscription_title_template() -> None:
    """A storm summary's lines come from the subscription's title template; a failing one is reported."""
    styled = make_sub("s", ["json://h/1"], storm_threshold=2, templates=Templates(title="!{{ subject_id }}"))
    [summary] = plan_run(_run(3), {"1-0"}, [styled], now=1.0, now_iso="x").deliveries
    assert [line for line in summary.payload.body.splitlines() if line.startswith("- !")] == [
        f"- !{e.event.subject_id}" for e in _run(3)
    ]
    broken = make_sub("b", ["json://h/1"], storm_threshold=2, templates=Templates(title="{{ 1 // 0 }}"))
    plan = plan_run(_run(3), {"1-0"}, [broken], now=1.0, now_iso="x")
    assert len(plan.deliveries) == 1 and [sub for sub, _ in plan.template_errors] == ["b"]
