"""The dispatcher: event stream -> deliveries -> notifications, shared by any number of replicas.

Two loops and, when a subscriptions file is configured, its watcher:

- **ingest** reads ``{p}events`` through the consumer group ``dispatchers`` (XREADGROUP; entries a dead
  replica left pending are taken over with XAUTOCLAIM after ``claim_min_idle``), plans the deliveries of each
  event (``dispatch_plan``) and creates them *and* acknowledges the entries in one atomic step. Delivery ids
  are derived from (event, subscription, URL index), so an entry handled twice creates nothing new.
- **due** picks deliveries whose time has come, claims each atomically (one sender per delivery across all
  replicas), sends it and records the outcome: sent, failed with the next attempt scheduled (backoff with
  jitter on ``NOTIFIER_RETRY_SCHEDULE``), or dead. At most ``per_target`` sends per URL and ``max_in_flight``
  in all run at once, and a busy URL is skipped rather than waited for, so a slow target delays no other.

A new consumer group starts at the stream id up to which deliveries were already created (the watermark),
or at the beginning of the stream: no event written before the group existed is lost, none sent twice.
Redis errors never end the loops: they log, back off and resume. The guarantee is at-least-once: a crash
between a send and its record sends again, with the same ``webhook-id`` (the delivery id).

Must not import: httpx, litestar, the poller.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from notifier.config import Settings
from notifier.dispatch_plan import StreamEvent, plan_run, split_runs
from notifier.metrics import Metrics
from notifier.models import Delivery, DeliveryStatus, Subscription, format_ts
from notifier.senders.apprise_sender import AppriseSender, Outgoing, Sender
from notifier.senders.sendtest import test_outgoing
from notifier.senders.urls import mask_url
from notifier.store.deliveries import DeliveryStore, NewDelivery
from notifier.store.events import decode_entry
from notifier.store.keys import DISPATCH_GROUP, Keys
from notifier.store.subscriptions import SubscriptionStore
from notifier.subscriptions_file import SubscriptionsFileWatcher

log = logging.getLogger("notifier.dispatcher")


@dataclass(frozen=True)
class DispatchOptions:
    """Tuning; the defaults suit production, tests shorten the intervals."""

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
    #: Due deliveries looked at per round at most (skipping busy targets).
    scan_limit: int = 2000
    file_poll_interval: float = 2.0
    gauge_interval: float = 5.0
    prune_interval: float = 300.0
    backoff_max: float = 5.0


@dataclass(frozen=True)
class TestResult:
    url: str  # masked
    ok: bool
    error: str | None = None


def after_attempt(
    d: Delivery, ok: bool, error: str | None, *, now: float, schedule: Sequence[float], jitter: float
) -> tuple[Delivery, str]:
    """The delivery after one attempt and the metric result (sent, retry, dead). ``jitter`` in [0.8, 1.2]."""
    attempts = d.attempts + 1
    stamp = format_ts(datetime.fromtimestamp(now, UTC))
    if ok:
        sent = msgspec.structs.replace(
            d, status=DeliveryStatus.SENT.value, attempts=attempts, next_attempt_at=None, updated_at=stamp
        )
        return sent, "sent"
    if attempts > len(schedule):
        dead = msgspec.structs.replace(
            d,
            status=DeliveryStatus.DEAD.value,
            attempts=attempts,
            last_error=error,
            next_attempt_at=None,
            updated_at=stamp,
        )
        return dead, "dead"
    delay = schedule[attempts - 1] * jitter
    failed = msgspec.structs.replace(
        d,
        status=DeliveryStatus.FAILED.value,
        attempts=attempts,
        last_error=error,
        next_attempt_at=now + delay,
        updated_at=stamp,
    )
    return failed, "retry"


class Dispatcher:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        settings: Settings,
        metrics: Metrics,
        *,
        consumer: str,
        sender: Sender | None = None,
        clock: Callable[[], float] = time.time,
        options: DispatchOptions | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._settings = settings
        self._metrics = metrics
        self.consumer = consumer
        self._opts = options or DispatchOptions()
        self._own_sender = sender is None
        self._sender: Sender = sender or AppriseSender(max_workers=self._opts.max_in_flight + 8)
        self._clock = clock
        self._rng = rng or random.Random()
        self.subscriptions = SubscriptionStore(redis, keys)
        self.deliveries = DeliveryStore(redis, keys)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._per_target: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._claim_cursor = "0-0"
        self.watcher = (
            SubscriptionsFileWatcher(
                settings.subscriptions_file, self.subscriptions, interval=self._opts.file_poll_interval
            )
            if settings.subscriptions_file is not None
            else None
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop`` is set, then let sends in flight finish (up to the send timeout)."""
        loops = [
            asyncio.create_task(self._ingest_loop(stop), name="dispatch-ingest"),
            asyncio.create_task(self._due_loop(stop), name="dispatch-due"),
        ]
        if self.watcher is not None:
            loops.append(asyncio.create_task(self.watcher.run(stop), name="dispatch-subscriptions-file"))
        try:
            await stop.wait()
            await asyncio.gather(*loops)
            if self._inflight:
                await asyncio.wait(list(self._inflight.values()), timeout=self._settings.send_timeout + 1.0)
        finally:
            for task in [*loops, *self._inflight.values()]:
                task.cancel()
            await asyncio.gather(*loops, *self._inflight.values(), return_exceptions=True)
            if self._own_sender:
                await self._sender.aclose()

    async def send_test(self, sub: Subscription) -> builtins.list[TestResult]:
        """Send a test notification to every URL of ``sub`` now, in parallel."""

        async def one(url: str) -> TestResult:
            result = await self._sender.send(
                test_outgoing(url, label=f"subscription '{sub.name}'"), time_limit=self._settings.send_timeout
            )
            return TestResult(url=mask_url(url), ok=result.ok, error=result.error)

        return list(await asyncio.gather(*(one(url) for url in sub.urls)))

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    def _backoff(self, failures: int) -> float:
        base: float = min(self._opts.backoff_max, 0.1 * 2.0 ** min(failures, 10))
        return base * self._rng.uniform(0.5, 1.0)

    def _now(self) -> tuple[float, str]:
        now = self._clock()
        return now, format_ts(datetime.fromtimestamp(now, UTC))

    # -- ingest ------------------------------------------------------------------------------------

    async def _ensure_group(self) -> None:
        start = await self._redis.get(self._keys.dispatch_watermark)
        try:
            await self._redis.xgroup_create(self._keys.events, DISPATCH_GROUP, id=start or "0", mkstream=True)
            log.info("created consumer group %s at %s", DISPATCH_GROUP, _text(start) if start else "0")
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _ingest_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        need_group = True
        own_pending = True  # first take back what this consumer name left unacknowledged
        next_claim = 0.0
        claim_every = max(0.05, self._opts.claim_min_idle / 2)
        while not stop.is_set():
            try:
                if need_group:
                    await self._ensure_group()
                    need_group = False
                if own_pending:
                    entries = await self._read("0", block=None)
                    own_pending = bool(entries)
                    await self._handle(entries, contiguous=False)
                    continue
                if time.monotonic() >= next_claim:
                    claimed = await self._autoclaim()
                    await self._handle(claimed, contiguous=False)
                    if len(claimed) < self._opts.batch_size:
                        next_claim = time.monotonic() + claim_every
                    continue
                await self._handle(await self._read(">", block=self._opts.block), contiguous=True)
                failures = 0
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    need_group = True
                    continue
                failures += 1
                log.error("event stream read failed: %s", exc)
                await self._pause(stop, self._backoff(failures))
            except (RedisError, OSError) as exc:
                failures += 1
                need_group = True
                log.warning("Redis unavailable for the event stream (%s); retrying", type(exc).__name__)
                await self._pause(stop, self._backoff(failures))

    async def _read(self, start: str, *, block: float | None) -> builtins.list[tuple[str, Any]]:
        block_ms = int(block * 1000) if block is not None else None
        reply: Any = await self._redis.xreadgroup(
            DISPATCH_GROUP, self.consumer, {self._keys.events: start}, count=self._opts.batch_size, block=block_ms
        )
        if not reply:
            return []
        return [(_text(sid), fields) for sid, fields in reply[0][1]]

    async def _autoclaim(self) -> builtins.list[tuple[str, Any]]:
        reply: Any = await self._redis.xautoclaim(
            self._keys.events,
            DISPATCH_GROUP,
            self.consumer,
            min_idle_time=max(1, int(self._opts.claim_min_idle * 1000)),
            start_id=self._claim_cursor,
            count=self._opts.batch_size,
        )
        self._claim_cursor = _text(reply[0]) if reply else "0-0"
        entries = [(_text(sid), fields) for sid, fields in (reply[1] if reply else [])]
        deleted = [_text(sid) for sid in (reply[2] if reply and len(reply) > 2 else [])]
        if entries or deleted:
            log.info("took over %d event(s) left pending by another dispatcher", len(entries) + len(deleted))
        return entries + [(sid, None) for sid in deleted]

    async def _handle(self, entries: builtins.list[tuple[str, Any]], *, contiguous: bool) -> None:
        """Plan the deliveries of ``entries`` and create them with the acknowledgement, atomically."""
        if not entries:
            return
        events: list[StreamEvent] = []
        for sid, fields in entries:
            parsed = _parse(sid, fields)
            if parsed is None:
                log.error("event stream entry %s cannot be read; acknowledged without delivery", sid)
            else:
                events.append(parsed)
        subs = [s for s in await self.subscriptions.list_all() if s.enabled]
        now, now_iso = self._now()
        planned: dict[str, NewDelivery] = {}
        runs = split_runs(events)
        for i, run in enumerate(runs):
            full = run
            if subs and run[0].batch:
                back = not contiguous or i == 0
                forward = not contiguous or i == len(runs) - 1
                full = await self._full_run(run, back=back, forward=forward, contiguous=contiguous)
            plan = plan_run(full, {e.stream_id for e in run}, subs, now=now, now_iso=now_iso)
            for sub_id, problem in plan.template_errors:
                log.warning("template of subscription %s failed, default text sent: %s", sub_id, problem)
            planned.update((n.delivery.id, n) for n in plan.deliveries)
        ids = [sid for sid, _ in entries]
        created = await self.deliveries.create_and_ack(
            list(planned.values()), group=DISPATCH_GROUP, ack_ids=ids, watermark=max(ids, key=_id_key)
        )
        self._metrics.events_published.inc(len(events))
        if created:
            self._wake.set()

    async def _full_run(
        self, run: list[StreamEvent], *, back: bool, forward: bool, contiguous: bool
    ) -> list[StreamEvent]:
        """``run`` grown to every consecutive stream entry of its batch."""
        batch = run[0].batch
        before = await self._scan(batch, run[0].stream_id, reverse=True) if back else []
        if contiguous:
            after = await self._scan(batch, run[-1].stream_id, reverse=False) if forward else []
            return [*reversed(before), *run, *after]
        return [*reversed(before), run[0], *await self._scan(batch, run[0].stream_id, reverse=False)]

    async def _scan(self, batch: str, start: str, *, reverse: bool) -> list[StreamEvent]:
        found: list[StreamEvent] = []
        count = 16
        while True:
            page: Any
            if reverse:
                page = await self._redis.xrevrange(self._keys.events, max=f"({start}", min="-", count=count)
            else:
                page = await self._redis.xrange(self._keys.events, min=f"({start}", max="+", count=count)
            for sid, fields in page:
                parsed = _parse(_text(sid), fields)
                if parsed is None or parsed.batch != batch:
                    return found
                found.append(parsed)
            if len(page) < count:
                return found
            start = _text(page[-1][0])
            count = min(count * 2, 1024)

    # -- due deliveries ----------------------------------------------------------------------------

    async def _due_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        next_gauges = next_prune = 0.0
        while not stop.is_set():
            self._wake.clear()
            try:
                await self._launch_due()
                mono = time.monotonic()
                if mono >= next_gauges:
                    counts = await self.deliveries.counts()
                    self._metrics.delivery_backlog.set(counts["backlog"])
                    self._metrics.dead_deliveries.set(counts["dead"])
                    next_gauges = mono + self._opts.gauge_interval
                if mono >= next_prune:
                    await self.deliveries.prune_sent(before=self._clock() - self._settings.retention)
                    next_prune = mono + self._opts.prune_interval
                failures = 0
            except (RedisError, OSError) as exc:
                failures += 1
                log.warning("Redis unavailable for due deliveries (%s); retrying", type(exc).__name__)
                await self._pause(stop, self._backoff(failures))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_or_stop(stop), self._opts.poll_interval)

    async def _wake_or_stop(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _launch_due(self) -> None:
        capacity = self._opts.max_in_flight - len(self._inflight)
        offset = 0
        now = self._clock()
        page = max(self._opts.batch_size, self._opts.max_in_flight)
        while capacity > 0 and offset < self._opts.scan_limit:
            ids = await self.deliveries.due_ids(now, offset=offset, count=page)
            offset += len(ids)
            fresh = [i for i in ids if i not in self._inflight]
            for did, d in zip(fresh, await self.deliveries.get_many(fresh), strict=True):
                if d is None:
                    continue
                target = f"{d.subscription_id}/{d.url_index}"
                if self._per_target[target] >= self._opts.per_target:
                    continue
                self._per_target[target] += 1
                self._inflight[did] = asyncio.create_task(self._send_one(did, target), name=f"send-{did}")
                capacity -= 1
                if capacity == 0:
                    break
            if len(ids) < page:
                break

    async def _send_one(self, delivery_id: str, target: str) -> None:
        token = f"{self.consumer}:{uuid.uuid4().hex}"
        timeout = self._settings.send_timeout
        claimed = False
        try:
            got = await self.deliveries.claim(
                delivery_id, token=token, now=self._clock(), lease=timeout + self._opts.claim_margin
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
            result = await self._sender.send(message, time_limit=timeout)
            self._metrics.notification_duration.observe(time.perf_counter() - started)
            updated, outcome = after_attempt(
                delivery,
                result.ok,
                result.error,
                now=self._clock(),
                schedule=self._settings.retry_schedule,
                jitter=self._rng.uniform(0.8, 1.2),
            )
            await self.deliveries.finish(updated, token=token, at=self._clock())
            claimed = False
            self._metrics.notifications.labels(result=outcome).inc()
            if outcome == "sent":
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
                    await asyncio.wait_for(self.deliveries.release(delivery_id, token=token), 1.0)
            raise
        except (RedisError, OSError) as exc:
            log.warning("delivery %s: Redis unavailable (%s); it will be retried", delivery_id, type(exc).__name__)
        finally:
            self._inflight.pop(delivery_id, None)
            self._per_target[target] -= 1
            if self._per_target[target] <= 0:
                del self._per_target[target]
            self._wake.set()


def _parse(sid: str, fields: Any) -> StreamEvent | None:
    if not fields:
        return None
    try:
        event = decode_entry(fields)
    except (ValueError, msgspec.DecodeError):
        return None
    batch = fields.get(b"batch", fields.get("batch", b""))
    return StreamEvent(stream_id=sid, batch=_text(batch), event=event)


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
