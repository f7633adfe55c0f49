"""GET /posts and GET /posts/{id} of the simulator, over real HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from notifier.simulator import SimulatorServer

MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["data"]["posts"]]


def test_success_envelope_has_exactly_the_documented_keys(api: httpx.Client, account: str) -> None:
    """A list answer is {"ok": true, "code": 200, "message": "Posts retrieved", "data": {summary, posts}}."""
    body = api.get("/posts").json()
    assert set(body) == {"ok", "code", "message", "data"}
    assert (body["ok"], body["code"], body["message"]) == (True, 200, "Posts retrieved")
    assert set(body["data"]) == {"summary", "posts"}


def test_post_carries_every_documented_field(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """A post has id, caption, status, scheduled_at, created_at, media, music_url, tiktok, pinterest, accounts."""
    pinterest = {"board_id": "123456789012345678", "title": "Dinner board", "tags": ["Italian recipes"]}
    sim.state.add_post(
        caption="Holiday drops start Monday!",
        status="scheduled",
        created_at="2025-01-20T12:05:11.205Z",
        scheduled_at="2025-02-01T15:00:00Z",
        media={"type": "video", "url": "https://cdn.example.com/video.mp4"},
        pinterest=pinterest,
        accounts=[account],
    )
    post = api.get("/posts").json()["data"]["posts"][0]
    assert post["caption"] == "Holiday drops start Monday!"
    assert post["created_at"] == "2025-01-20T12:05:11.205Z"
    assert post["scheduled_at"] == "2025-02-01T15:00:00Z"
    assert post["media"] == {"type": "video", "url": "https://cdn.example.com/video.mp4"}
    assert (post["music_url"], post["tiktok"], post["pinterest"]) == (None, None, pinterest)
    assert post["accounts"] == {
        "total": 1,
        "states": [
            {
                "account_id": account,
                "status": "scheduled",
                "published_at": None,
                "error_message": None,
                "last_attempted_at": None,
                "published_url": None,
            }
        ],
    }


def test_created_at_is_written_with_milliseconds_and_z(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """Timestamps the simulator writes look like 2025-01-20T12:05:11.205Z."""
    post_id = sim.state.add_post(accounts=[account])["id"]
    sim.state.set_delivery(post_id, account, published_at=datetime(2025, 1, 1, 8, 30, 0, 123456, tzinfo=UTC))
    post = api.get("/posts").json()["data"]["posts"][0]
    assert MS_Z.fullmatch(post["created_at"])
    assert post["accounts"]["states"][0]["published_at"] == "2025-01-01T08:30:00.123Z"


def test_limit_defaults_to_20(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """Without limit, 20 posts come back."""
    sim.state.add_posts_bulk(25)
    assert len(_ids(api.get("/posts"))) == 20


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", 1), ("-5", 1), ("500", 100), ("abc", 20), ("", 20), ("7", 7), ("3.9", 3), ("1e9", 100)],
)
def test_limit_is_clamped_not_rejected(
    sim: SimulatorServer, api: httpx.Client, account: str, raw: str, expected: int
) -> None:
    """limit below 1 is 1, above 100 is 100, and not a number is the default 20."""
    sim.state.add_posts_bulk(120)
    assert len(_ids(api.get("/posts", params={"limit": raw}))) == expected


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("value", ["yesterday", "2025-13-01", "1700000000", "2025-01-20T25:00:00Z"])
def test_unparsable_since_until_is_400(api: httpx.Client, account: str, name: str, value: str) -> None:
    """since/until that are not ISO 8601 get 400 with error_code invalid_since / invalid_until."""
    response = api.get("/posts", params={name: value})
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False and body["code"] == 400 and body["error_code"] == f"invalid_{name}"


def test_since_and_until_are_inclusive(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """A post created exactly at since or until is included; a millisecond outside is not."""
    times = ["2025-01-20T12:05:11.204Z", "2025-01-20T12:05:11.205Z", "2025-01-20T12:05:11.206Z"]
    ids = [sim.state.add_post(created_at=t, accounts=[account])["id"] for t in times]
    at = "2025-01-20T12:05:11.205Z"
    assert _ids(api.get("/posts", params={"since": at, "until": at})) == [ids[1]]
    assert _ids(api.get("/posts", params={"since": at})) == [ids[2], ids[1]]
    assert _ids(api.get("/posts", params={"until": at})) == [ids[1], ids[0]]
    assert _ids(api.get("/posts", params={"since": "2025-01-20T12:05:11.2051Z"})) == [ids[2]]


def test_since_accepts_offsets_and_dates(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """since/until take any ISO 8601 form: an offset is converted to UTC, a bare date is midnight UTC."""
    early = sim.state.add_post(created_at="2025-01-19T23:00:00.000Z", accounts=[account])["id"]
    late = sim.state.add_post(created_at="2025-01-20T10:00:00.000Z", accounts=[account])["id"]
    assert _ids(api.get("/posts", params={"since": "2025-01-20"})) == [late]
    assert _ids(api.get("/posts", params={"until": "2025-01-20T00:00:00+01:00"})) == [early]


def test_newest_first_and_ties_by_id_descending(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """Posts come newest created_at first; posts sharing a created_at come by id descending."""
    same = "2025-03-01T10:00:00.000Z"
    tied = [sim.state.add_post(created_at=same, accounts=[account])["id"] for _ in range(5)]
    newer = sim.state.add_post(created_at="2025-03-01T10:00:00.001Z", accounts=[account])["id"]
    older = sim.state.add_post(created_at="2025-03-01T09:59:59.999Z", accounts=[account])["id"]
    assert _ids(api.get("/posts")) == [newer, *sorted(tied, reverse=True), older]


def test_until_pages_through_ties_deterministically(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """Two identical requests give the same order, even with 300 posts sharing one created_at."""
    sim.state.add_posts_bulk(300, start="2025-03-01T10:00:00.000Z", step_ms=0)
    first = _ids(api.get("/posts", params={"limit": 100, "until": "2025-03-01T10:00:00.000Z"}))
    assert first == _ids(api.get("/posts", params={"limit": 100, "until": "2025-03-01T10:00:00.000Z"}))
    assert first == sorted(first, reverse=True)


@pytest.mark.parametrize("status", ["draft", "pending", "scheduled", "posted", "failed", "partial", "retry"])
def test_status_filter_returns_only_that_status(
    sim: SimulatorServer, api: httpx.Client, account: str, status: str
) -> None:
    """status=X returns only posts whose overall status is X."""
    everything = ["draft", "pending", "scheduled", "posted", "failed", "partial", "retry", "deleted"]
    sim.state.add_posts_bulk(16, statuses=everything)
    posts = api.get("/posts", params={"status": status}).json()["data"]["posts"]
    assert len(posts) == 2 and {p["status"] for p in posts} == {status}


def test_no_status_filter_returns_every_status(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """Without status, posts of every status come back, including ones like deleted."""
    sim.state.add_posts_bulk(4, statuses=["deleted", "posted", "retry", "draft"])
    statuses = {p["status"] for p in api.get("/posts").json()["data"]["posts"]}
    assert statuses == {"deleted", "posted", "retry", "draft"}


def test_summary_counts_every_post_in_scope_regardless_of_filters(
    sim: SimulatorServer, api: httpx.Client, account: str
) -> None:
    """summary: total of all posts, pending = pending + scheduled, published = posted + partial, six buckets."""
    counts = {
        "draft": 1,
        "pending": 2,
        "scheduled": 3,
        "posted": 4,
        "partial": 5,
        "failed": 6,
        "retry": 7,
        "deleted": 8,
    }
    for status, n in counts.items():
        sim.state.add_posts_bulk(n, statuses=[status])
    expected = {
        "total": 36,
        "pending": 5,
        "published": 9,
        "by_status": {"draft": 1, "pending": 2, "scheduled": 3, "posted": 4, "partial": 5, "failed": 6},
    }
    assert api.get("/posts").json()["data"]["summary"] == expected
    filtered = api.get("/posts", params={"status": "failed", "limit": 1, "since": "2999-01-01"})
    assert filtered.json()["data"]["summary"] == expected
    assert filtered.json()["data"]["posts"] == []


def test_summary_follows_changes(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """Changing and deleting posts moves the summary counters."""
    post = sim.state.add_post(status="scheduled", accounts=[account])["id"]
    sim.state.update_post(post, status="posted")
    assert api.get("/posts").json()["data"]["summary"]["by_status"]["posted"] == 1
    sim.state.delete_post(post)
    assert api.get("/posts").json()["data"]["summary"]["total"] == 0


def test_only_deliveries_of_the_key_scope_are_listed(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """Deliveries to other scopes' accounts are filtered out; a post with none in scope is not returned."""
    other = sim.state.add_scope("workspace")
    theirs = sim.state.add_account("instagram", scope_id=other.id)["id"]
    shared = sim.state.add_post(accounts=[account, theirs])["id"]
    hidden = sim.state.add_post(status="failed", accounts=[theirs])["id"]
    data = api.get("/posts").json()["data"]
    assert [p["id"] for p in data["posts"]] == [shared]
    assert data["posts"][0]["accounts"]["total"] == 1
    assert [s["account_id"] for s in data["posts"][0]["accounts"]["states"]] == [account]
    assert data["summary"]["total"] == 1 and data["summary"]["by_status"]["failed"] == 0
    assert api.get(f"/posts/{hidden}").status_code == 404


