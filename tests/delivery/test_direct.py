"""json:// and webhook:// over pooled connections: the same requests apprise's plugins send, on fewer connections."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import apprise
import pytest
from standardwebhooks.webhooks import Webhook

from notifier.senders.apprise_sender import AppriseSender, Outgoing
from notifier.senders.direct import HttpPool, direct_target
from notifier.senders.plugins import register_plugins
from tests.delivery.conftest import SECRET, Receiver

#: The headers apprise's plugins set themselves (the HTTP library adds its own, which differ and do not matter).
PLUGIN_HEADERS = ("user-agent", "content-type", "authorization", "x-token", "webhook-id", "webhook-signature")


def message(url: str, *, level: str = "failure", message_id: str = "dlv_1", data: bytes = b"{}") -> Outgoing:
    return Outgoing(
        url=url,
        title="Post failed on TikTok · @brand",
        body="Caption: “Spring launch” ✨\nError: Token expired",
        level=level,
        message_id=message_id,
        data=data,
    )


async def send_both(url_of: dict[str, str], **kwargs: Any) -> None:
    """Send one message to url_of["apprise"] through apprise's plugin and to url_of["direct"] on the pool."""
    for pooled, key in ((False, "apprise"), (True, "direct")):
        sender = AppriseSender(max_workers=2, pooled_http=pooled)
        result = await sender.send(message(url_of[key], **kwargs), time_limit=5)
        await sender.aclose()
        assert result.ok, result.error


@pytest.mark.parametrize(
    "query",
    [
        "",
        "+X-Token=abc123&-since=2025-01-01&-q=a%20b&:message=text&:type=&:extra=value&method=PUT",
        "method=PATCH&:title=subject",
    ],
    ids=["plain", "headers-params-payload-put", "patch-rename"],
)
@pytest.mark.parametrize("level", ["info", "failure"])
async def test_json_request_is_the_one_apprise_sends(receiver: Receiver, query: str, level: str) -> None:
    """Method, query, body bytes and the plugin's headers are identical to what apprise's json:// sends."""
    auth = "" if query else "ops:s3cret@"
    urls = {
        key: f"json://{auth}127.0.0.1:{receiver.port}/{key}" + (f"?{query}" if query else "")
        for key in ("apprise", "direct")
    }
    await send_both(urls, level=level)
    [via_apprise] = receiver.at("/apprise")
    [direct] = receiver.at("/direct")
    assert direct.method == via_apprise.method
    assert direct.query == via_apprise.query
    assert direct.body == via_apprise.body
    assert {h: direct.headers.get(h) for h in PLUGIN_HEADERS} == {h: via_apprise.headers.get(h) for h in PLUGIN_HEADERS}
    payload = direct.json()
    if query.startswith("+X-Token"):
        assert direct.method == "PUT" and direct.headers["x-token"] == "abc123"
        assert "type" not in payload and payload["text"].startswith("Caption") and payload["extra"] == "value"
    elif not query:
        assert direct.headers["authorization"].startswith("Basic ") and payload["type"] == level


async def test_webhook_request_is_the_one_the_plugin_sends(receiver: Receiver) -> None:
    """The signed webhook: same body, id and headers on both paths; both signatures verify."""
    data = json.dumps({"id": "evt_1", "type": "post.failed"}).encode()
    urls = {key: receiver.url("webhook", f"/{key}", f"secret={SECRET}") for key in ("apprise", "direct")}
    await send_both(urls, data=data, message_id="dlv_42")
    [via_apprise] = receiver.at("/apprise")
    [direct] = receiver.at("/direct")
    assert direct.body == via_apprise.body == data
    same = ("user-agent", "content-type", "webhook-id")
    assert {h: direct.headers[h] for h in same} == {h: via_apprise.headers[h] for h in same}
    assert direct.headers["webhook-id"] == "dlv_42"
    for hit in (via_apprise, direct):
        assert Webhook(SECRET).verify(hit.body, hit.headers) == {"id": "evt_1", "type": "post.failed"}


