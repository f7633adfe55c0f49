"""The webhook:// apprise plugin: Standard Webhooks headers and signature, checked by an independent library."""

from __future__ import annotations

import json

import apprise
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notifier.senders.apprise_sender import AppriseSender, Outgoing
from notifier.senders.plugins import register_plugins
from notifier.senders.urls import mask_url
from tests.delivery.conftest import SECRET, Receiver


async def test_signed_body_verifies_with_standardwebhooks(receiver: Receiver) -> None:
    """The body is exactly the payload; webhook-id is the message id; the signature verifies."""
    sender = AppriseSender(max_workers=2)
    body = json.dumps({"type": "summary", "count": 2, "events": [{"id": "a"}, {"id": "b"}]}).encode()
    url = receiver.url("webhook", "/sig", f"secret={SECRET}")
    result = await sender.send(
        Outgoing(url=url, title="t", body="b", level="info", message_id="dlv_abc", data=body), time_limit=5
    )
    await sender.aclose()
    assert result.ok
    [hit] = receiver.at("/sig")
    assert hit.body == body and hit.headers["webhook-id"] == "dlv_abc"
    assert hit.headers["content-type"] == "application/json"
    assert Webhook(SECRET).verify(hit.body, hit.headers)["count"] == 2
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=").verify(hit.body, hit.headers)


def test_plain_apprise_use_posts_title_and_body(receiver: Receiver) -> None:
    """Used through apprise directly, the plugin posts title and body as JSON, still signed."""
    register_plugins()
    apobj = apprise.Apprise()
    assert apobj.add(receiver.url("webhook", "/plain", f"secret={SECRET}"))
    assert apobj.notify(title="Hello", body="World")
    [hit] = receiver.at("/plain")
    payload = Webhook(SECRET).verify(hit.body, hit.headers)
    assert payload == {"type": "notification", "title": "Hello", "body": "World", "notify_type": "info"}
    assert hit.headers["webhook-id"].startswith("msg_")


async def test_without_secret_is_unsigned(receiver: Receiver) -> None:
    """Without ?secret= the request carries webhook-id and timestamp but no signature."""
    sender = AppriseSender(max_workers=1)
    result = await sender.send(
        Outgoing(url=receiver.url("webhook", "/u"), title="t", body="b", level="info", message_id="m1", data=b"{}"),
        time_limit=5,
    )
    await sender.aclose()
    [hit] = receiver.at("/u")
    assert result.ok and hit.headers["webhook-id"] == "m1" and "webhook-signature" not in hit.headers


def test_secret_is_masked_and_https_scheme_kept() -> None:
    """The privacy URL hides the secret; webhooks:// keeps its scheme."""
    masked = mask_url(f"webhooks://hooks.example.com:8443/in?secret={SECRET}")
    assert masked.startswith("webhooks://hooks.example.com:8443/in") and SECRET not in masked
    assert SECRET.removeprefix("whsec_") not in masked
