"""Subscription store and rules, against a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
import redis.asyncio as aioredis

from notifier.errors import InvalidSubscription, ReadOnly, RecordNotFound
from notifier.models import Subscription, SubscriptionFilters, SubscriptionInput, SubscriptionPatch, Templates
from notifier.senders.urls import mask_url
from notifier.store.keys import Keys
from notifier.store.subscriptions import SubscriptionStore, validate_subscription

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2025, 3, 1, 13, 0, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def make_input(**overrides: object) -> SubscriptionInput:
    data: dict[str, object] = {
        "name": "TikTok failures",
        "urls": ["json://127.0.0.1:9/hook"],
        "events": ["post.failed"],
    }
    data.update(overrides)
    return msgspec.convert(data, SubscriptionInput)


def fields(errors: list[tuple[str, str]]) -> list[str]:
    return [f for f, _ in errors]


async def test_create_get_list_count(redis: aioredis.Redis, keys: Keys) -> None:
    """A created subscription gets an id, source api and timestamps, and is found by get, list and count."""
    store = SubscriptionStore(redis, keys)
    a = await store.create(make_input(name="a"), now=NOW)
    b = await store.create(make_input(name="b"), now=LATER)
    assert a.source == "api" and a.created_at == a.updated_at == "2025-03-01T12:00:00.000Z"
    assert await store.get(a.id) == a
    assert await store.get("missing") is None
    page, total = await store.list(limit=1, offset=1)
    assert total == 2 and page == [b]
    assert await store.count() == 2


async def test_update_is_partial_and_validated(redis: aioredis.Redis, keys: Keys) -> None:
    """PATCH changes only the given fields, bumps updated_at, and refuses an invalid result."""
    store = SubscriptionStore(redis, keys)
    sub = await store.create(make_input(), now=NOW)
    updated = await store.update(sub.id, SubscriptionPatch(enabled=False, events=["*"]), now=LATER)
    assert updated.enabled is False and updated.events == ["*"] and updated.name == sub.name
    assert updated.created_at == sub.created_at and updated.updated_at == "2025-03-01T13:00:00.000Z"
    assert await store.get(sub.id) == updated
    with pytest.raises(InvalidSubscription) as info:
        await store.update(sub.id, SubscriptionPatch(events=[]), now=LATER)
    assert fields(info.value.errors) == ["events"]
    with pytest.raises(RecordNotFound):
        await store.update("nope", SubscriptionPatch(enabled=True), now=LATER)


async def test_delete(redis: aioredis.Redis, keys: Keys) -> None:
    """Delete removes an API subscription and says False for an unknown id."""
    store = SubscriptionStore(redis, keys)
    sub = await store.create(make_input(), now=NOW)
    assert await store.delete(sub.id) is True
    assert await store.get(sub.id) is None
    assert await store.delete(sub.id) is False


async def test_config_subscriptions_are_read_only(redis: aioredis.Redis, keys: Keys) -> None:
    """Subscriptions managed as code are listed but cannot be updated or deleted through the store."""
    store = SubscriptionStore(redis, keys)
    api = await store.create(make_input(name="api"), now=NOW)
    conf = Subscription(id="cfg-1", name="from file", urls=["json://127.0.0.1:9/x"], events=["*"], source="config")
    assert await store.replace_config([conf]) == []
    assert {s.id for s in await store.list_all()} == {api.id, "cfg-1"}
    with pytest.raises(ReadOnly):
        await store.update("cfg-1", SubscriptionPatch(enabled=False), now=LATER)
    with pytest.raises(ReadOnly):
        await store.delete("cfg-1")


async def test_replace_config_adds_changes_removes_and_keeps_api(redis: aioredis.Redis, keys: Keys) -> None:
    """replace_config makes the config set exact, keeps created_at, never touches or overwrites API ones."""
    store = SubscriptionStore(redis, keys)
    api = await store.create(make_input(name="api"), now=NOW)
    stamp = "2025-03-01T12:00:00.000Z"
    one = Subscription(id="c1", name="one", urls=["json://h/1"], events=["*"], created_at=stamp, updated_at=stamp)
    two = Subscription(id="c2", name="two", urls=["json://h/2"], events=["*"], created_at=stamp, updated_at=stamp)
    await store.replace_config([one, two])
    later = "2025-03-02T00:00:00.000Z"
    one_changed = msgspec.structs.replace(one, name="one!", created_at=later, updated_at=later)
    two_same = msgspec.structs.replace(two, created_at=later, updated_at=later)
    clash = Subscription(id=api.id, name="clash", urls=["json://h/3"], events=["*"])
    refused = await store.replace_config([one_changed, two_same, clash])
    assert refused == [api.id]
    got = {s.id: s for s in await store.list_all()}
    assert got["c1"].name == "one!" and got["c1"].created_at == stamp and got["c1"].updated_at == later
    assert got["c2"].updated_at == stamp and got["c2"].source == "config"
    assert got[api.id] == api
    await store.replace_config([])
    assert [s.id for s in await store.list_all()] == [api.id]


def test_validation_names_each_bad_field() -> None:
    """Validation reports empty/unparsable URLs masked, unknown events and platforms, long names."""
    bad = make_input(
        name="x" * 201,
        urls=["", "slak://T000/B000/SECRETTOKEN123", f"webhook://h/x?secret={SECRET}", "webhook://h?secret=nope!"],
        events=["post.failed", "post.exploded"],
        filters=SubscriptionFilters(platforms=["myspace"]),
    )
    errors = dict(validate_subscription(bad))
    assert set(errors) == {"name", "urls[0]", "urls[1]", "urls[3]", "events[1]", "filters.platforms[0]"}
    assert "SECRETTOKEN123" not in errors["urls[1]"] and "slak://" in errors["urls[1]"]
    assert "post.status_changed" in errors["events[1]"] and '"*"' in errors["events[1]"]
    assert "tiktok" in errors["filters.platforms[0]"]
    assert "whsec_" in errors["urls[3]"]
    assert fields(validate_subscription(make_input(events=[]))) == ["events"]
    assert validate_subscription(make_input(events=["*"], urls=["console://"])) == []


def test_validation_rejects_bad_templates() -> None:
    """Templates with syntax errors, unknown variables or sandbox escapes are refused; good ones pass."""
    ok = make_input(templates=Templates(title="{{ type }} on {{ platforms | join(', ') }}", body="{{ body }}"))
    assert validate_subscription(ok) == []
    cases = {
        "{{ type ": "syntax error",
        "{{ evnt.id }}": "unknown variable",
        "{{ event.__class__.__mro__ }}": "not allowed",
        "{{ ''.__class__ }}": "not allowed",
    }
    for source, expected in cases.items():
        errors = dict(validate_subscription(make_input(templates=Templates(title=source))))
        assert expected in errors["templates.title"], source


def test_mask_url_hides_secrets() -> None:
    """Masked URLs keep scheme and host but never the secret, also for webhook:// and unparsable URLs."""
    masked = mask_url(f"webhook://127.0.0.1:8000/hook?secret={SECRET}")
    assert masked.startswith("webhook://127.0.0.1:8000/hook") and SECRET not in masked and "****" in masked
    assert "pass" not in mask_url("json://user:pass@127.0.0.1:9/x")
    assert mask_url("nonsense://TOKEN-SECRET-123") == "nonsense://****"
