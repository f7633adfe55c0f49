"""Subscriptions over HTTP: CRUD, pagination, validation (422 naming the field), 404 / 409 / 413, masking, /test."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest

from notifier.api import AppDeps
from notifier.models import EVENT_TYPES, Subscription, SubscriptionInput
from tests.api.conftest import SLACK, SLACK_SECRETS, Receiver, assert_no_secret

BODY: dict[str, Any] = {
    "name": "TikTok failures to Slack",
    "urls": [SLACK],
    "events": ["post.failed", "delivery.failed"],
    "filters": {"platforms": ["tiktok"], "account_ids": []},
    "enabled": True,
}


async def create(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/subscriptions", json={**BODY, **overrides})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def fields_of(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json()["extra"]["errors"]]


async def test_create_returns_stored_subscription_with_masked_urls(client: httpx.AsyncClient) -> None:
    """POST /subscriptions answers 201 with id, source api, timestamps, and the URL in its masked form."""
    response = await client.post("/subscriptions", json=BODY)
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == BODY["name"]
    assert body["source"] == "api"
    assert body["events"] == BODY["events"]
    assert body["filters"]["platforms"] == ["tiktok"]
    assert body["id"] and body["created_at"] and body["updated_at"]
    assert body["urls"][0].startswith("slack://")
    assert_no_secret(response.text)


async def test_get_list_patch_delete_roundtrip(client: httpx.AsyncClient) -> None:
    """A subscription is found by GET, listed, updated partially by PATCH and gone after DELETE (204)."""
    created = await create(client)
    sub_id = created["id"]

    got = await client.get(f"/subscriptions/{sub_id}")
    assert got.status_code == 200 and got.json()["id"] == sub_id
    assert_no_secret(got.text)

    listed = await client.get("/subscriptions")
    assert listed.status_code == 200
    assert listed.json()["total"] == 1
    assert [s["id"] for s in listed.json()["items"]] == [sub_id]
    assert_no_secret(listed.text)

    patched = await client.patch(f"/subscriptions/{sub_id}", json={"enabled": False, "events": ["*"]})
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False
    assert patched.json()["events"] == ["*"]
    assert patched.json()["name"] == BODY["name"]
    assert_no_secret(patched.text)

    deleted = await client.delete(f"/subscriptions/{sub_id}")
    assert deleted.status_code == 204
    assert (await client.get(f"/subscriptions/{sub_id}")).status_code == 404


async def test_list_paginates_with_limit_and_offset(client: httpx.AsyncClient) -> None:
    """GET /subscriptions pages with limit/offset through every subscription once, and reports the total."""
    ids = [(await create(client, name=f"sub {i}"))["id"] for i in range(5)]
    first = (await client.get("/subscriptions", params={"limit": 2})).json()
    second = (await client.get("/subscriptions", params={"limit": 2, "offset": 2})).json()
    last = (await client.get("/subscriptions", params={"limit": 2, "offset": 4})).json()
    assert first["total"] == second["total"] == last["total"] == 5
    paged = [s["id"] for s in first["items"] + second["items"] + last["items"]]
    assert sorted(paged) == sorted(ids)
    assert [len(first["items"]), len(second["items"]), len(last["items"])] == [2, 2, 1]
    assert (first["limit"], second["offset"]) == (2, 2)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"offset": -1}, "offset"), ({"limit": "x"}, "limit")],
)
async def test_bad_pagination_is_422_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    """An out-of-range or non-numeric limit/offset is a 422 naming the parameter."""
    response = await client.get("/subscriptions", params=params)
    assert response.status_code == 422
    assert fields_of(response) == [field]


async def test_unknown_event_is_422_listing_the_valid_ones(client: httpx.AsyncClient) -> None:
    """An unknown event type names events[i] and lists every valid type."""
    response = await client.post("/subscriptions", json={**BODY, "events": ["post.failed", "post.exploded"]})
    assert response.status_code == 422
    assert fields_of(response) == ["events[1]"]
    message = response.json()["extra"]["errors"][0]["message"]
    assert "post.exploded" in message
    assert all(t in message for t in EVENT_TYPES)


async def test_bad_url_is_422_and_shown_masked(client: httpx.AsyncClient) -> None:
    """An unparsable apprise URL names urls[i] and shows the URL without its password."""
    bad = "nosuchscheme://operator:Hunter2Password@example.com/path"
    response = await client.post("/subscriptions", json={**BODY, "urls": [SLACK, bad]})
    assert response.status_code == 422
    assert fields_of(response) == ["urls[1]"]
    assert "Hunter2Password" not in response.text
    assert "nosuchscheme://" in response.json()["extra"]["errors"][0]["message"]
    assert_no_secret(response.text)


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"urls": [""]}, "urls[0]", "empty"),
        ({"urls": []}, "urls", "at least one"),
        ({"events": []}, "events", "at least one"),
        ({"filters": {"platforms": ["myspace"]}}, "filters.platforms[0]", "myspace"),
        ({"name": "x" * 201}, "name", "200"),
        ({"name": "   "}, "name", "empty"),
        ({"name": 7}, "name", "str"),
        ({"colour": "blue"}, "colour", "unknown field"),
    ],
)
async def test_each_invalid_field_is_a_422_naming_it(
    client: httpx.AsyncClient, overrides: dict[str, Any], field: str, words: str
) -> None:
    """Each broken rule gives 422 with that field named in extra.errors and in the detail sentence."""
    response = await client.post("/subscriptions", json={**BODY, **overrides})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["status_code"] == 422
    assert field in fields_of(response)
    assert words in body["detail"]
    assert (await client.get("/subscriptions")).json()["total"] == 0


async def test_missing_required_field_is_422_naming_it(client: httpx.AsyncClient) -> None:
    """A body without events is a 422 naming events."""
    response = await client.post("/subscriptions", json={"name": "n", "urls": [SLACK]})
    assert response.status_code == 422
    assert fields_of(response) == ["events"]


async def test_patch_is_validated_like_create(client: httpx.AsyncClient) -> None:
    """A PATCH that breaks a rule is a 422 naming the field, and the stored subscription is unchanged."""
    created = await create(client)
    response = await client.patch(f"/subscriptions/{created['id']}", json={"events": ["nope"]})
    assert response.status_code == 422
    assert fields_of(response) == ["events[0]"]
    assert (await client.get(f"/subscriptions/{created['id']}")).json()["events"] == BODY["events"]


async def test_malformed_json_is_400_json(client: httpx.AsyncClient) -> None:
    """A body that is not JSON is a 400 with a JSON error body."""
    response = await client.post("/subscriptions", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["status_code"] == 400


async def test_body_over_64_kib_is_413(client: httpx.AsyncClient) -> None:
    """A request body larger than the limit is refused with 413 and nothing is stored."""
    big = {**BODY, "name": "x" * (70 * 1024)}
    response = await client.post("/subscriptions", json=big)
    assert response.status_code == 413
    assert response.json()["status_code"] == 413
    assert (await client.get("/subscriptions")).json()["total"] == 0


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_unknown_id_is_404(client: httpx.AsyncClient, method: str) -> None:
    """GET, PATCH and DELETE of an id that does not exist answer 404 in JSON."""
    kwargs: dict[str, Any] = {"json": {"enabled": False}} if method == "PATCH" else {}
    response = await client.request(method, "/subscriptions/00000000-0000-0000-0000-000000000000", **kwargs)
    assert response.status_code == 404
    assert response.json()["detail"] == "no subscription with this id"


async def test_config_subscription_is_read_only_409(client: httpx.AsyncClient, deps: AppDeps) -> None:
    """A subscription managed as code is listed (masked) but PATCH and DELETE answer 409."""
    stamp = "2025-01-01T00:00:00.000Z"
    sub = Subscription(
        id="ops-everything",
        name="ops",
        urls=[SLACK],
        events=["*"],
        source="config",
        created_at=stamp,
        updated_at=stamp,
    )
    await deps.subscriptions.replace_config([sub])
    listed = await client.get("/subscriptions")
    assert listed.json()["items"][0]["source"] == "config"
    assert_no_secret(listed.text)
    patched = await client.patch("/subscriptions/ops-everything", json={"enabled": False})
    deleted = await client.delete("/subscriptions/ops-everything")
    assert (patched.status_code, deleted.status_code) == (409, 409)
    assert "read-only" in deleted.json()["detail"]
    assert (await client.get("/subscriptions/ops-everything")).json()["enabled"] is True


async def test_test_endpoint_reports_each_url_masked(client: httpx.AsyncClient, receiver: Receiver) -> None:
    """POST /subscriptions/{id}/test sends now: ok for a live target, ok false with a reason for a dead one."""
    live = receiver.url("json", "/hook")
    dead = "json://user:Sup3rSecretPw@127.0.0.1:1/hook"
    created = await create(client, urls=[live, dead])
    response = await client.post(f"/subscriptions/{created['id']}/test")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True, False]
    assert results[1]["error"]
    assert len(receiver.bodies) == 1
    assert "Sup3rSecretPw" not in response.text


async def test_test_endpoint_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    """POST /subscriptions/{id}/test of an unknown id answers 404."""
    assert (await client.post("/subscriptions/nope/test")).status_code == 404


async def test_corrupt_record_is_500_without_details(client: httpx.AsyncClient, deps: AppDeps) -> None:
    """An unexpected failure answers a JSON 500 that carries no exception text or stack trace."""
    await deps.redis.hset(deps.keys.subscriptions, "broken", b"\x00not-json")
    response = await client.get("/subscriptions/broken")
    assert response.status_code == 500
    assert response.json() == {"status_code": 500, "detail": "Internal server error", "extra": None}
    assert "Traceback" not in response.text


async def test_every_answer_masks_urls(client: httpx.AsyncClient) -> None:
    """No response of the subscription routes ever contains a URL secret."""
    created = await create(client)
    texts = [
        (await client.get(f"/subscriptions/{created['id']}")).text,
        (await client.get("/subscriptions")).text,
        (await client.patch(f"/subscriptions/{created['id']}", json={"name": "renamed"})).text,
        (await client.post("/subscriptions", json={**BODY, "events": ["bad"]})).text,
    ]
    for text in texts:
        assert_no_secret(text, SLACK_SECRETS)


async def test_listing_shows_own_writes_at_once(client: httpx.AsyncClient) -> None:
    """A listing right after a create, update or delete through the API reflects it (no stale cache)."""
    assert (await client.get("/subscriptions")).json()["total"] == 0
    created = await create(client)
    assert [s["id"] for s in (await client.get("/subscriptions")).json()["items"]] == [created["id"]]
    await client.patch(f"/subscriptions/{created['id']}", json={"name": "renamed"})
    assert (await client.get("/subscriptions")).json()["items"][0]["name"] == "renamed"
    await client.delete(f"/subscriptions/{created['id']}")
    assert (await client.get("/subscriptions")).json()["total"] == 0


async def test_listing_shows_writes_made_elsewhere(client: httpx.AsyncClient, deps: AppDeps) -> None:
    """A subscription written by another process (straight into Redis) appears in the listing shortly."""
    assert (await client.get("/subscriptions")).json()["total"] == 0
    other = await deps.subscriptions.create(
        msgspec.convert({"name": "elsewhere", "urls": [SLACK], "events": ["*"]}, SubscriptionInput),
        now=datetime.now(UTC),
    )
    for _ in range(100):
        listed = (await client.get("/subscriptions")).json()
        if listed["total"]:
            break
        await asyncio.sleep(0.02)
    assert [s["id"] for s in listed["items"]] == [other.id]
    assert_no_secret(str(listed))
