"""Error responses map to the exception tree with the documented codes; 4xx are never retried."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from notifier.errors import (
    InvalidRequest,
    NotFound,
    PartnerApiError,
    RateLimited,
    ServerError,
    SubscriptionRequired,
    TierNotAllowed,
    Unauthorized,
)
from notifier.genviral import PartnerClient, RetryPolicy

from .conftest import ScriptedApi, fail

Call = Callable[[PartnerClient], Awaitable[Any]]

CALLS: dict[str, Call] = {
    "list_posts": lambda c: c.list_posts(),
    "get_post": lambda c: c.get_post("11111111-1111-1111-1111-111111111111"),
    "list_accounts": lambda c: c.list_accounts(),
    "list_packs": lambda c: c.list_packs(),
    "get_pack": lambda c: c.get_pack("11111111-1111-1111-1111-111111111111"),
}

# Every error each page documents: (endpoint, status, error code in the body, exception, code it carries).
DOCUMENTED = [
    ("list_posts", 400, "invalid_since", InvalidRequest, "invalid_since"),
    ("list_posts", 400, "invalid_until", InvalidRequest, "invalid_until"),
    ("list_posts", 500, "list_failed", ServerError, "list_failed"),
    ("get_post", 404, "not_found", NotFound, "not_found"),
    ("get_post", 500, "get_failed", ServerError, "get_failed"),
    ("list_accounts", 500, "accounts_failed", ServerError, "accounts_failed"),
    ("list_packs", 422, "invalid_query", InvalidRequest, "invalid_query"),
    ("list_packs", 500, "packs_list_failed", ServerError, "packs_list_failed"),
    ("get_pack", 400, "missing_pack_id", InvalidRequest, "missing_pack_id"),
    ("get_pack", 404, "not_found", NotFound, "not_found"),
    ("get_pack", 500, "pack_get_failed", ServerError, "pack_get_failed"),
] + [
    (endpoint, status, code, exc, expected)
    for endpoint in CALLS
    for status, code, exc, expected in [
        (401, None, Unauthorized, "unauthorized"),
        (402, "subscription_required", SubscriptionRequired, "subscription_required"),
        (403, "tier_not_allowed", TierNotAllowed, "tier_not_allowed"),
    ]
]


@pytest.fixture
def no_retry(make_client: Callable[..., PartnerClient]) -> PartnerClient:
    return make_client(retry=RetryPolicy(attempts=1))


@pytest.mark.parametrize(("endpoint", "status", "body_code", "exc_type", "code"), DOCUMENTED)
async def test_documented_error_maps_to_exception_and_code(
    api: ScriptedApi,
    no_retry: PartnerClient,
    endpoint: str,
    status: int,
    body_code: str | None,
    exc_type: type[PartnerApiError],
    code: str,
) -> None:
    """Each documented error becomes its exception with status, code and endpoint."""
    api.reply(fail(status, body_code, message="it went wrong"))
    with pytest.raises(exc_type) as info:
        await CALLS[endpoint](no_retry)
    assert type(info.value) is exc_type
    assert (info.value.status, info.value.code, info.value.endpoint) == (status, code, endpoint)
    assert info.value.message == "it went wrong"
    assert info.value.retry_after is None


@pytest.mark.parametrize(
    "body",
    [
        {"ok": False, "code": 400, "message": "bad", "error": "invalid_until"},
        {"ok": False, "code": "invalid_until", "message": "bad"},
        {"ok": False, "code": 400, "message": "bad", "error_code": "invalid_until", "error": "ignored"},
    ],
    ids=["under-error", "code-string", "error_code-wins"],
)
async def test_error_code_read_from_alternative_fields(
    api: ScriptedApi, no_retry: PartnerClient, body: dict[str, Any]
) -> None:
    """The error code is taken from error_code, else error, else a string code."""
    api.reply(httpx.Response(400, json=body))
    with pytest.raises(InvalidRequest) as info:
        await no_retry.list_posts(until="yesterday")
    assert info.value.code == "invalid_until"


@pytest.mark.parametrize(
    ("response", "exc_type", "code"),
    [
        (httpx.Response(401, text="Unauthorized"), Unauthorized, "unauthorized"),
        (httpx.Response(403, json={"ok": False, "code": 403}), TierNotAllowed, "tier_not_allowed"),
        (httpx.Response(404, json=["not", "an", "object"]), NotFound, "not_found"),
        (httpx.Response(422, json={}), InvalidRequest, "invalid_request"),
        (httpx.Response(429), RateLimited, "rate_limited"),
        (httpx.Response(502, text="<html>Bad gateway</html>"), ServerError, "server_error"),
        (httpx.Response(409, json={"ok": False, "message": "conflict"}), PartnerApiError, "http_409"),
    ],
    ids=["401-text", "403-no-code", "404-list", "422-empty", "429-empty", "502-html", "409"],
)
async def test_error_without_code_falls_back_on_http_status(
    api: ScriptedApi, no_retry: PartnerClient, response: httpx.Response, exc_type: type[PartnerApiError], code: str
) -> None:
    """Without a code in the body, the HTTP status decides the exception and its code."""
    api.reply(response)
    with pytest.raises(exc_type) as info:
        await no_retry.list_accounts()
    assert type(info.value) is exc_type
    assert (info.value.status, info.value.code) == (response.status_code, code)
    assert info.value.message  # never empty, even for an empty body


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 422])
async def test_client_errors_are_not_retried(
    api: ScriptedApi, client: PartnerClient, sleeps: list[float], status: int
) -> None:
    """A 4xx other than 429 is raised after one request, without sleeping."""
    api.reply(fail(status, "whatever"))
    with pytest.raises(PartnerApiError) as info:
        await client.list_posts()
    assert info.value.status == status
    assert info.value.retryable is False
    assert len(api.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize(("call", "code"), [("get_post", "missing_post_id"), ("get_pack", "missing_pack_id")])
async def test_empty_id_is_refused_without_a_request(
    api: ScriptedApi, client: PartnerClient, call: str, code: str
) -> None:
    """An empty id raises InvalidRequest locally instead of hitting the list endpoint."""
    with pytest.raises(InvalidRequest) as info:
        await getattr(client, call)("")
    assert info.value.code == code
    assert api.requests == []