def test_get_post_returns_the_post(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """GET /posts/{id} answers "Post retrieved" with the post and its delivery states."""
    post = sim.state.add_post(caption="hello", accounts=[{"account_id": account, "status": "failed"}])
    body = api.get(f"/posts/{post['id']}").json()
    assert (body["ok"], body["code"], body["message"]) == (True, 200, "Post retrieved")
    assert body["data"]["caption"] == "hello"
    assert body["data"]["accounts"]["states"][0]["status"] == "failed"


def test_get_post_unknown_is_404_not_found(api: httpx.Client, account: str) -> None:
    """An unknown post id gets 404 with error_code not_found."""
    response = api.get("/posts/11111111-1111-1111-1111-111111111111")
    assert response.status_code == 404
    assert response.json() == {"ok": False, "code": 404, "message": "Post not found", "error_code": "not_found"}


def test_delivery_state_changes_show_up(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """set_delivery changes one account's status, error message and published URL as the API shows them."""
    post = sim.state.add_post(status="scheduled", accounts=[account])["id"]
    sim.state.set_delivery(post, account, status="posted", published_url="https://www.tiktok.com/@c/video/1")
    state = api.get(f"/posts/{post}").json()["data"]["accounts"]["states"][0]
    assert state["status"] == "posted" and state["published_url"] == "https://www.tiktok.com/@c/video/1"


def test_changing_created_at_moves_the_post(sim: SimulatorServer, api: httpx.Client, account: str) -> None:
    """A post whose created_at is changed is listed at its new place."""
    a = sim.state.add_post(created_at="2025-01-01T00:00:00.000Z", accounts=[account])["id"]
    b = sim.state.add_post(created_at="2025-01-02T00:00:00.000Z", accounts=[account])["id"]
    sim.state.update_post(a, created_at="2025-01-03T00:00:00.000Z")
    assert _ids(api.get("/posts")) == [a, b]
