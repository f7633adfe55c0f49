"""Successful responses decode into the wire structs; bodies that do not fit become ``bad_response``."""

from __future__ import annotations

import httpx
import pytest

from notifier.errors import NotFound, ServerError
from notifier.genviral import PartnerClient
from notifier.models import AccountsPage, PackDetail, PacksPage, Post, PostsPage

from .conftest import ScriptedApi, example, ok


async def test_list_posts_decodes_documented_example(api: ScriptedApi, client: PartnerClient) -> None:
    """The list-posts example decodes with its summary, posts and per-account states."""
    api.reply(httpx.Response(200, json=example("list_posts")))
    page = await client.list_posts(status="scheduled", limit=20)
    assert isinstance(page, PostsPage)
    assert page.summary.total == 193
    assert page.summary.by_status == {"draft": 15, "pending": 12, "scheduled": 46, "posted": 118, "failed": 4}
    (post,) = page.posts
    assert post.id == "11111111-1111-1111-1111-111111111111"
    assert post.status == "deleted"
    assert post.media is not None and post.media.type == "video"
    assert post.pinterest == {"board_id": "123456789012345678", "title": "Dinner board", "tags": ["Italian recipes"]}
    assert [(s.account_id, s.status) for s in post.accounts.states] == [
        ("0f4f54d4-8cce-4fb7-8c7b-befbcb8af812", "deleted"),
        ("6b0c8c9c-55ac-4fcb-85ec-70b5a8b0d089", "scheduled"),
    ]


async def test_get_post_decodes_documented_example(api: ScriptedApi, client: PartnerClient) -> None:
    """The get-post example decodes into a Post with two scheduled deliveries."""
    api.reply(httpx.Response(200, json=example("get_post")))
    post = await client.get_post("11111111-1111-1111-1111-111111111111")
    assert isinstance(post, Post)
    assert post.caption == "Holiday drops start Monday!"
    assert post.scheduled_at == "2025-02-01T15:00:00Z"
    assert post.created_at == "2025-01-20T12:05:11.205Z"
    assert post.tiktok is None and post.music_url is None
    assert post.accounts.total == 2
    assert {s.status for s in post.accounts.states} == {"scheduled"}


async def test_list_accounts_decodes_documented_example(api: ScriptedApi, client: PartnerClient) -> None:
    """The list-accounts example decodes with its scope and both accounts."""
    api.reply(httpx.Response(200, json=example("list_accounts")))
    page = await client.list_accounts()
    assert isinstance(page, AccountsPage)
    assert page.scope == "workspace"
    assert page.scope_id == "4cb5d3fd-8c8f-4ed7-a17c-4ffb52c7e6ac"
    assert [(a.platform, a.type, a.username) for a in page.accounts] == [
        ("instagram", "byo", "brandhq"),
        ("tiktok", "hosted", "ugc_trends_42"),
    ]


async def test_list_packs_decodes_documented_example(api: ScriptedApi, client: PartnerClient) -> None:
    """The list-packs example decodes with its paging fields."""
    api.reply(httpx.Response(200, json=example("list_packs")))
    page = await client.list_packs(search="motivation", limit=20)
    assert isinstance(page, PacksPage)
    assert (page.total, page.limit, page.offset) == (1, 20, 0)
    (pack,) = page.packs
    assert (pack.name, pack.image_count, pack.is_public) == ("Motivation Pack", 24, False)
    assert pack.preview_image_url == "https://cdn.example.com/packs/motivation/cover.jpg"


async def test_get_pack_decodes_documented_example(api: ScriptedApi, client: PartnerClient) -> None:
    """The get-pack example decodes with its ordered images."""
    api.reply(httpx.Response(200, json=example("get_pack")))
    pack = await client.get_pack("11111111-1111-1111-1111-111111111111")
    assert isinstance(pack, PackDetail)
    assert pack.image_count == 2
    assert [i.id for i in pack.images] == [
        "22222222-2222-2222-2222-222222222222",
        "33333333-3333-3333-3333-333333333333",
    ]


async def test_unknown_extra_fields_are_tolerated(api: ScriptedApi, client: PartnerClient) -> None:
    """New fields anywhere in the envelope or the data do not break decoding."""
    body = example("get_post")
    body["request_id"] = "r-1"
    body["data"]["brand_new_field"] = {"nested": [1, 2]}
    body["data"]["accounts"]["states"][0]["retry_count"] = 3
    body["data"]["media"]["thumbnail"] = "https://cdn.example.com/t.jpg"
    api.reply(httpx.Response(200, json=body))
    post = await client.get_post("11111111-1111-1111-1111-111111111111")
    assert post.accounts.states[0].account_id == "0f4f54d4-8cce-4fb7-8c7b-befbcb8af812"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>maintenance</html>"),
        httpx.Response(200, json={"ok": True, "code": 200, "message": "no data"}),
        ok({"summary": {}, "posts": [{"id": "p1"}]}),  # a post without its required status
        ok([1, 2, 3]),
    ],
    ids=["html", "no-data", "missing-field", "wrong-type"],
)
async def test_undecodable_success_is_bad_response_without_retry(
    api: ScriptedApi, client: PartnerClient, sleeps: list[float], response: httpx.Response
) -> None:
    """A 2xx body that does not decode raises ServerError code bad_response, and is not retried."""
    api.reply(response)
    with pytest.raises(ServerError) as info:
        await client.list_posts()
    assert info.value.code == "bad_response"
    assert info.value.status == 200
    assert info.value.endpoint == "list_posts"
    assert info.value.retryable is False
    assert len(api.requests) == 1 and sleeps == []


async def test_ok_false_envelope_with_200_is_an_error(api: ScriptedApi, client: PartnerClient) -> None:
    """A 200 whose envelope says ok: false maps by the envelope's code, not as a success."""
    api.reply(httpx.Response(200, json={"ok": False, "code": 404, "message": "gone", "error_code": "not_found"}))
    with pytest.raises(NotFound) as info:
        await client.get_post("p1")
    assert (info.value.status, info.value.code) == (404, "not_found")
