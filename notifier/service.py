"""The one process: the owner of startup and shutdown for ``notifier serve`` (and ``notifier demo``).

``run_service(settings, role)`` checks the settings the role needs (``ConfigError`` before anything starts),
configures logging, then ``Service.run()``:

    start   embedded Redis (when NOTIFIER_REDIS_URL is unset) -> Redis client -> Partner API client (poller)
            -> apprise sender (dispatcher, /test) -> HTTP server on a socket bound here -> loops as tasks;
            /readyz turns ready once the server listens (and the poller's heartbeat is fresh)
    stop    SIGTERM / SIGINT set the stop event -> /readyz 503 (draining) -> the loops are awaited under
            ``LOOP_STOP_TIMEOUT`` (then cancelled) -> the HTTP server drains -> clients closed in reverse
            order -> embedded Redis stopped. A second signal cancels whatever still runs.

Roles: ``all`` runs everything; ``api`` the admin API; ``poller`` / ``dispatcher`` one loop each. Every role
serves /healthz, /readyz and /metrics so that probes and scrapes work on each kind of pod. A loop that dies
ends the process with exit code 1 (the orchestrator restarts it).

Must not import: anything of the CLI; nothing at import time reads the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import uvicorn
from prometheus_client import ProcessCollector
from redis.exceptions import RedisError

from notifier.api import AppDeps, Readiness, TestOutcome, create_app
from notifier.check import REQUIRED
from notifier.config import Settings
from notifier.dispatcher import Dispatcher
from notifier.genviral.client import PartnerClient
from notifier.logging import configure_logging
from notifier.metrics import Metrics
from notifier.models import Subscription
from notifier.poller import Poller
from notifier.senders.apprise_sender import AppriseSender, Sender
from notifier.senders.sendtest import send_tests
from notifier.store.connect import connect as connect_redis
from notifier.store.deliveries import DeliveryStore
from notifier.store.embedded import EmbeddedRedis
from notifier.store.keys import Keys
from notifier.store.snapshots import SnapshotStore
from notifier.store.subscriptions import SubscriptionStore

log = logging.getLogger("notifier.service")

ROLES = tuple(REQUIRED)
#: A second stop signal this soon after the first is the same request (not a demand to cancel).
REPEAT_GRACE = 1.0
#: Seconds the loops get to finish after the stop signal, and the HTTP server to drain; under 10 s in all.
LOOP_STOP_TIMEOUT = 4.0
HTTP_STOP_TIMEOUT = 2.0
STARTUP_TIMEOUT = 15.0


def check_settings(settings: Settings, role: str) -> None:
    """``ConfigError`` naming the first missing setting the role needs."""
    if role not in REQUIRED:
        raise ValueError(f"unknown role {role!r}")
    settings.require(*REQUIRED[role])


def run_service(settings: Settings, role: str = "all") -> int:
    """``notifier serve``: run ``role`` until SIGTERM / SIGINT; the exit code."""
    check_settings(settings, role)
    configure_logging(settings)
    return asyncio.run(Service(settings, role).run())


@dataclass(frozen=True)
class Running:
    """What ``on_ready`` is given once the service listens."""

    url: str
    deps: AppDeps


def instance_id() -> str:
    """A name for this process among replicas (lease owner, consumer name): host, pid, a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service decides when the server stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Service:
    def __init__(
        self,
        settings: Settings,
        role: str = "all",
        *,
        on_ready: Callable[[Running], Awaitable[None] | None] | None = None,
        handle_signals: bool = True,
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        self.settings = settings
        self.role = role
        self.stop = asyncio.Event()
        self.readiness = Readiness()
        self._on_ready = on_ready
        self._handle_signals = handle_signals
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._signals = 0
        self._first_signal = 0.0
        self._server: uvicorn.Server | None = None

    def request_stop(self, reason: str = "stop requested") -> None:
        now = time.monotonic()
        if self._signals and now - self._first_signal < REPEAT_GRACE:
            return  # the same Ctrl-C, delivered twice (a terminal signals `uv run` and its child alike)
        self._signals += 1
        if self._signals == 1:
            self._first_signal = now
            log.info("%s: draining", reason)
            self.readiness.draining()
            self.stop.set()
        else:
            log.warning("%s again: cancelling what still runs", reason)
            for name, task in self._tasks.items():
                if name != "http":
                    task.cancel()
            if self._server is not None:
                self._server.force_exit = True

    def _install_signals(self) -> list[int]:
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.request_stop, sig.name)
                installed.append(sig)
        return installed

    async def run(self) -> int:
        installed = self._install_signals() if self._handle_signals else []
        try:
            async with AsyncExitStack() as stack:
                return await self._run(stack)
        finally:
            loop = asyncio.get_running_loop()
            for sig in installed:
                loop.remove_signal_handler(sig)
            log.info("stopped")

    async def _run(self, stack: AsyncExitStack) -> int:
        s = self.settings
        role = self.role
        owner = instance_id()
        redis_url = s.redis_url
        if not redis_url:
            embedded = EmbeddedRedis(s.data_dir)
            await asyncio.to_thread(embedded.start)
            stack.push_async_callback(asyncio.to_thread, embedded.stop)
            redis_url = embedded.url
            log.info("embedded redis-server started on 127.0.0.1:%d, data in %s", embedded.port, s.data_dir)
        redis = connect_redis(redis_url)
        stack.push_async_callback(redis.aclose)
        await self._first_ping(redis)

        metrics = Metrics.create()
        with contextlib.suppress(ValueError):  # the collector exists only where /proc does
            ProcessCollector(registry=metrics.registry)
        keys = Keys(s.key_prefix)
        loops: dict[str, Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = {}

        if role in ("all", "poller"):
            client = PartnerClient.from_settings(s, metrics)
            stack.push_async_callback(client.aclose)
            loops["poller"] = Poller(client, redis, keys, s, metrics, owner=owner).run
        sender: AppriseSender | None = None
        if role in ("all", "api", "dispatcher"):
            sender = AppriseSender()
            stack.push_async_callback(sender.aclose)
        if role in ("all", "dispatcher"):
            loops["dispatcher"] = Dispatcher(redis, keys, s, metrics, consumer=owner, sender=sender).run

        deps = AppDeps(
            redis=redis,
            keys=keys,
            settings=s,
            metrics=metrics,
            subscriptions=SubscriptionStore(redis, keys),
            deliveries=DeliveryStore(redis, keys),
            snapshots=SnapshotStore(redis, keys),
            send_test=subscription_test_sender(sender, s.send_timeout) if sender is not None else None,
            readiness=self.readiness,
            admin_api=role in ("all", "api"),
            needs_poller=role != "dispatcher",
        )
        try:
            sock = bind_socket(s.host, s.port)
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", s.host, s.port, exc.strerror or exc)
            return 1
        stack.callback(sock.close)
        config = uvicorn.Config(
            create_app(deps),
            log_config=None,
            access_log=s.log_level == "debug",
            timeout_graceful_shutdown=int(HTTP_STOP_TIMEOUT),
            lifespan="on",
            server_header=False,
        )
        server = self._server = _Server(config)

        for name, loop in loops.items():
            self._tasks[name] = asyncio.create_task(loop(self.stop), name=name)
        self._tasks["http"] = asyncio.create_task(server.serve(sockets=[sock]), name="http")
        try:
            return await self._supervise(server, deps, sock)
        finally:
            await self._shutdown(server)

    async def _first_ping(self, redis: aioredis.Redis) -> None:
        try:
            await asyncio.wait_for(redis.ping(), 5.0)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("redis does not answer yet (%s); the loops retry on their own", type(exc).__name__)

    async def _supervise(self, server: uvicorn.Server, deps: AppDeps, sock: socket.socket) -> int:
        if not await self._wait_started(server):
            return 0 if self.stop.is_set() else 1
        host, port = sock.getsockname()[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = f"http://{shown}:{port}"
        self.readiness.running()
        log.info("serving role %s on %s (docs %s/schema, metrics %s/metrics)", self.role, url, url, url)
        if self._on_ready is not None:
            maybe = self._on_ready(Running(url=url, deps=deps))
            if maybe is not None:
                await maybe
        stopper = asyncio.create_task(self.stop.wait(), name="stop")
        try:
            done, _ = await asyncio.wait([stopper, *self._tasks.values()], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if stopper in done:
            return 0
        for name, task in self._tasks.items():
            if task.done():
                failure = None if task.cancelled() else task.exception()
                log.error("%s stopped unexpectedly; shutting down", name, exc_info=failure)
        self.request_stop("a part stopped")
        return 1

    async def _wait_started(self, server: uvicorn.Server) -> bool:
        http = self._tasks["http"]
        deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT
        while not server.started:
            if http.done() or self.stop.is_set() or asyncio.get_running_loop().time() > deadline:
                if not self.stop.is_set():
                    log.error("the HTTP server did not start")
                return False
            await asyncio.sleep(0.02)
        return True

    async def _shutdown(self, server: uvicorn.Server) -> None:
        self.readiness.draining()
        self.stop.set()
        loops = [t for name, t in self._tasks.items() if name != "http"]
        if loops:
            _, pending = await asyncio.wait(loops, timeout=LOOP_STOP_TIMEOUT)
            for task in pending:
                log.warning("%s did not stop within %.0f s; cancelled", task.get_name(), LOOP_STOP_TIMEOUT)
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
        server.should_exit = True
        http = self._tasks["http"]
        _, pending = await asyncio.wait([http], timeout=HTTP_STOP_TIMEOUT + 1.0)
        if pending:
            server.force_exit = True
            http.cancel()
        (outcome,) = await asyncio.gather(http, return_exceptions=True)
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            log.error("the HTTP server failed: %s", type(outcome).__name__)


def subscription_test_sender(
    sender: Sender, time_limit: float
) -> Callable[[Subscription], Awaitable[list[TestOutcome]]]:
    """``POST /subscriptions/{id}/test``: a test notification to each URL of the subscription, with ``sender``."""

    async def send_test(sub: Subscription) -> list[TestOutcome]:
        label = f"subscription '{sub.name}'"
        results = await send_tests(sub.urls, time_limit=time_limit, label=label, sender=sender)
        return [TestOutcome(url_index=i, ok=r.ok, error=r.error) for i, r in enumerate(results)]

    return send_test
