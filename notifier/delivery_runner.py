"""Sending due deliveries: claimed atomically, bounded per target and in all, fair between targets.

The due loop looks at ``{p}deliveries:due`` (up to ``scan_limit`` deliveries per look) and queues what is due
per *target* (one URL of one subscription). Sends start from those queues while the target has fewer than
``per_target`` in flight and the process fewer than ``max_in_flight``; a busy target is passed over, never
waited for, so a slow or dead target delays no other. When a send ends, the next of its target's queue starts
at once; the loop looks at Redis again when queues run dry, when new deliveries were created, or every
``poll_interval``.

Sends claim their deliveries atomically first, so a delivery is sent by one dispatcher at a time across all
replicas; claims and outcomes that arrive together (a send that ends frees a slot for the next) go to Redis in
one call (``DeliveryStore.finish_and_claim``: the outcomes are recorded, then the claims taken). A claim lasts
the send timeout plus ``claim_margin``: how long a delivery whose sender died waits before another replica
sends it.

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
from typing import Any

from redis.exceptions import RedisError

from notifier.config import Settings
from notifier.dispatch_plan import after_attempt
from notifier.metrics import Metrics
from notifier.models import Delivery
from notifier.senders.apprise_sender import Outgoing, Sender
from notifier.store.deliveries import DeliveryStore, Payload

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


def retry_delay(failures: int, ceiling: float, rng: random.Random) -> float:
    """Seconds to wait after ``failures`` Redis failures in a row: doubling from 0.2 s up to ``ceiling``, jittered."""
    return min(ceiling, 0.1 * 2.0 ** min(failures, 10)) * rng.uniform(0.5, 1.0)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


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
        self._to_finish: list[tuple[Delivery, str, asyncio.Future[bool]]] = []
        self._to_claim: list[tuple[list[str], str, asyncio.Future[dict[str, tuple[Delivery, Payload]]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        #: Sends that are over, whose outcome is being written.
        self._recording: set[asyncio.Task[None]] = set()
        self._closed = False
        self._start_scheduled = False
        #: Claim tokens are this process's nonce and a counter (unique without a system call per claim).
        self._nonce = uuid.uuid4().hex[:12]
        self._claims = 0
        self._results = {r: metrics.notifications.labels(result=r) for r in ("sent", "retry", "dead")}

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
                await pause(stop, retry_delay(failures, self._opts.backoff_max, self._rng))
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

    def _start_ready(self) -> None:
        """Start what the queues allow: up to ``per_target`` per target, ``max_in_flight`` in all."""
        if self._closed:
            return
        targets = list(self._ready)
        self._ready = {t: self._ready[t] for t in [*targets[1:], *targets[:1]]}  # rotate: fair between targets
        picked: list[tuple[str, str]] = []
        for target in targets:
            queue = self._ready[target]
            while queue and self._per_target[target] < self._opts.per_target:
                if len(self.inflight) + len(picked) >= self._opts.max_in_flight:
                    break
                did = queue.popleft()
                self._queued.discard(did)
                self._per_target[target] += 1
                picked.append((did, target))
            if not queue:
                del self._ready[target]
        if picked:
            task = asyncio.create_task(self._claim_and_send(picked), name="claim")
            for did, _ in picked:
                self.inflight[did] = task

    def tasks(self) -> list[asyncio.Task[None]]:
        """Every task of this runner that may still run (sends, claims, the outcome writer)."""
        found = {id(t): t for t in [*self.inflight.values(), *self._recording]}
        if self._flusher is not None:
            found[id(self._flusher)] = self._flusher
        return list(found.values())

    def _done(self, delivery_id: str, target: str) -> None:
        self.inflight.pop(delivery_id, None)
        self._per_target[target] -= 1
        if self._per_target[target] <= 0:
            del self._per_target[target]
        if not self._start_scheduled:  # sends that end in one turn of the loop start their successors together
            self._start_scheduled = True
            asyncio.get_running_loop().call_soon(self._start_soon)

    def _start_soon(self) -> None:
        self._start_scheduled = False
        self._start_ready()
        if not self._ready:
            self.wake.set()

    async def _claim_and_send(self, picked: list[tuple[str, str]]) -> None:
        self._claims += 1
        token = f"{self._consumer}:{self._nonce}:{self._claims}"
        ids = [did for did, _ in picked]
        try:
            got = await self._claim(ids, token)
        except (RedisError, OSError) as exc:
            log.warning("claiming deliveries failed: Redis unavailable (%s); they will be retried", type(exc).__name__)
            got = {}
        except asyncio.CancelledError:
            for did, target in picked:
                self._done(did, target)
            raise
        unused: list[str] = []
        for did, target in picked:
            if did in got and not self._closed:
                delivery, payload = got[did]
                self.inflight[did] = asyncio.create_task(
                    self._send_one(delivery, payload, target, token), name=f"send-{did}"
                )
            else:
                if did in got:
                    unused.append(did)
                self._done(did, target)
        if unused:  # stopping: give the claims back so another replica sends at once
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*(self._store.release(did, token=token) for did in unused)), 1.0)

    async def _send_one(self, delivery: Delivery, payload: Payload, target: str, token: str) -> None:
        recording: asyncio.Task[None] | None = None
        try:
            message = Outgoing(
                url=payload.url,
                title=payload.title,
                body=payload.body,
                level=payload.level,
                message_id=delivery.id,
                data=payload.data.encode(),
            )
            started = time.perf_counter()
            result = await self._sender.send(message, time_limit=self._settings.send_timeout)
            self._metrics.notification_duration.observe(time.perf_counter() - started)
            updated, outcome = after_attempt(
                delivery,
                result.ok,
                result.error,
                now=self._clock(),
                schedule=self._settings.retry_schedule,
                jitter=self._rng.uniform(0.8, 1.2),
            )
            # The send is over: its slot goes to the next delivery while the outcome is being recorded.
            recording = asyncio.current_task()
            if recording is not None:
                self._recording.add(recording)
            self._done(delivery.id, target)
            await self._finish(updated, token)
            self._results[outcome].inc()
            if outcome == "sent":
                self._target_of.pop(delivery.id, None)
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
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._store.release(delivery.id, token=token), 1.0)
            raise
        except (RedisError, OSError) as exc:
            log.warning("delivery %s: Redis unavailable (%s); it will be retried", delivery.id, type(exc).__name__)
        finally:
            if recording is not None:
                self._recording.discard(recording)
            else:
                self._done(delivery.id, target)

    async def _finish(self, delivery: Delivery, token: str) -> bool:
        """Record an outcome; outcomes that arrive together are written in one Redis call."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._to_finish.append((delivery, token, future))
        self._flush_soon()
        return await future

    async def _claim(self, ids: list[str], token: str) -> dict[str, tuple[Delivery, Payload]]:
        """Claim ``ids`` with ``token``; claims and outcomes that arrive together share one Redis call."""
        future: asyncio.Future[dict[str, tuple[Delivery, Payload]]] = asyncio.get_running_loop().create_future()
        self._to_claim.append((ids, token, future))
        self._flush_soon()
        return await future

    def _flush_soon(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="record-outcomes")

    async def _flush(self) -> None:
        """Write the outcomes, then take the claims, queued so far: one Redis call per batch."""
        await asyncio.sleep(0)  # let the outcomes and claims of this turn of the loop join the batch
        lease = self._settings.send_timeout + self._opts.claim_margin
        while self._to_finish or self._to_claim:
            finishing, self._to_finish = self._to_finish, []
            claiming = [c for c in self._to_claim if not c[2].done()]  # a cancelled claimer takes nothing
            self._to_claim = []
            futures: list[asyncio.Future[Any]] = [f for _, _, f in finishing] + [f for _, _, f in claiming]
            try:
                results, got = await self._store.finish_and_claim(
                    [(d, t) for d, t, _ in finishing],
                    [(did, token) for ids, token, _ in claiming for did in ids],
                    now=self._clock(),
                    lease=lease,
                )
            except BaseException as exc:
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, _, done), recorded in zip(finishing, results, strict=True):
                if not done.done():
                    done.set_result(recorded)
            for ids, _, claimed in claiming:
                if not claimed.done():
                    claimed.set_result({did: got[did] for did in ids if did in got})