async def test_consecutive_sends_reuse_one_connection(receiver: Receiver) -> None:
    """Twenty notifications to one target travel on one connection; apprise's plugin opens twenty."""
    for pooled, path in ((True, "/pooled"), (False, "/plain")):
        sender = AppriseSender(max_workers=4, pooled_http=pooled)
        for i in range(20):
            result = await sender.send(message(receiver.url("json", path), message_id=f"m{i}"), time_limit=5)
            assert result.ok, result.error
        await sender.aclose()
    assert len({hit.peer for hit in receiver.at("/pooled")}) == 1
    assert len({hit.peer for hit in receiver.at("/plain")}) == 20


async def test_a_server_that_closes_every_connection_still_gets_everything(closing_receiver: Receiver) -> None:
    """An HTTP/1.0 target (no keep-alive): each send opens a fresh connection, none fails."""
    sender = AppriseSender(max_workers=4)
    results = await asyncio.gather(
        *(sender.send(message(closing_receiver.url("json", "/c"), message_id=f"m{i}"), time_limit=5) for i in range(12))
    )
    await sender.aclose()
    assert all(r.ok for r in results)
    assert len(closing_receiver.at("/c")) == 12 and len({hit.peer for hit in closing_receiver.at("/c")}) == 12


async def test_failures_say_why_without_the_secret(receiver: Receiver) -> None:
    """A 500 names the status; a refused connection says so; the password never appears."""
    receiver.fail("/f", 500)
    sender = AppriseSender(max_workers=2)
    refused = await sender.send(message("json://ops:hunter22@127.0.0.1:1/x"), time_limit=2)
    failed = await sender.send(message(f"json://ops:hunter22@127.0.0.1:{receiver.port}/f"), time_limit=2)
    await sender.aclose()
    assert not refused.ok and refused.error and "Connection" in refused.error
    assert not failed.ok and failed.error and "HTTP 500" in failed.error
    assert "hunter22" not in refused.error + failed.error


async def test_a_stalled_target_fails_within_its_time_limit(receiver: Receiver) -> None:
    """A target that accepts and never answers in time is a failure after about the time limit."""
    receiver.delays["/stall"] = 3.0
    sender = AppriseSender(max_workers=2)
    started = asyncio.get_running_loop().time()
    result = await sender.send(message(receiver.url("json", "/stall")), time_limit=0.5)
    elapsed = asyncio.get_running_loop().time() - started
    await sender.aclose()
    assert not result.ok and result.error and "No answer" in result.error
    assert elapsed < 2.0


async def test_least_recently_used_idle_clients_are_closed(receiver: Receiver) -> None:
    """With room for two clients, sends to six targets all arrive and at most two clients stay open."""
    register_plugins()
    pool = HttpPool(max_connections=4, max_clients=2)
    for i in range(6):
        target = direct_target(apprise.Apprise.instantiate(receiver.url("json", f"/t{i}")))
        assert target is not None
        request = target.request(title="t", body="b", level="info", message_id=f"m{i}", data=b"{}")
        assert await pool.send(target, request, time_limit=5) is None
        assert len(pool._clients) <= 2
    await pool.aclose()
    assert [hit.path for hit in receiver.requests] == [f"/t{i}" for i in range(6)]


def test_only_json_and_webhook_plugins_take_the_direct_path() -> None:
    """Other schemes, a user without a password and a non-ASCII header (as apprise sends them) stay with apprise."""
    register_plugins()
    assert direct_target(apprise.Apprise.instantiate("json://ops:pw@example.com/x")) is not None
    assert direct_target(apprise.Apprise.instantiate(f"webhooks://example.com/x?secret={SECRET}")) is not None
    assert direct_target(apprise.Apprise.instantiate("json://ops@example.com/x")) is None
    assert direct_target(apprise.Apprise.instantiate("json://example.com/x?+X-Name=Jos%C3%A9")) is None
    assert direct_target(apprise.Apprise.instantiate("xml://example.com/x")) is None
    assert direct_target(apprise.Apprise.instantiate("mailto://u:p@example.com")) is None


async def test_a_non_ascii_header_still_arrives(receiver: Receiver) -> None:
    """A json:// header outside ASCII goes through apprise's plugin, which sends it in Latin-1."""
    sender = AppriseSender(max_workers=1)
    result = await sender.send(message(receiver.url("json", "/latin", "+X-Name=Jos%C3%A9")), time_limit=5)
    await sender.aclose()
    assert result.ok, result.error
    [hit] = receiver.at("/latin")
    assert hit.headers["x-name"] == "José"
