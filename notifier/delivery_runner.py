"""Sending due deliveries: claimed one by one, bounded per target and in all, fair between targets.

The due loop looks at ``{p}deliveries:due`` (up to ``scan_limit`` deliveries per look) and queues what is due
per *target* (one URL of one subscription). Sends start from those queues while the target has fewer than
``per_target`` in flight and the process fewer than ``max_in_flight``; a busy target is passed over, never
waited for, so a slow or dead target delays no other. When a send ends, the next of its target's queue starts
at once; the loop looks at Redis again when queues run dry, when new deliveries were created, or every
``poll_interval``.

Each send claims its delivery atomically first (``DeliveryStore.claim``), so a delivery is sent by one
dispatcher at a time across all replicas; the claim lasts the send timeout plus ``claim_margin``, which is how
long a delivery whose sender died waits before another replica sends it.

Must not import: httpx, litestar, the poller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from notifier.config import Settings
from notifier.dispatch_plan import after_attempt
from notifier.metrics import Metrics
from notifier.senders.apprise_sender import Outgoing, Sender
from notifier.store.deliveries import DeliveryStore

log = logging.getLogger("notifier.dispatcher")


@dataclass(frozen=True)
class DispatchOptions:
    """Tuning of the dispatcher; the defaults suit production, tests shorten the intervals."""

    #: Stream entries read at once.
    batch_size: int = 100
    #: Seconds XREADGROUP blocks waiting for new entries.
    block: float = 0.5
    #: Seconds an entry stays pending with a consumer before another replica takes it over.
    claim_min_idle: float = 60.0
    #: Seconds between looks for due deliveries when nothing wakes the due loop earlier.
    poll_interval: float = 0.5
    max_in_flight: int = 64
    #: Sends in flight to one URL of one subscription.
    per_target: int = 4
    #: Seconds a claim outlives the send timeout (time to record the outcome); after a crash, how long a
    #: delivery being sent waits before another replica sends it.
    claim_margin: float = 5.0
    #: Due deliveries looked at per look at most.
    scan_limit: int = 10_000
    #: Deliveries queued per target at most (the rest stay in Redis for a later look).
    queue_per_target: int = 64
    file_poll_interval: float = 2.0
    gauge_interval: float = 5.0
    prune_interval: float = 300.0
    backoff_max: float = 5.0


_PAGE = 1000
_TARGET_CACHE = 50_000


class DeliveryRunner:
    def __init__(
        self,
        store: DeliveryStore,
        sender: Sender,
        settings: Settings,
        metrics: Metrics,
        options: DispatchOptions,
        *,
        consumer: str,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self._store = store
        self._sender = sender
        self._settings = settings
        self._metrics = metrics
        self._opts = options
        self._consumer = consumer
        self._clock = clock
        self._rng = rng
        #: Set to make the due loop look at Redis now (new deliveries were created, queues ran dry).
        self.wake = asyncio.Event()
        self.inflight: dict[str, asyncio.Task[None]] = {}
        self._per_target: Counter[str] = Counter()
        self._ready: dict[str, deque[str]] = {}
        self._queued: set[str] = set()
        self._target_of: OrderedDict[str, str] = OrderedDict()
        self._closed = False

    def close(self) -> None:
        """Start no more sends (shutdown); sends in flight go on."""
        self._closed = True
        self._ready.clear()
        self._queued.clear()

    async def run(self, stop: asyncio.Event) -> None:
        """Send due deliveries until ``stop`` is set; Redis errors are logged and retried with backoff."""
        failures = 0
        next_gauges = next_prune = 0.0
        while not stop.is_set():
            self.wake.clear()
            try:
                await self._look()
                mono = time.monotonic()
                if mono >= next_gauges:
                    counts = await self._store.counts()
                    self._metrics.delivery_backlog.set(counts["backlog"])
                    self._metrics.dead_deliveries.set(counts["dead"])
                    next_gauges = mono + self._opts.gauge_interval
                if mono >= next_prune:
                    await self._store.prune_sent(before=self._clock() - self._settings.retention)
                    next_prune = mono + self._opts.prune_interval
                failures = 0
            except (RedisError, OSError) as exc:
                failures += 1
                log.warning("Redis unavailable for due deliveries (%s); retrying", type(exc).__name__)
                delay = min(self._opts.backoff_max, 0.1 * 2.0 ** min(failures, 10)) * self._rng.uniform(0.5, 1.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_or_stop(stop), self._opts.poll_interval)

    async def _wake_or_stop(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _look(self) -> None:
        """Queue what is due per target (targets learned once per delivery), then start what may start."""
        now = self._clock()
        offset = 0
        while offset < self._opts.scan_limit:
            ids = await self._store.due_ids(now, offset=offset, count=_PAGE)
            offset += len(ids)
            fresh = [i for i in ids if i not in self.inflight and i not in self._queued]
            unknown = [i for i in fresh if i not in self._target_of]
            for did, d in zip(unknown, await self._store.get_many(unknown), strict=True):
                if d is not None:
                    self._remember(did, f"{d.subscription_id}/{d.url_index}")
            for did in fresh:
                target = self._target_of.get(did)
                if target is None:
                    continue
                queue = self._ready.setdefault(target, deque())
                if len(queue) < self._opts.queue_per_target:
                    queue.append(did)
                    self._queued.add(did)
            if len(ids) < _PAGE:
                break
        self._start_ready()

    def _remember(self, delivery_id: str, target: str) -> None:
        self._target_of[delivery_id] = target
        if len(self._target_of) > _TARGET_CACHE:
            self._target_of.popitem(last=False)

    def _start_ready(self, first: str | None = None) -> None:
        if self._closed:
            return
        targets = list(self._ready)
        if first is not None and first in self._ready:
            targets.remove(first)
            targets.insert(0, first)
        for target in targets:
            queue = self._ready.get(target)
            while queue and self._per_target[target] < self._opts.per_target:
                if len(self.inflight) >= self._opts.max_in_flight:
                    return
                did = queue.popleft()
                self._queued.discard(did)
                self._per_target[target] += 1
                self.inflight[did] = asyncio.create_task(self._send_one(did, target), name=f"send-{did}")
            if queue is not None and not queue:
                del self._ready[target]

    async def _send_one(self, delivery_id: str, target: str) -> None:
        token = f"{self._consumer}:{uuid.uuid4().hex}"
        time_limit = self._settings.send_timeout
        claimed = False
        try:
            got = await self._store.claim(
                delivery_id, token=token, now=self._clock(), lease=time_limit + self._opts.claim_margin
            )
            if got is None:
                return
            claimed = True
            delivery, payload = got
            message = Outgoing(
                url=payload.url,
                title=payload.title,
                body=payload.body,
                level=payload.level,
                message_id=delivery.id,
                data=payload.data.encode(),
            )
            started = time.perf_counter()
            result = await self._sender.send(message, time_limit=time_limit)
            self._metrics.notification_duration.observe(time.perf_counter() - started)
            updated, outcome = after_attempt(
                delivery,
                result.ok,
                result.error,
                now=self._clock(),
                schedule=self._settings.retry_schedule,
                jitter=self._rng.uniform(0.8, 1.2),
            )
            await self._store.finish(updated, token=token, at=self._clock())
            claimed = False
            self._metrics.notifications.labels(result=outcome).inc()
            if outcome == "sent":
                self._target_of.pop(delivery_id, None)
                log.debug("delivery %s sent to %s", delivery.id, delivery.target)
            else:
                log.warning(
                    "delivery %s to %s failed (attempt %d, %s): %s",
                    delivery.id,
                    delivery.target,
                    updated.attempts,
                    "dead" if outcome == "dead" else "will retry",
                    result.error,
                )
        except asyncio.CancelledError:
            if claimed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._store.release(delivery_id, token=token), 1.0)
            raise
        except (RedisError, OSError) as exc:
            log.warning("delivery %s: Redis unavailable (%s); it will be retried", delivery_id, type(exc).__name__)
        finally:
            self.inflight.pop(delivery_id, None)
            self._per_target[target] -= 1
            if self._per_target[target] <= 0:
                del self._per_target[target]
            self._start_ready(first=target)
            if not self._ready:
                self.wake.set()
