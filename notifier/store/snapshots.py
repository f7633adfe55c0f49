"""Scope snapshots and the event outbox: one cycle's whole write is one atomic Lua script.

The script checks, before it writes anything, that the caller still holds the poller lease (the fencing
token is part of the lease value) and that the scope's revision is the one the caller read; then it writes
the new snapshots, appends the cycle's events to the stream and bumps the revision. Either all of it happens
or none: a crash at any point neither loses nor duplicates an event, and a paused ex-leader's write is
refused (``FencedOut``).

Must not import: httpx, apprise, litestar, prometheus_client, the poller or the dispatcher.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from notifier.diff import IndexEntry
from notifier.errors import FencedOut, StoreError
from notifier.models import AccountSnap, Event, PackSnap, PostSnap
from notifier.store.connect import text
from notifier.store.events import encode_event
from notifier.store.keys import Keys, ScopeKeys
from notifier.store.lease import LeaseHold

#: Settled posts expired per cycle at most (keeps one script call short).
EXPIRE_PER_CYCLE = 2000

_COMMIT = """
local lease = redis.call('GET', KEYS[1])
if lease ~= ARGV[1] then return redis.error_reply('FENCED lease is ' .. tostring(lease)) end
local rev = redis.call('HGET', KEYS[2], 'rev') or '0'
if rev ~= ARGV[2] then return redis.error_reply('CONFLICT rev is ' .. rev) end
local p = cmsgpack.unpack(ARGV[3])
for _, u in ipairs(p.pu) do
  redis.call('HSET', KEYS[3], u[1], u[2])
  redis.call('HSET', KEYS[4], u[1], u[3])
