"""Fixtures of the delivery tests: real receivers (HTTP, SMTP), events, and a running dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiosmtpd.controller import Controller

from notifier.config import Settings
from notifier.dispatcher import Dispatcher, DispatchOptions
from notifier.metrics import Metrics
from notifier.models import AccountRef, Event, PostRef, Subscription, SubscriptionFilters, Templates
from notifier.store.embedded import free_port
from notifier.store.events import event_fields
from notifier.store.keys import Keys

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FAST = DispatchOptions(
    block=0.05,
    claim_min_idle=0.3,
    poll_interval=0.05,
    file_poll_interval=0.05,
    gauge_interval=0.05,
    claim_margin=0.3,
    backoff_max=0.2,
)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    query: str = ""
    #: The client's port: one per connection.
    peer: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local HTTP/1.1 server (keep-alive) that records every request; paths can be told to fail or stall first."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    #: path -> statuses to answer with before answering 200
    failures: dict[str, list[int]] = field(default_factory=dict)
    #: path -> seconds to wait before answering (every request)
    delays: dict[str, float] = field(default_factory=dict)
    #: paths of the requests answered so far, in order
    answered: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, scheme: str, path: str, query: str = "") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def fail(self, path: str, *statuses: int) -> None:
        with self.lock:
            self.failures[path] = list(statuses)


def _handler(receiver: Receiver, keep_alive: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            path, _, query = self.path.partition("?")
            headers = {k.lower(): v for k, v in self.headers.items()}
            hit = Received(path, headers, body, self.command, query, self.client_address[1])
            with receiver.lock:
                receiver.requests.append(hit)
                pending = receiver.failures.get(path) or []
                status = pending.pop(0) if pending else 200
                delay = receiver.delays.get(path, 0.0)
            if delay:
                time.sleep(delay)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()
            with receiver.lock:
                receiver.answered.append(path)

        do_PUT = do_PATCH = do_DELETE = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _serve(keep_alive: bool) -> Iterator[Receiver]:
    rec = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec, keep_alive))
    server.daemon_threads = True
    server.block_on_close = False
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP/1.1 receiver on 127.0.0.1 for json:// and webhook:// targets; connections are kept alive."""
    yield from _serve(keep_alive=True)


@pytest.fixture
def closing_receiver() -> Iterator[Receiver]:
    """The same receiver speaking HTTP/1.0: it closes the connection after every answer."""
    yield from _serve(keep_alive=False)


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[Message]]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1: (port, received messages)."""
    box = _Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, box.messages
    controller.stop()


def make_event(
    n: int = 1,
    *,
    etype: str = "post.failed",
    platform: str = "tiktok",
    account_id: str = "acc_1",
    caption: str = "Launch video for the spring collection",
) -> Event:
    return Event(
        id=f"evt_{etype}_{n}",
        type=etype,
        detected_at="2025-03-01T12:00:00.000Z",
        scope="ws_1",
        post=PostRef(
            id=f"post_{n}",
            caption=caption,
            status="failed",
            scheduled_at="2025-03-01T11:00:00.000Z",
            created_at="2025-03-01T10:00:00.000Z",
            media_type="video",
            account_ids=[account_id],
            platforms=[platform],
        ),
        account=AccountRef(id=account_id, platform=platform, username="acme") if etype.startswith("delivery") else None,
        previous={"status": "scheduled"},
        current={"status": "failed", "error_message": "Token expired"},
    )


def make_sub(
    sub_id: str,
    urls: list[str],
    *,
    events: list[str] | None = None,
    platforms: list[str] | None = None,
    account_ids: list[str] | None = None,
    storm_threshold: int = 10,
    templates: Templates | None = None,
    enabled: bool = True,
) -> Subscription:
    return Subscription(
        id=sub_id,
        name=f"sub {sub_id}",
        urls=urls,
        events=events or ["*"],
        filters=SubscriptionFilters(platforms=platforms or [], account_ids=account_ids or []),
        storm_threshold=storm_threshold,
        templates=templates,
        enabled=enabled,
        created_at="2025-03-01T12:00:00.000Z",
        updated_at="2025-03-01T12:00:00.000Z",
    )


async def put_subs(redis: aioredis.Redis, keys: Keys, *subs: Subscription) -> None:
    """Store subscriptions as the API would (bypassing validation so tests may use any URL)."""
    from notifier.store.subscriptions import encode_subscription

    for sub in subs:
        await redis.hset(keys.subscriptions, sub.id, encode_subscription(sub))


async def publish(redis: aioredis.Redis, keys: Keys, *events: Event, batch: str = "") -> None:
    """Append events to the stream as one poll cycle would (one atomic step)."""
    async with redis.pipeline(transaction=True) as pipe:
        for event in events:
            pipe.xadd(keys.events, event_fields(event, batch))
        await pipe.execute()


async def wait_until(check: Callable[[], Any], within: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


def fast_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"retry_schedule": (0.05, 0.1), "send_timeout": 2.0}
    values.update(overrides)
    return Settings(**values)


@dataclass
class Running:
    dispatcher: Dispatcher
    stop: asyncio.Event
    task: asyncio.Task[None]
    metrics: Metrics

    def notifications(self, result: str) -> float:
        """``notifier_notifications_total{result}`` of this dispatcher."""
        return self.metrics.registry.get_sample_value("notifier_notifications_total", {"result": result}) or 0.0


@contextlib.asynccontextmanager
async def running(
    redis: aioredis.Redis,
    keys: Keys,
    *,
    settings: Settings | None = None,
    consumer: str = "d1",
    options: DispatchOptions = FAST,
) -> AsyncIterator[Running]:
    """A dispatcher running in a task; stopped (gracefully) on exit."""
    metrics = Metrics.create()
    dispatcher = Dispatcher(redis, keys, settings or fast_settings(), metrics, consumer=consumer, options=options)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        yield Running(dispatcher, stop, task, metrics)
    finally:
        stop.set()
        if task.cancelled():
            pass
        else:
            await asyncio.wait_for(task, 15)
