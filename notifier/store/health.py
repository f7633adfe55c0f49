"""The poller's heartbeat in Redis, read by /readyz and ``notifier check`` from any process.

``{p}poller:{key_id}:health`` holds: last_success and last_attempt (unix seconds), last_error_code and
last_error (empty after a success; never a secret), scope, owner, interval, backoff_until.

Must not import: httpx, apprise, litestar, prometheus_client.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from notifier.store.connect import text
from notifier.store.keys import Keys


@dataclass(frozen=True)
class PollerHealth:
    last_success: float | None
    last_attempt: float | None
    last_error_code: str
    last_error: str
    scope: str
    owner: str
    interval: float | None
    backoff_until: float | None

    def fresh(self, now: float, interval: float) -> bool:
        """Whether the last successful cycle is within three intervals."""
        return self.last_success is not None and now - self.last_success <= 3 * interval


def _float(raw: dict[str, str], name: str) -> float | None:
    value = raw.get(name)
    return float(value) if value else None


async def read_health(redis: aioredis.Redis, keys: Keys, key_id: str) -> PollerHealth | None:
    data = await redis.hgetall(keys.poller(key_id).health)
    if not data:
        return None
    raw = {text(k): text(v) for k, v in data.items()}
    return PollerHealth(
        last_success=_float(raw, "last_success"),
        last_attempt=_float(raw, "last_attempt"),
        last_error_code=raw.get("last_error_code", ""),
        last_error=raw.get("last_error", ""),
        scope=raw.get("scope", ""),
        owner=raw.get("owner", ""),
        interval=_float(raw, "interval"),
        backoff_until=_float(raw, "backoff_until"),
    )


async def write_health(redis: aioredis.Redis, keys: Keys, key_id: str, fields: dict[str, str]) -> None:
    await redis.hset(keys.poller(key_id).health, mapping=fields)  # type: ignore[arg-type]
