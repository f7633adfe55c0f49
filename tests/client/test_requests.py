"""Requests are built as documented: paths, quoted ids, query parameters, timeouts, client ownership."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from notifier.config import Settings
from notifier.genviral import PartnerClient

from .conftest import ScriptedApi, example


def query(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


async def test_list_posts_sends_only_limit_by_default(api: ScriptedApi, client: PartnerClient) -> None:
    """Without filters the list request is GET /posts?limit=100."""
    api.reply(httpx.Response(200, json=example("list_posts")))
    await client.list_posts()
    (request,) = api.requests
    assert request.method == "GET"
    assert request.url.path == "/api/partner/v1/posts"
    assert query(request) == {"limit": "100"}


async def test_list_posts_sends_given_filters(api: ScriptedApi, client: PartnerClient) -> None:
    """status, since and until are sent as given, alongside limit."""
    api.reply(httpx.Response(200, json=example("list_posts")))
    await client.list_posts(
        status="scheduled", limit=20, since="2025-01-01T00:00:00Z", until="2025-02-01T00:00:00.000Z"
    )
    assert query(api.requests[0]) == {
        "status": "scheduled",
        "limit": "20",
        "since": "2025-01-01T00:00:00Z",
        "until": "2025-02-01T00:00:00.000Z",
    }


@pytest.mark.parametrize(("given", "sent"), [(0, "1"), (-5, "1"), (1, "1"), (100, "100"), (500, "100")])
async def test_limit_clamped_to_documented_range(
    api: ScriptedApi, client: PartnerClient, given: int, sent: str
) -> None:
    """limit is clamped to 1..100 as the API does, so a short page means the last one."""
    api.reply(httpx.Response(200, json=example("list_posts")))
    await client.list_posts(limit=given)
    assert query(api.requests[0])["limit"] == sent


async def test_since_with_offset_is_encoded(api: ScriptedApi, client: PartnerClient) -> None:
    """A timestamp with a + offset arrives intact (percent-encoded, not a space)."""
    api.reply(httpx.Response(200, json=example("list_posts")))
    await client.list_posts(since="2025-01-01T00:00:00+02:00")
    assert query(api.requests[0])["since"] == "2025-01-01T00:00:00+02:00"


async def test_list_packs_sends_include_public_literally(api: ScriptedApi, client: PartnerClient) -> None:
    """include_public is always sent as the literal false or true, with limit and offset."""
    api.reply(httpx.Response(200, json=example("list_packs")))
    await client.list_packs()
    await client.list_packs(search="motivation", limit=20, offset=40, include_public=True)
    assert api.requests[0].url.path == "/api/partner/v1/packs"
    assert query(api.requests[0]) == {"limit": "100", "offset": "0", "include_public": "false"}
    assert query(api.requests[1]) == {"limit": "20", "offset": "40", "include_public": "true", "search": "motivation"}


@pytest.mark.parametrize(
    ("call", "raw_path"),
    [
        ("get_post", b"/api/partner/v1/posts/11111111-1111-1111-1111-111111111111"),
        ("get_pack", b"/api/partner/v1/packs/11111111-1111-1111-1111-111111111111"),
    ],
)
async def test_get_paths(api: ScriptedApi, client: PartnerClient, call: str, raw_path: bytes) -> None:
    """get_post and get_pack put the id in the path, with no query string."""
    api.reply(httpx.Response(200, json=example(call)))
    await getattr(client, call)("11111111-1111-1111-1111-111111111111")
    assert api.requests[0].url.raw_path == raw_path


async def test_path_ids_are_url_quoted(api: ScriptedApi, client: PartnerClient) -> None:
    """An id with slashes, spaces or ? cannot escape its path segment."""
    api.reply(httpx.Response(200, json=example("get_pack")))
    await client.get_pack("../accounts?x=1 y")
    assert api.requests[0].url.raw_path == b"/api/partner/v1/packs/..%2Faccounts%3Fx%3D1%20y"


async def test_accounts_path_and_trailing_slash_base(
    api: ScriptedApi, make_client: Callable[..., PartnerClient]
) -> None:
    """A base URL with a trailing slash still yields a single slash before the endpoint."""
    api.reply(httpx.Response(200, json=example("list_accounts")))
    client = make_client(base_url="https://partner.test/api/partner/v1/")
    await client.list_accounts()
    assert str(api.requests[0].url) == "https://partner.test/api/partner/v1/accounts"


async def test_timeout_applied_per_request(api: ScriptedApi, make_client: Callable[..., PartnerClient]) -> None:
    """A client given a timeout sends it on every request."""
    api.reply(httpx.Response(200, json=example("list_accounts")))
    client = make_client(timeout=2.5)
    await client.list_accounts()
    assert api.requests[0].extensions["timeout"] == httpx.Timeout(2.5).as_dict()


async def test_from_settings_owns_and_closes_its_http_client() -> None:
    """from_settings builds its own httpx client with the request timeout; aclose closes it."""
    settings = Settings(genviral_api_key="k-123", genviral_base_url="http://127.0.0.1:9/api/", request_timeout=2.5)
    client = PartnerClient.from_settings(settings)
    assert client.base_url == "http://127.0.0.1:9/api"
    assert client._http.timeout == httpx.Timeout(2.5)
    await client.aclose()
    assert client._http.is_closed
    with pytest.raises(RuntimeError):
        await client.list_accounts()


async def test_aclose_leaves_an_injected_client_open(client: PartnerClient, api: ScriptedApi) -> None:
    """A client passed in belongs to the caller: aclose does not close it."""
    api.reply(httpx.Response(200, json=example("list_accounts")))
    await client.aclose()
    page = await client.list_accounts()
    assert page.scope == "workspace"