end
for _, id in ipairs(p.pd) do
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZREM', KEYS[6], id)
end
for _, s in ipairs(p.sa) do redis.call('ZADD', KEYS[5], 'NX', s[2], s[1]) end
for _, id in ipairs(p.sr) do redis.call('ZREM', KEYS[5], id) end
for _, s in ipairs(p.ua) do redis.call('ZADD', KEYS[6], s[2], s[1]) end
for _, id in ipairs(p.ur) do redis.call('ZREM', KEYS[6], id) end
for _, a in ipairs(p.au) do redis.call('HSET', KEYS[7], a[1], a[2]) end
for _, k in ipairs(p.ku) do redis.call('HSET', KEYS[8], k[1], k[2]) end
for _, e in ipairs(p.ev) do
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', p.maxlen, '*',
             'id', e[1], 'type', e[2], 'scope', e[3], 'batch', e[4], 'event', e[5])
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', p.expire_before, 'LIMIT', 0, p.expire_limit)
for _, id in ipairs(expired) do
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZREM', KEYS[6], id)
end
for i = 1, #p.meta, 2 do redis.call('HSET', KEYS[2], p.meta[i], p.meta[i + 1]) end
local new_rev = redis.call('HINCRBY', KEYS[2], 'rev', 1)
return {new_rev, #expired}
"""

#: Snapshots are stored as compact JSON arrays (the script's msgpack reader takes no binary strings).
_snap_encoder = msgspec.json.Encoder()
_payload_encoder = msgspec.msgpack.Encoder()
_post_decoder = msgspec.json.Decoder(PostSnap)
_account_decoder = msgspec.json.Decoder(AccountSnap)
_pack_decoder = msgspec.json.Decoder(PackSnap)


def _raw(value: object) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)  # type: ignore[call-overload]


@dataclass(frozen=True)
class ScopeMeta:
    rev: int
    baseline_done: bool
    watermark_ms: int | None


@dataclass
class CycleWrite:
    """Everything one cycle writes for one scope, applied atomically by ``SnapshotStore.commit``."""

    posts: dict[str, tuple[PostSnap, IndexEntry]] = field(default_factory=dict)
    deleted_posts: list[str] = field(default_factory=list)
    settled: dict[str, float] = field(default_factory=dict)
    reopened: list[str] = field(default_factory=list)
    url_checks: dict[str, float] = field(default_factory=dict)
    url_done: list[str] = field(default_factory=list)
    accounts: dict[str, AccountSnap] = field(default_factory=dict)
    packs: dict[str, PackSnap] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    batch: str = ""
    watermark_ms: int | None = None
    expire_before: float = 0.0

    def payload(self, scope: str, maxlen: int) -> bytes:
        meta: list[str] = ["baseline", "1"]  # a committed cycle has made the baseline
        if self.watermark_ms is not None:
            meta += ["watermark_ms", str(self.watermark_ms)]
        return _payload_encoder.encode(
            {
                "pu": [
                    [pid, entry.encode(), _snap_encoder.encode(snap).decode()]
                    for pid, (snap, entry) in self.posts.items()
                ],
                "pd": self.deleted_posts,
                "sa": [[pid, repr(ts)] for pid, ts in self.settled.items()],
                "sr": self.reopened,
                "ua": [[pid, repr(ts)] for pid, ts in self.url_checks.items()],
                "ur": self.url_done,
                "au": [[aid, _snap_encoder.encode(s).decode()] for aid, s in self.accounts.items()],
                "ku": [[kid, _snap_encoder.encode(s).decode()] for kid, s in self.packs.items()],
                "ev": [[e.id, e.type, scope, self.batch, encode_event(e).decode()] for e in self.events],
                "maxlen": str(maxlen),
                "expire_before": repr(self.expire_before),
                "expire_limit": EXPIRE_PER_CYCLE,
                "meta": meta,
            }
        )


@dataclass(frozen=True)
class CommitResult:
    rev: int
    expired: int


class SnapshotStore:
    """Reads and atomically writes one scope's snapshots; appends events to the stream."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, *, events_maxlen: int = 100_000) -> None:
        self._redis = redis
        self._keys = keys
        self._maxlen = events_maxlen
        self._commit = redis.register_script(_COMMIT)

    def scope_keys(self, scope: str) -> ScopeKeys:
        return self._keys.scope(scope)

    async def load_meta(self, scope: str) -> ScopeMeta:
        raw = await self._redis.hgetall(self.scope_keys(scope).meta)
        rev = int(raw.get(b"rev", b"0"))
        watermark = raw.get(b"watermark_ms")
        return ScopeMeta(
            rev=rev, baseline_done=raw.get(b"baseline") == b"1", watermark_ms=int(watermark) if watermark else None
        )

    async def load_index(self, scope: str) -> dict[bytes, bytes]:
        """Every tracked post's raw index entry (decode with ``IndexEntry.decode``), keyed by id bytes."""
        raw: dict[bytes, bytes] = await self._redis.hgetall(self.scope_keys(scope).idx)  # type: ignore[assignment]
        return raw  # the client is created without decode_responses: keys and values are bytes

    async def load_posts(self, scope: str, ids: Iterable[str]) -> dict[str, PostSnap]:
        wanted = list(ids)
        if not wanted:
            return {}
        blobs = await self._redis.hmget(self.scope_keys(scope).posts, wanted)
        return {pid: _post_decoder.decode(_raw(b)) for pid, b in zip(wanted, blobs, strict=True) if b is not None}

    async def load_accounts(self, scope: str) -> dict[str, AccountSnap]:
        raw = await self._redis.hgetall(self.scope_keys(scope).accounts)
        return {text(k): _account_decoder.decode(_raw(v)) for k, v in raw.items()}

    async def load_packs(self, scope: str) -> dict[str, PackSnap]:
        raw = await self._redis.hgetall(self.scope_keys(scope).packs)
        return {text(k): _pack_decoder.decode(_raw(v)) for k, v in raw.items()}

    async def due_url_checks(self, scope: str, now: float, limit: int = 200) -> list[str]:
        """Posts whose late ``published_url`` should be looked for now (oldest due first)."""
        ids = await self._redis.zrangebyscore(self.scope_keys(scope).urlwatch, "-inf", repr(now), start=0, num=limit)
        return [text(i) for i in ids]

    async def tracked_posts(self, scope: str) -> int:
        return int(await self._redis.hlen(self.scope_keys(scope).idx))

    async def commit(self, scope: str, lease: LeaseHold, expected_rev: int, write: CycleWrite) -> CommitResult:
        """Apply ``write`` atomically if ``lease`` is still held and the scope revision is unchanged."""
        k = self.scope_keys(scope)
        keys = [lease.key, k.meta, k.idx, k.posts, k.settled, k.urlwatch, k.accounts, k.packs, self._keys.events]
        args: list[str | bytes] = [lease.value, str(expected_rev), write.payload(scope, self._maxlen)]
        try:
            rev, expired = await self._commit(keys=keys, args=args)
        except ResponseError as exc:
            text = str(exc)
            if text.startswith("FENCED"):
                raise FencedOut("the poller lease is held by another process; nothing was written") from None
            if text.startswith("CONFLICT"):
                raise StoreError(f"scope {scope} changed during the cycle ({text}); nothing was written") from None
            raise
        return CommitResult(rev=int(rev), expired=int(expired))
