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
they came from in one step; ``finish_and_claim`` records outcomes, each only for its claim holder, and takes
due deliveries for one sender only, in one call. Batching keeps the Redis round trips per notification low.

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
from notifier.store.connect import text
from notifier.store.keys import Keys
from notifier.store.lease import DELETE_IF_HELD

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

# Lua bodies shared by the claim, finish and finish-then-claim scripts. KEYS always start with: deliveries,
# due, sent, dead, payload; the claim keys follow.

# claim(id, claim key, token, now, lease ms): {record, payload}, or {} when not due or someone else holds it.
_CLAIM_FN = """
local function claim(id, key, token, now, lease)
  local score = redis.call('ZSCORE', KEYS[2], id)
  if score and tonumber(score) <= tonumber(now) and redis.call('SET', key, token, 'NX', 'PX', lease) then
    local record = redis.call('HGET', KEYS[1], id)
    local payload = redis.call('HGET', KEYS[5], id)
    if record and payload then return {record, payload} end
    redis.call('ZREM', KEYS[2], id)
    redis.call('DEL', key)
  end
  return {}
end
"""

# finish(id, claim key, token, record, status, score): 1 if recorded (this sender held the claim), else 0.
_FINISH_FN = """
local function finish(id, claim, token, record, status, score)
  local holder = redis.call('GET', claim)
  if holder and holder ~= token then return 0 end
  if not holder and not redis.call('ZSCORE', KEYS[2], id) then return 0 end
  if redis.call('HEXISTS', KEYS[1], id) == 0 then
    redis.call('ZREM', KEYS[2], id)
    if holder then redis.call('DEL', claim) end
    return 0
  end
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
  return 1
end
"""

# ARGV: now, lease ms, nf, groups of (id, token, record, status, score) for nf outcomes, then (id, token) per
# claim; KEYS after the five: nf finish claim keys, then the claim keys. Outcomes are recorded first.
# Returns {outcome results (1/0), claim results ({record, payload} or {})}.
_FINISH_AND_CLAIM = (
    _CLAIM_FN
    + _FINISH_FN
    + """
local nf = tonumber(ARGV[3])
local done, got = {}, {}
for n = 1, nf do
  local i = 4 + (n - 1) * 5
  done[n] = finish(ARGV[i], KEYS[5 + n], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
end
local c = 0
for i = 4 + nf * 5, #ARGV, 2 do
  c = c + 1
  got[c] = claim(ARGV[i], KEYS[5 + nf + c], ARGV[i + 1], ARGV[1], ARGV[2])
end
return {done, got}
"""
)


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
        self._finish_and_claim = redis.register_script(_FINISH_AND_CLAIM)
        self._release = redis.register_script(DELETE_IF_HELD)
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
        return [text(x) for x in raw]

    async def get_many(self, ids: Sequence[str]) -> builtins.list[Delivery | None]:
        if not ids:
            return []
        raw = await self._redis.hmget(self._keys.deliveries, list(ids))
        return [decode_delivery(r) if r is not None else None for r in raw]

    async def finish_and_claim(
        self,
        outcomes: Sequence[tuple[Delivery, str]],
        claims: Sequence[tuple[str, str]],
        *,
        now: float,
        lease: float,
    ) -> tuple[builtins.list[bool], dict[str, tuple[Delivery, Payload]]]:
        """Record ``outcomes`` (status sent / failed / dead), then claim each ``(id, token)``, in one Redis call.

        An outcome is recorded only if its sender still holds the claim (``False`` in the first list otherwise).
        A claim takes a delivery that is due and unclaimed, for ``lease`` seconds; the second value maps each
        delivery taken to its record and payload.
        """
        if not outcomes and not claims:
            return [], {}
        k = self._keys
        keys = [k.deliveries, k.deliveries_due, k.deliveries_sent, k.deliveries_dead, k.deliveries_payload]
        args: builtins.list[str | bytes | float | int] = [now, max(1, int(lease * 1000)), len(outcomes)]
        for delivery, token in outcomes:
            keys.append(k.delivery_claim(delivery.id))
            retry_at = delivery.next_attempt_at if delivery.status == DeliveryStatus.FAILED.value else None
            args += [delivery.id, token, encode_delivery(delivery), delivery.status, retry_at or now]
        for did, token in claims:
            keys.append(k.delivery_claim(did))
            args += [did, token]
        reply: Any = await self._finish_and_claim(keys=keys, args=args)
        done = [bool(r) for r in reply[0]] if outcomes else []
        got_raw = reply[1] if claims else []
        got = {
            did: (decode_delivery(g[0]), decode_payload(g[1])) for (did, _), g in zip(claims, got_raw, strict=True) if g
        }
        return done, got

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
        return [text(x) for x in raw]

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
