"""Subscriptions in Redis, and the rules a subscription must satisfy.

Storage: the hash ``{p}subscriptions`` maps a subscription id to ``{"v": 1, "sub": {...}}`` (JSON). Every
write is a compare-and-set on the stored value (a short Lua script), so a concurrent delete is never undone
by an update. Subscriptions managed as code (``source: config``) live in the same hash, written only by
``replace_config``; ``update`` and ``delete`` refuse them with ``ReadOnly``.

``validate_subscription`` is the check the API runs for its 422s and the subscriptions file loader runs
before it applies a file: it returns ``(field, message)`` pairs, URLs in messages masked.

Must not import: httpx, litestar, prometheus_client, the poller or the dispatcher. It uses the senders'
URL rules (``notifier.senders.urls``) because a URL is valid exactly when the sender can use it.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from datetime import datetime

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from notifier.errors import InvalidSubscription, ReadOnly, RecordNotFound, StoreError
from notifier.models import (
    EVENT_TYPES,
    Platform,
    Subscription,
    SubscriptionInput,
    SubscriptionPatch,
    SubscriptionSource,
    format_ts,
)
from notifier.render import template_problem
from notifier.senders.urls import url_problem
from notifier.store.connect import text
from notifier.store.keys import Keys

log = logging.getLogger("notifier.subscriptions")

NAME_MAX = 200
URLS_MAX = 20
STORM_THRESHOLD_MAX = 100_000
PLATFORMS: tuple[str, ...] = tuple(p.value for p in Platform)
_FORMAT_VERSION = 1


class _Stored(msgspec.Struct, frozen=True):
    v: int
    sub: Subscription


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Stored)

# Compare-and-set of one hash field: ARGV = id, expected value ('' = absent), new value ('' = delete).
_CAS = """
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
"""


def validate_subscription(sub: SubscriptionInput | Subscription) -> list[tuple[str, str]]:
    """Every problem of ``sub`` as ``(field, message)``; empty when it may be stored."""
    errors: list[tuple[str, str]] = []
    name = sub.name.strip() if isinstance(sub.name, str) else ""
    if not name:
        errors.append(("name", "must not be empty"))
    elif len(sub.name) > NAME_MAX:
        errors.append(("name", f"must be at most {NAME_MAX} characters, got {len(sub.name)}"))
    if not sub.urls:
        errors.append(("urls", "must hold at least one apprise URL"))
    elif len(sub.urls) > URLS_MAX:
        errors.append(("urls", f"must hold at most {URLS_MAX} URLs, got {len(sub.urls)}"))
    for i, url in enumerate(sub.urls[:URLS_MAX]):
        problem = url_problem(url)
        if problem is not None:
            errors.append((f"urls[{i}]", problem))
    if not sub.events:
        errors.append(("events", f'must hold at least one event type (or "*"); valid: {", ".join(EVENT_TYPES)}'))
    for i, event_type in enumerate(sub.events):
        if event_type != "*" and event_type not in EVENT_TYPES:
            errors.append((f"events[{i}]", f'unknown event type {event_type!r}; valid: "*", {", ".join(EVENT_TYPES)}'))
    for i, platform in enumerate(sub.filters.platforms):
        if platform not in PLATFORMS:
            errors.append((f"filters.platforms[{i}]", f"unknown platform {platform!r}; valid: {', '.join(PLATFORMS)}"))
    for i, account_id in enumerate(sub.filters.account_ids):
        if not account_id.strip():
            errors.append((f"filters.account_ids[{i}]", "must not be empty"))
    if sub.templates is not None:
        for field in ("title", "body"):
            source = getattr(sub.templates, field)
            if source is not None and (problem := template_problem(source)) is not None:
                errors.append((f"templates.{field}", problem))
    if not 1 <= sub.storm_threshold <= STORM_THRESHOLD_MAX:
        errors.append(("storm_threshold", f"must be between 1 and {STORM_THRESHOLD_MAX}, got {sub.storm_threshold}"))
    return errors


def _check(sub: SubscriptionInput | Subscription) -> None:
    errors = validate_subscription(sub)
    if errors:
        raise InvalidSubscription(errors)


def encode_subscription(sub: Subscription) -> bytes:
    return _encoder.encode(_Stored(v=_FORMAT_VERSION, sub=sub))


def decode_subscription(raw: bytes | str) -> Subscription:
    stored = _decoder.decode(raw)
    if stored.v != _FORMAT_VERSION:
        raise StoreError(f"subscription stored in format v{stored.v}, this version reads v{_FORMAT_VERSION}")
    return stored.sub


def _sort_key(sub: Subscription) -> tuple[str, str]:
    return (sub.created_at, sub.id)


class SubscriptionStore:
    """Subscriptions of all sources, in one Redis hash."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._key = keys.subscriptions
        self._cas = redis.register_script(_CAS)

    async def create(self, data: SubscriptionInput, *, now: datetime) -> Subscription:
        """Store a new API subscription (``InvalidSubscription`` if it breaks a rule)."""
        _check(data)
        sub = data.subscription(id=str(uuid.uuid4()), source=SubscriptionSource.API.value, stamp=format_ts(now))
        if not await self._cas(keys=[self._key], args=[sub.id, "", encode_subscription(sub)]):
            raise StoreError(f"subscription id {sub.id} already exists")
        return sub

    async def get(self, sub_id: str) -> Subscription | None:
        raw = await self._redis.hget(self._key, sub_id)
        return decode_subscription(raw) if raw is not None else None

    async def list(self, *, limit: int, offset: int) -> tuple[builtins.list[Subscription], int]:
        """A page of subscriptions, oldest first, and the total count."""
        subs = await self.list_all()
        return subs[offset : offset + limit], len(subs)

    async def list_all(self) -> builtins.list[Subscription]:
        raw = await self._redis.hgetall(self._key)
        subs: builtins.list[Subscription] = []
        for sub_id, value in raw.items():
            try:
                subs.append(decode_subscription(value))
            except (msgspec.DecodeError, StoreError) as exc:
                log.error("subscription %s cannot be read and is skipped: %s", text(sub_id), exc)
        subs.sort(key=_sort_key)
        return subs

    async def update(self, sub_id: str, patch: SubscriptionPatch, *, now: datetime) -> Subscription:
        """Apply a partial update (``RecordNotFound``, ``ReadOnly``, ``InvalidSubscription``)."""
        while True:
            raw = await self._redis.hget(self._key, sub_id)
            if raw is None:
                raise RecordNotFound("subscription", sub_id)
            current = decode_subscription(raw)
            if current.source == SubscriptionSource.CONFIG.value:
                raise ReadOnly(sub_id)
            changes = {f: getattr(patch, f) for f in patch.__struct_fields__ if getattr(patch, f) is not msgspec.UNSET}
            if isinstance(changes.get("name"), str):
                changes["name"] = changes["name"].strip()
            if isinstance(changes.get("urls"), list):
                changes["urls"] = [u.strip() if isinstance(u, str) else u for u in changes["urls"]]
            updated = msgspec.structs.replace(current, **changes, updated_at=format_ts(now))
            _check(updated)
            if await self._cas(keys=[self._key], args=[sub_id, raw, encode_subscription(updated)]):
                return updated

    async def delete(self, sub_id: str) -> bool:
        """Delete an API subscription; ``False`` if there is none, ``ReadOnly`` for one managed as code."""
        while True:
            raw = await self._redis.hget(self._key, sub_id)
            if raw is None:
                return False
            if decode_subscription(raw).source == SubscriptionSource.CONFIG.value:
                raise ReadOnly(sub_id)
            if await self._cas(keys=[self._key], args=[sub_id, raw, ""]):
                return True

    async def count(self) -> int:
        return int(await self._redis.hlen(self._key))

    async def replace_config(self, subs: builtins.list[Subscription]) -> builtins.list[str]:
        """Make the subscriptions managed as code exactly ``subs``; API subscriptions are left alone.

        A config subscription keeps its ``created_at`` across reloads, and its ``updated_at`` while it is
        unchanged. Returns the ids that were refused because an API subscription already has them.
        """
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self._key)
                    stored = {text(k): _bytes(v) for k, v in (await pipe.hgetall(self._key)).items()}
                    writes, deletes, refused = _plan_config(stored, subs)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    if deletes:
                        pipe.hdel(self._key, *deletes)
                    for sub_id, value in writes.items():
                        pipe.hset(self._key, sub_id, value)
                    await pipe.execute()
                    return refused
                except WatchError:
                    continue


def _plan_config(stored: dict[str, bytes], subs: list[Subscription]) -> tuple[dict[str, bytes], list[str], list[str]]:
    current: dict[str, Subscription] = {}
    for sub_id, raw in stored.items():
        try:
            current[sub_id] = decode_subscription(raw)
        except (msgspec.DecodeError, StoreError):
            continue
    wanted = {s.id: s for s in subs}
    writes: dict[str, bytes] = {}
    refused: list[str] = []
    for sub_id, sub in wanted.items():
        old = current.get(sub_id)
        if old is not None and old.source != SubscriptionSource.CONFIG.value:
            refused.append(sub_id)
            continue
        sub = msgspec.structs.replace(sub, source=SubscriptionSource.CONFIG.value)
        if old is not None:
            same = msgspec.structs.replace(old, created_at=sub.created_at, updated_at=sub.updated_at) == sub
            sub = msgspec.structs.replace(
                sub, created_at=old.created_at, updated_at=old.updated_at if same else sub.updated_at
            )
            if same:
                continue
        writes[sub_id] = encode_subscription(sub)
    deletes = [
        sub_id
        for sub_id, old in current.items()
        if old.source == SubscriptionSource.CONFIG.value and sub_id not in wanted
    ]
    return writes, deletes, refused


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
