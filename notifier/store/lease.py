"""The poller lease: one poller per API key at a time, with a fencing token.

Acquiring increments ``fence`` and stores ``owner|token`` under ``lease`` with a TTL; the holder renews it
every cycle. The snapshot write checks the exact value inside its script, so a poller whose lease expired
(paused, partitioned) and was taken over cannot write, even if it wakes up mid-cycle. Another process takes
over within one TTL of the holder's death.

Must not import: anything of this package but ``notifier.store.keys``.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from notifier.store.connect import text
from notifier.store.keys import PollerKeys

_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local owner, token = string.match(cur, '^(.*)|(%d+)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return cur
  end
  return false
end
local token = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. '|' .. token
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return value
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

#: KEYS[1] is deleted if it still holds ARGV[1] (a lease, a delivery claim): only its holder frees it.
DELETE_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class LeaseHold:
    """A held lease: the key and the exact value (``owner|token``) the holder wrote."""

    key: str
    value: str

    @property
    def token(self) -> int:
        return int(self.value.rsplit("|", 1)[1])


class Lease:
    def __init__(self, redis: aioredis.Redis, keys: PollerKeys, *, owner: str, ttl: float) -> None:
        self._keys = keys
        self._owner = owner
        self._ttl_ms = max(1, int(ttl * 1000))
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(DELETE_IF_HELD)

    async def acquire(self) -> LeaseHold | None:
        """Take the lease if free (or keep it if ours); None while another process holds it."""
        value = await self._acquire(keys=[self._keys.lease, self._keys.fence], args=[self._owner, self._ttl_ms])
        if not value:
            return None
        return LeaseHold(self._keys.lease, text(value))

    async def renew(self, hold: LeaseHold) -> bool:
        return bool(await self._renew(keys=[hold.key], args=[hold.value, self._ttl_ms]))

    async def release(self, hold: LeaseHold) -> None:
        await self._release(keys=[hold.key], args=[hold.value])
