"""The service's Redis client: every wait on Redis is bounded.

Without a socket timeout, a Redis that stops answering without closing the connection (a network partition,
a frozen host) leaves a command waiting until TCP gives up, many minutes later, and the loop that sent it
with it. With one, the command fails with ``redis.exceptions.TimeoutError`` (a ``RedisError``), which every
loop already treats as "Redis unavailable": it backs off and tries again.

The timeouts are set here rather than left to redis-py, whose default changed between versions (none
before 8, 5 s since). ``COMMAND_TIMEOUT`` is well above the longest command the service sends (XREADGROUP
blocks 0.5 s; committing a first cycle of 100,000 posts takes ~1.5 s), so a large first commit is not cut
off.

The client does not decode replies: they are bytes, and ``text`` reads one as ``str``.

Must not import: httpx, apprise, litestar.
"""

from __future__ import annotations

import redis.asyncio as aioredis

COMMAND_TIMEOUT = 15.0
CONNECT_TIMEOUT = 5.0


def connect(
    url: str, *, command_timeout: float = COMMAND_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT
) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url, health_check_interval=30, socket_timeout=command_timeout, socket_connect_timeout=connect_timeout
    )


def text(value: object) -> str:
    """A Redis reply (bytes, as this client returns them) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
