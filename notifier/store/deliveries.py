"""Deliveries in Redis: created idempotently with the stream acknowledgement, claimed atomically, finished once.

One delivery is one notification (one event, or one storm summary) to one URL of one subscription. Its id is
derived from what it delivers (``delivery_id``), so processing a stream entry twice creates nothing new.

    {p}deliveries          hash  id -> {"v": 1, "d": Delivery}       (status, attempts, last error, ...)
    {p}deliveries:payload  hash  id -> Payload (URL, title, body, JSON body); dropped once sent
    {p}deliveries:due      zset  id -> when to try next (pending, and failed awaiting a retry)
    {p}deliveries:dead     zset  id -> when it died (retries exhausted; ``retry`` re-queues it)
    {p}deliveries:sent     zset  id -> when it was sent (pruned after the retention period)
    {p}deliveries:all      zset  id -> when it was created (listing)
    {p}delivery:{id}:claim string the token of the dispatcher sending it now (SET NX PX)

Every state change is one Lua script: ``create_and_ack`` writes new deliveries and XACKs the stream entries
they came from in one step; ``claim_many`` takes due deliveries for one sender only; ``finish_many`` records
outcomes, each only for its claim holder. Batching keeps the Redis round trips per notification low.

Must not import: httpx, apprise, litestar, prometheus_client, the poller or the dispatcher.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import redis.asyncio as aioredis

from notifier.errors import NotReplayable, RecordNotFound, StoreError
from notifier.models import Delivery, DeliveryStatus, format_ts
from notifier.store.keys import Keys

STATUSES: tuple[str, ...] = tuple(s.value for s in DeliveryStatus)
_FORMAT_VERSION = 1
_SCAN_CHUNK = 500


class Payload(msgspec.Struct, frozen=True):
    """What to send: kept apart from the Delivery record because ``url`` holds secrets."""

    url: str
    title: str
    body: str
    level: str
    #: The JSON a ``webhook://`` target receives (the event, or the storm summary).
    data: str


class _Stored(msgspec.Struct):
    v: int
    d: Delivery


@dataclass(frozen=True)
class NewDelivery:
    delivery: Delivery
    payload: Payload


_encoder = msgspec.json.Encoder()
_stored_decoder = msgspec.json.Decoder(_Stored)
_payload_decoder = msgspec.json.Decoder(Payload)


def delivery_id(event_id: str, subscription_id: str, url_index: int) -> str:
    """The id of the delivery of one event to one URL of one subscription (stable: the webhook-id)."""
    digest = hashlib.sha256(f"{event_id}\x1f{subscription_id}\x1f{url_index}".encode()).hexdigest()
    return "dlv_" + digest[:32]


def summary_delivery_id(event_ids: Sequence[str], subscription_id: str, url_index: int) -> str:
    """The id of a storm summary: stable for the same set of events, subscription and URL."""
    joined = "\x1e".join(sorted(event_ids))
    digest = hashlib.sha256(f"summary\x1f{joined}\x1f{subscription_id}\x1f{url_index}".encode()).hexdigest()
    return "dlv_" + digest[:32]


def encode_delivery(d: Delivery) -> bytes:
    return _encoder.encode(_Stored(v=_FORMAT_VERSION, d=d))


def decode_delivery(raw: bytes | str) -> Delivery:
    stored = _stored_decoder.decode(raw)
    if stored.v != _FORMAT_VERSION:
        raise StoreError(f"delivery stored in format v{stored.v}, this version reads v{_FORMAT_VERSION}")
    return stored.d


def decode_payload(raw: bytes | str) -> Payload:
    return _payload_decoder.decode(raw)


_NEWER = """
local function newer(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not bm then return true end
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
"""

# KEYS: deliveries, payload, due, all, events stream, watermark
# ARGV: group, watermark id ('' = none), k, k stream ids to ack, then per delivery: id, record, payload, due, created
_CREATE_AND_ACK = (
    _NEWER
    + """
local k = tonumber(ARGV[3])
local created = 0
local i = 4 + k
while i <= #ARGV do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
    redis.call('ZADD', KEYS[3], ARGV[i + 3], ARGV[i])
    redis.call('ZADD', KEYS[4], ARGV[i + 4], ARGV[i])
    created = created + 1
  end
  i = i + 5
end
if k > 0 then redis.call('XACK', KEYS[5], ARGV[1], unpack(ARGV, 4, 3 + k)) end
if ARGV[2] ~= '' then
  local current = redis.call('GET', KEYS[6])
  if not current or newer(ARGV[2], current) then redis.call('SET', KEYS[6], ARGV[2]) end
end
return created
"""
)

# KEYS: due, deliveries, payload, then one claim key per id. ARGV: now, token, lease ms, then the ids.
# Returns, per id, {record, payload} or {} when it is not due or someone else holds it.
_CLAIM = """
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local claim = KEYS[i]
  local got = {}
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) <= tonumber(ARGV[1]) and redis.call('SET', claim, ARGV[2], 'NX', 'PX', ARGV[3]) then
    local record = redis.call('HGET', KEYS[2], id)
    local payload = redis.call('HGET', KEYS[3], id)
    if record and payload then
      got = {record, payload}
    else
      redis.call('ZREM', KEYS[1], id)
      redis.call('DEL', claim)
    end
  end
  out[#out + 1] = got
end
return out
"""

# KEYS: deliveries, due, sent, dead, payload, then one claim key per outcome.
# ARGV: groups of (id, token, record, status, score). Returns 1/0 per outcome (recorded or not).
_FINISH = """
local out = {}
local n = 0
for i = 1, #ARGV, 5 do
  n = n + 1
  local id, token, record, status, score = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local claim = KEYS[5 + n]
  local holder = redis.call('GET', claim)
  local ok = 1
  if holder and holder ~= token then ok = 0 end
  if ok == 1 and not holder and not redis.call('ZSCORE', KEYS[2], id) then ok = 0 end
  if ok == 1 and redis.call('HEXISTS', KEYS[1], id) == 0 then
    redis.call('ZREM', KEYS[2], id)
    if holder then redis.call('DEL', claim) end
    ok = 0
  end
  if ok == 1 then
    redis.call('HSET', KEYS[1], id, record)
    if status == 'sent' then
      redis.call('ZREM', KEYS[2], id)
      redis.call('ZADD', KEYS[3], score, id)
      redis.call('HDEL', KEYS[5], id)
    elseif status == 'dead' then
      redis.call('ZREM', KEYS[2], id)
      redis.call('ZADD', KEYS[4], score, id)
    else
      redis.call('ZADD', KEYS[2], score, id)
    end
    if holder then redis.call('DEL', claim) end
  end
  out[n] = ok
end
return out
"""

# KEYS: claim. ARGV: token
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: deliveries, dead, due. ARGV: id, expected record, new record, due score
_REPLAY = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 1
"""

# KEYS: deliveries, payload, sent, all. ARGV: cutoff, limit
_PRUNE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
end
return #ids
"""


class DeliveryStore:
    """Deliveries: creation with the stream ack, claim / finish for senders, listing and replay for operators."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._create = redis.register_script(_CREATE_AND_ACK)
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._release = redis.register_script(_RELEASE)
        self._replay = redis.register_script(_REPLAY)
        self._prune = redis.register_script(_PRUNE)

    # -- dispatcher side -------------------------------------------------------------------------

    async def create_and_ack(
        self, new: Sequence[NewDelivery], *, group: str, ack_ids: Sequence[str], watermark: str = ""
    ) -> int:
        """Create the deliveries that do not exist yet and XACK ``ack_ids``, in one step. Returns how many new."""
        k = self._keys
        args: builtins.list[str | bytes | float] = [group, watermark, len(ack_ids), *ack_ids]
        for item in new:
            d = item.delivery
            due = d.next_attempt_at if d.next_attempt_at is not None else 0.0
            args += [d.id, encode_delivery(d), _encoder.encode(item.payload), due, due]
        keys = [k.deliveries, k.deliveries_payload, k.deliveries_due, k.deliveries_all, k.events, k.dispatch_watermark]
        return int(await self._create(keys=keys, args=args))

    async def due_ids(self, now: float, *, offset: int, count: int) -> builtins.list[str]:
        raw: Any = await self._redis.zrangebyscore(self._keys.deliveries_due, "-inf", now, start=offset, num=count)
        return [_text(x) for x in raw]

    async def get_many(self, ids: Sequence[str]) -> builtins.list[Delivery | None]:
        if not ids:
            return []
        raw = await self._redis.hmget(self._keys.deliveries, list(ids))
        return [decode_delivery(r) if r is not None else None for r in raw]

    async def claim(self, delivery_id: str, *, token: str, now: float, lease: float) -> tuple[Delivery, Payload] | None:
        """Take a due delivery for sending; ``None`` if it is not due or someone else holds it."""
        return (await self.claim_many([delivery_id], token=token, now=now, lease=lease)).get(delivery_id)

    async def claim_many(
        self, ids: Sequence[str], *, token: str, now: float, lease: float
    ) -> dict[str, tuple[Delivery, Payload]]:
        """Take the due ones of ``ids`` for sending, for ``lease`` seconds, in one step."""
        if not ids:
            return {}
        k = self._keys
        keys = [k.deliveries_due, k.deliveries, k.deliveries_payload, *(k.delivery_claim(i) for i in ids)]
        args: builtins.list[str | float | int] = [now, token, max(1, int(lease * 1000)), *ids]
        replies: Any = await self._claim(keys=keys, args=args)
        return {
            did: (decode_delivery(got[0]), decode_payload(got[1])) for did, got in zip(ids, replies, strict=True) if got
        }

    async def finish(self, delivery: Delivery, *, token: str, at: float) -> bool:
        """Record the outcome of an attempt (status sent / failed / dead) if this sender still holds the claim."""
        return (await self.finish_many([(delivery, token)], at=at))[0]

    async def finish_many(self, outcomes: Sequence[tuple[Delivery, str]], *, at: float) -> builtins.list[bool]:
        """Record several outcomes in one step; each only if its sender still holds the claim."""
        if not outcomes:
            return []
        k = self._keys
        keys = [k.deliveries, k.deliveries_due, k.deliveries_sent, k.deliveries_dead, k.deliveries_payload]
        args: builtins.list[str | bytes | float] = []
        for delivery, token in outcomes:
            keys.append(k.delivery_claim(delivery.id))
            retry_at = delivery.next_attempt_at if delivery.status == DeliveryStatus.FAILED.value else None
            args += [delivery.id, token, encode_delivery(delivery), delivery.status, retry_at or at]
        replies: Any = await self._finish(keys=keys, args=args)
        return [bool(r) for r in replies]

    async def release(self, delivery_id: str, *, token: str) -> None:
        """Give up a claim without recording an attempt (shutdown mid-send)."""
        await self._release(keys=[self._keys.delivery_claim(delivery_id)], args=[token])

    async def prune_sent(self, *, before: float, limit: int = 500) -> int:
        """Forget sent deliveries older than ``before`` (their ids stop guarding against re-creation)."""
        k = self._keys
        keys = [k.deliveries, k.deliveries_payload, k.deliveries_sent, k.deliveries_all]
        return int(await self._prune(keys=keys, args=[before, limit]))

    # -- operator side ---------------------------------------------------------------------------

    async def get(self, delivery_id: str) -> Delivery | None:
        raw = await self._redis.hget(self._keys.deliveries, delivery_id)
        return decode_delivery(raw) if raw is not None else None

    async def list(
        self, *, status: str | None, subscription_id: str | None, limit: int, offset: int
    ) -> tuple[builtins.list[Delivery], int]:
        """A page of deliveries, newest first, and how many match. ``status``: pending, failed, sent, dead."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown delivery status {status!r}; valid: {', '.join(STATUSES)}")
        k = self._keys
        index = {
            None: k.deliveries_all,
            DeliveryStatus.SENT.value: k.deliveries_sent,
            DeliveryStatus.DEAD.value: k.deliveries_dead,
        }.get(status, k.deliveries_due)
        exact = status in (None, DeliveryStatus.SENT.value, DeliveryStatus.DEAD.value) and subscription_id is None
        if exact:
            total = int(await self._redis.zcard(index))
            ids = await self._ids(index, offset, offset + limit - 1)
            return [d for d in await self.get_many(ids) if d is not None], total
        matched: builtins.list[Delivery] = []
        total = 0
        start = 0
        while True:
            ids = await self._ids(index, start, start + _SCAN_CHUNK - 1)
            if not ids:
                break
            start += len(ids)
            for d in await self.get_many(ids):
                if d is None or (status is not None and d.status != status):
                    continue
                if subscription_id is not None and d.subscription_id != subscription_id:
                    continue
                if offset <= total < offset + limit:
                    matched.append(d)
                total += 1
        return matched, total

    async def _ids(self, index: str, first: int, last: int) -> builtins.list[str]:
        raw: Any = await self._redis.zrevrange(index, first, last)
        return [_text(x) for x in raw]

    async def retry(self, delivery_id: str, *, now: float) -> Delivery:
        """Re-queue a dead delivery for sending now (``RecordNotFound``, ``NotReplayable`` if not dead)."""
        k = self._keys
        while True:
            raw = await self._redis.hget(k.deliveries, delivery_id)
            if raw is None:
                raise RecordNotFound("delivery", delivery_id)
            current = decode_delivery(raw)
            if current.status != DeliveryStatus.DEAD.value:
                raise NotReplayable(delivery_id, current.status)
            replayed = msgspec.structs.replace(
                current,
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                replays=current.replays + 1,
                updated_at=format_ts(datetime.fromtimestamp(now, UTC)),
            )
            args = [delivery_id, raw, encode_delivery(replayed), now]
            if await self._replay(keys=[k.deliveries, k.deliveries_dead, k.deliveries_due], args=args):
                return replayed

    async def counts(self) -> dict[str, int]:
        """``backlog`` (pending + failed awaiting a retry) and ``dead``, for the metrics gauges."""
        k = self._keys
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(k.deliveries_due)
            pipe.zcard(k.deliveries_dead)
            backlog, dead = await pipe.execute()
        return {"backlog": int(backlog), "dead": int(dead)}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
