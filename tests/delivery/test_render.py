"""Notification text: readable defaults per event type, sandboxed templates."""

from __future__ import annotations

import pytest

from notifier.models import AccountRef, Event, EventType, PackRef, PostRef, Templates
from notifier.render import render, render_event, render_summary
from tests.delivery.conftest import make_event

LONG_CAPTION = "Spring drop is live! " * 10


def _post_event(etype: str, **kw: object) -> Event:
    post = PostRef(
        id="post_42",
        caption=LONG_CAPTION,
        status="failed",
        scheduled_at="2025-03-01T11:00:00.000Z",
        created_at="2025-03-01T10:00:00.000Z",
        media_type="video",
        account_ids=["acc_1"],
        platforms=["tiktok"],
    )
    account = AccountRef(id="acc_1", platform="tiktok", username="acme", display_name="Acme Co")
    return Event(
        id="e",
        type=etype,
        detected_at="2025-03-01T12:00:00.000Z",
        scope="ws",
        post=post,
        account=account if etype.startswith("delivery") else None,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("etype", [t.value for t in EventType if t.value.startswith(("post.", "delivery."))])
def test_post_events_name_type_post_platform_and_caption(etype: str) -> None:
    """Every post/delivery notification names the event type, the post id, the platform and a short caption."""
    msg = render_event(_post_event(etype, previous={"status": "scheduled"}, current={"status": "failed"}))
    text = msg.title + "\n" + msg.body
    assert etype in text and "post_42" in text and "tiktok" in text
    caption_line = next(line for line in msg.body.splitlines() if line.startswith("Caption: "))
    assert len(caption_line.removeprefix("Caption: ")) <= 80 and caption_line.endswith("…")


def test_failure_shows_error_and_published_shows_url() -> None:
    """A failure carries the error message; a publication carries the URL and the account."""
    failed = render_event(
        _post_event("delivery.failed", current={"status": "failed", "error_message": "Token expired"})
    )
    assert "Error: Token expired" in failed.body and "@acme" in failed.title and failed.level == "failure"
    live = render_event(_post_event("delivery.published", current={"published_url": "https://tiktok.com/@acme/1"}))
    assert "URL: https://tiktok.com/@acme/1" in live.body and live.level == "success"


def test_account_and_pack_events_name_their_id() -> None:
    """Account and pack events name the account / pack id and what changed."""
    acc = Event(
        id="e",
        type="account.changed",
        detected_at="t",
        scope="ws",
        account=AccountRef(id="acc_7", platform="instagram", username="brand"),
        previous={"status": "active"},
        current={"status": "expired"},
    )
    msg = render_event(acc)
    assert "account.changed" in msg.title and "acc_7" in msg.body and "status active → expired" in msg.body
    pack = Event(
        id="e", type="pack.added", detected_at="t", scope="ws", pack=PackRef(id="pk_1", name="Memes", image_count=12)
    )
    msg = render_event(pack)
    assert "pack.added" in msg.title and "Memes" in msg.title and "pk_1" in msg.body


def test_summary_lists_every_event_type_and_id() -> None:
    """A storm summary counts the events by type and lists each with its id."""
    events = [make_event(i) for i in range(12)]
    msg = render_summary(events, subscription_name="Ops")
    assert "12 events" in msg.title and "12x post.failed" in msg.title
    assert all(f"post_{i}" in msg.body for i in range(12)) and msg.level == "failure"


def test_template_renders_and_falls_back_on_runtime_error() -> None:
    """Templates replace the text; one that fails at render time leaves the default text and says why."""
    event = make_event(1)
    msg = render(event, Templates(title="{{ type|upper }} {{ event.post.id }}"))
    assert msg.title == "POST.FAILED post_1" and msg.body == render_event(event).body
    broken = render(event, Templates(body="{{ 1 // 0 }}"))
    assert broken.body == render_event(event).body and broken.template_error is not None


def test_summary_lines_follow_the_title_template() -> None:
    """With a title template, each listed event is that template's line; the summary title still counts."""
    events = [make_event(i) for i in range(12)]
    msg = render_summary(
        events, subscription_name="Ops", templates=Templates(title="{{ type|upper }}: {{ subject_id }}")
    )
    lines = [line for line in msg.body.splitlines() if line.startswith("- ")]
    assert lines == [f"- POST.FAILED: post_{i}" for i in range(12)]
    assert "12x post.failed" in msg.title and msg.template_error is None


def test_summary_line_falls_back_when_the_template_fails() -> None:
    """A title template failing on an event leaves that event's default line and records why."""
    events = [make_event(i) for i in range(3)]
    failing = Templates(title="{{ subject_id }}{{ (1 // 0) if subject_id == 'post_1' else '!' }}")
    msg = render_summary(events, subscription_name="Ops", templates=failing)
    lines = [line for line in msg.body.splitlines() if line.startswith("- ")]
    default = render_summary(events, subscription_name="Ops").body.splitlines()
    assert lines[1] in default and lines[0] == "- post_0!" and lines[2] == "- post_2!"
    assert msg.template_error is not None and "ZeroDivisionError" in msg.template_error
