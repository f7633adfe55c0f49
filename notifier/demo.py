"""``notifier demo``: the one-minute tour, with no account and no settings.

Starts an embedded Redis (data in a temporary directory, removed on exit), the simulated Partner API in live
mode (posts get published, fail, get their URLs on their own every few seconds), a ``console://``
subscription to every event, and the whole service (app, poller every second, dispatcher) on loopback. It
prints where the docs and the metrics are and the admin token it generated; notifications then print to this
terminal as posts change. Ctrl-C stops everything, in reverse order.

Must not import: anything of the CLI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import redis.asyncio as aioredis

from notifier.config import Settings
from notifier.logging import configure_logging
from notifier.models import SubscriptionInput
from notifier.service import Running, Service, bind_socket
from notifier.simulator import SimulatorServer
from notifier.store.embedded import EmbeddedRedis
from notifier.store.keys import Keys
from notifier.store.subscriptions import SubscriptionStore

log = logging.getLogger("notifier.demo")

POLL_INTERVAL = 1.0
LIVE_INTERVAL = 2.5
SEED_POSTS = 24
HOST = "127.0.0.1"


def pick_port(wanted: int | None, default: int) -> int:
    """``wanted`` as given (the bind error shows if it is taken); else ``default`` if free, else any free port."""
    if wanted is not None:
        return wanted
    for candidate in (default, 0):
        try:
            sock = bind_socket(HOST, candidate)
        except OSError:
            continue
        port = int(sock.getsockname()[1])
        sock.close()
        return port
    return 0


def demo_settings(settings: Settings, *, port: int, redis_url: str, base_url: str, api_key: str) -> Settings:
    return dataclasses.replace(
        settings,
        genviral_api_key=api_key,
        genviral_base_url=base_url,
        redis_url=redis_url,
        host=HOST,
        port=port,
        admin_token=secrets.token_urlsafe(24),
        poll_interval=POLL_INTERVAL,
        notify_existing=False,
        subscriptions_file=None,
        log_format="console",
        log_level="debug" if settings.log_level == "debug" else "warning",
        retry_schedule=(2.0, 5.0, 10.0),
        send_timeout=5.0,
    )


async def _subscribe(redis_url: str, keys: Keys) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        await SubscriptionStore(client, keys).create(
            SubscriptionInput(name="demo: print every event to this terminal", urls=["console://"], events=["*"]),
            now=datetime.now(UTC),
        )
    finally:
        await client.aclose()


def _banner(out: TextIO, running: Running, sim: SimulatorServer, token: str) -> None:
    url = running.url
    lines = [
        "",
        "genviral-notifier demo",
        f"  simulated Partner API  {sim.base_url}  (posts change every {LIVE_INTERVAL:g} s)",
        f"  API docs               {url}/schema",
        f"  metrics                {url}/metrics",
        f"  readiness              {url}/readyz",
        f"  admin token            {token}",
        f'  try                    curl -H "Authorization: Bearer {token}" "{url}/events?limit=5"',
        "",
        "Notifications print below as posts change (the first poll records what exists, silently).",
        "Press Ctrl-C to stop.",
        "",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


async def _demo(settings: Settings, port: int | None, out: TextIO) -> int:
    chosen = pick_port(port, settings.port)
    api_key = "demo-" + secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="notifier-demo-") as tmp:
        embedded = EmbeddedRedis(Path(tmp) / "redis", persist=False)
        await asyncio.to_thread(embedded.start)
        try:
            sim = SimulatorServer(api_key, seed_posts=SEED_POSTS, live=True, live_interval=LIVE_INTERVAL)
            await asyncio.to_thread(sim.start)
            try:
                s = demo_settings(settings, port=chosen, redis_url=embedded.url, base_url=sim.base_url, api_key=api_key)
                configure_logging(s)
                await _subscribe(embedded.url, Keys(s.key_prefix))

                def ready(running: Running) -> None:
                    _banner(out, running, sim, s.admin_token)

                return await Service(s, "all", on_ready=ready).run()
            finally:
                await asyncio.to_thread(sim.stop)
        finally:
            await asyncio.to_thread(embedded.stop)


def run_demo(settings: Settings, port: int | None = None, *, out: TextIO | None = None) -> int:
    """``notifier demo``: runs until Ctrl-C; 0 after a clean stop."""
    code = asyncio.run(_demo(settings, port, out if out is not None else sys.stdout))
    print("demo stopped", file=sys.stderr)
    return code
