"""kill -9 of the poller process at any moment around a change: after a restart, exactly one event each."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from notifier.genviral.client import api_key_id
from notifier.simulator.server import SimulatorServer
from notifier.store.embedded import EmbeddedRedis
from notifier.store.events import decode_entry
from notifier.store.keys import Keys

from .conftest import API_KEY

POSTS = 6


def start_poller(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "notifier.cli", "serve", "--role", "poller"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,
        )


@pytest.fixture
def poller_env(redis_server: EmbeddedRedis, sim: SimulatorServer, key_prefix: str) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update(
        NOTIFIER_GENVIRAL_API_KEY=API_KEY,
        NOTIFIER_GENVIRAL_BASE_URL=sim.base_url,
        NOTIFIER_REDIS_URL=redis_server.url,
        NOTIFIER_KEY_PREFIX=key_prefix,
        NOTIFIER_POLL_INTERVAL="0.05",
        NOTIFIER_LOG_LEVEL="warning",
    )
    yield env
    client = redis.Redis.from_url(redis_server.url)
    for key in client.scan_iter(match=key_prefix + "*"):
        client.delete(key)
    client.close()


def wait(predicate, seconds: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_kill_9_mid_cycle_gives_exactly_one_event(
    poller_env: dict[str, str], sim: SimulatorServer, redis_server: EmbeddedRedis, key_prefix: str, tmp_path: Path
) -> None:
    """Each change is followed by kill -9 at a random moment; after restarts every transition is there once."""
    keys = Keys(key_prefix)
    client = redis.Redis.from_url(redis_server.url)
    s = sim.state
    for i in range(POSTS):
        s.add_post(id=f"p{i}", status="scheduled", accounts=["acc-tt"])
    s.add_posts_bulk(400, statuses=("scheduled",), account_ids=["acc-ig"])  # longer cycles to land in
    health = keys.poller(api_key_id(API_KEY)).health

    def polled_since(moment: float) -> bool:
        raw = client.hget(health, "last_success")
        return raw is not None and float(raw) > moment

    scope_meta = keys.scope(s.default_scope.id).meta
    log = tmp_path / "poller.log"
    started = time.time()
    proc = start_poller(poller_env, log)
    assert wait(lambda: client.hget(scope_meta, "baseline") == b"1"), log.read_text()
    rng = random.Random(7)
    for i in range(POSTS):
        assert wait(lambda since=started: polled_since(since)), log.read_text()  # the new one is polling
        s.set_delivery(f"p{i}", "acc-tt", status="failed", error_message="token expired")
        s.update_post(f"p{i}", status="failed")
        time.sleep(rng.uniform(0, 0.12))  # before, during or after the cycle that sees it
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        started = time.time()
        proc = start_poller(poller_env, log)

    def events() -> list[tuple[str, str]]:
        out = []
        for _, fields in client.xrange(keys.events):
            e = decode_entry(fields)
            assert e.post is not None
            out.append((e.post.id, e.type))
        return out

    try:
        assert wait(lambda: len(events()) >= 3 * POSTS), events()
        time.sleep(0.5)  # more cycles: nothing may be added twice
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    counts = Counter(events())
    expected = {
        (f"p{i}", t): 1 for i in range(POSTS) for t in ("post.status_changed", "post.failed", "delivery.failed")
    }
    assert dict(counts) == expected
    ids = [decode_entry(f).id for _, f in client.xrange(keys.events)]
    assert len(ids) == len(set(ids))
    client.close()
