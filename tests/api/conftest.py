"""Fixtures of the HTTP app tests: the real app over a real Redis, a real apprise sender, a local receiver."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from litestar import Litestar

from notifier.api import AppDeps, Readiness, create_app
from notifier.config import Settings
from notifier.metrics import Metrics
from notifier.senders.apprise_sender import AppriseSender
from notifier.service import subscription_test_sender
from notifier.store.deliveries import DeliveryStore
from notifier.store.keys import Keys
from notifier.store.snapshots import SnapshotStore
from notifier.store.subscriptions import SubscriptionStore

ADMIN_TOKEN = "adm-7Qm2-very-secret-admin-token"
API_KEY = "gv_test_partner_key_0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: A Slack URL whose tokens must never appear in an answer.
SLACK = "slack://T1SECRETAA/B2SECRETBB/C3SECRETTOKENCC"
SLACK_SECRETS = ("T1SECRETAA", "B2SECRETBB", "C3SECRETTOKENCC")


def make_settings(keys: Keys, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "admin_token": ADMIN_TOKEN,
        "genviral_api_key": API_KEY,
        "key_prefix": keys.prefix,
        "poll_interval": 0.2,
        "send_timeout": 3.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo what configure_logging (run by check, demo and the service) does to the process's loggers."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = ("httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access", "apprise", "urllib3", "requests")
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in names}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, (lvl, hs) in saved.items():
        logging.getLogger(name).setLevel(lvl)
        logging.getLogger(name).handlers[:] = hs


@pytest.fixture
def settings(keys: Keys) -> Settings:
    return make_settings(keys)


@pytest.fixture
async def sender() -> AsyncIterator[AppriseSender]:
    s = AppriseSender(max_workers=4)
    yield s
    await s.aclose()


def build_deps(
    redis: aioredis.Redis, keys: Keys, settings: Settings, sender: AppriseSender | None, **overrides: Any
) -> AppDeps:
    metrics = overrides.pop("metrics", None) or Metrics.create()
    values: dict[str, Any] = {
        "redis": redis,
        "keys": keys,
        "settings": settings,
        "metrics": metrics,
        "subscriptions": SubscriptionStore(redis, keys),
        "deliveries": DeliveryStore(redis, keys),
        "snapshots": SnapshotStore(redis, keys),
        "send_test": subscription_test_sender(sender, settings.send_timeout) if sender is not None else None,
        "readiness": Readiness(),
    }
    values.update(overrides)
    return AppDeps(**values)


@pytest.fixture
def deps(redis: aioredis.Redis, keys: Keys, settings: Settings, sender: AppriseSender) -> AppDeps:
    d = build_deps(redis, keys, settings, sender)
    d.readiness.running()
    return d


@pytest.fixture
def app(deps: AppDeps) -> Litestar:
    return create_app(deps)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the app in-process, with the admin token."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://testserver", headers=AUTH) as c:
        yield c


@pytest.fixture
async def anon(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the app in-process, without credentials."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://testserver") as c:
        yield c


@dataclass
class Receiver:
    """A local HTTP server recording every POST it answers with 200."""

    port: int = 0
    bodies: list[bytes] = field(default_factory=list)

    def url(self, scheme: str = "json", path: str = "/hook") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec.bodies.append(self.rfile.read(int(self.headers.get("content-length") or 0)))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()
    thread.join(5)


def assert_no_secret(text: str, secrets: tuple[str, ...] = SLACK_SECRETS) -> None:
    for secret in secrets:
        assert secret not in text, f"secret {secret!r} leaked"
