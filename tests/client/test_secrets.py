"""The API key goes only into the Authorization header: never a repr, an exception text or a log record."""

from __future__ import annotations

import hashlib
import logging

import httpx
import pytest

from notifier.errors import PartnerApiError
from notifier.genviral import PartnerClient, api_key_id

from .conftest import API_KEY, ScriptedApi, fail


async def test_key_sent_as_bearer_token(api: ScriptedApi, client: PartnerClient) -> None:
    """Every request carries the key in the Authorization header, and asks for JSON."""
    api.reply(
        httpx.Response(200, json={"ok": True, "data": {"scope": "personal", "owner_user_id": "u", "accounts": []}})
    )
    await client.list_accounts()
    (request,) = api.requests
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["accept"] == "application/json"
    assert API_KEY not in str(request.url)


def test_key_id_is_a_short_sha256_prefix(client: PartnerClient) -> None:
    """api_key_id is the first 16 hex chars of the key's SHA-256, and the client exposes it."""
    assert api_key_id(API_KEY) == hashlib.sha256(API_KEY.encode()).hexdigest()[:16]
    assert client.key_id == api_key_id(API_KEY)
    assert len(client.key_id) == 16 and API_KEY not in client.key_id
    assert api_key_id("a") != api_key_id("b")


def test_repr_shows_key_id_not_key(client: PartnerClient) -> None:
    """repr(client) names the base URL and the key id, never the key."""
    text = repr(client)
    assert API_KEY not in text
    assert client.key_id in text and "partner.test" in text


@pytest.mark.parametrize(
    "reply",
    [
        fail(401, message=f"token {API_KEY} revoked"),
        fail(500, "list_failed", message=f"db error for Bearer {API_KEY}"),
        fail(429, **{"Retry-After": "600"}),
        httpx.Response(200, text=f"<p>{API_KEY}</p>"),
        httpx.ConnectError(f"refused while sending {API_KEY}"),
        httpx.ReadTimeout("timed out"),
    ],
    ids=["401-echo", "500-echo", "429", "bad-response-echo", "connect-echo", "timeout"],
)
async def test_key_absent_from_errors_and_logs(
    api: ScriptedApi, client: PartnerClient, caplog: pytest.LogCaptureFixture, reply: httpx.Response | Exception
) -> None:
    """Even when the server echoes the key, the exception text and every log record leave it out."""
    caplog.set_level(logging.DEBUG, logger="notifier.genviral")
    api.reply(reply)
    with pytest.raises(PartnerApiError) as info:
        await client.list_posts()
    assert API_KEY not in str(info.value)
    assert API_KEY not in repr(info.value)
    assert API_KEY not in info.value.message
    records = [r for r in caplog.records if r.name == "notifier.genviral"]
    assert records  # the failed attempts were logged
    assert all(API_KEY not in r.getMessage() for r in records)
    assert API_KEY not in caplog.text
