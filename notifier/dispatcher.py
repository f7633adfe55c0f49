"""The dispatcher: event stream -> deliveries -> notifications, shared by any number of replicas.

Two loops and, when a subscriptions file is configured, its watcher:

- **ingest** reads ``{p}events`` through the consumer group ``dispatchers`` (XREADGROUP; entries a dead
  replica left pending are taken over with XAUTOCLAIM after ``claim_min_idle``), plans the deliveries of each
  event (``dispatch_plan``) and creates them *and* acknowledges the entries in one atomic step. Delivery ids
  are derived from (event, subscription, URL index), so an entry handled twice creates nothing new.
- **due** (``delivery_runner``) picks deliveries whose time has come, claims each atomically (one sender per
  delivery across all replicas), sends it and records the outcome: sent, failed with the next attempt
  scheduled (backoff with jitter on ``NOTIFIER_RETRY_SCHEDULE``), or dead. At most ``per_target`` sends per
  URL and ``max_in_flight`` in all run at once; a busy URL is passed over, so a slow target delays no other.

A new consumer group starts at the stream id up to which deliveries were already created (the watermark),
or at the beginning of the stream: no event written before the group existed is lost, none sent twice.
Redis errors never end the loops: they log, back off and resume. The guarantee is at-least-once: a crash
between a send and its record sends again, with the same ``webhook-id`` (the delivery id).

Must not import: httpx, litestar, the poller.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from notifier.config import Settings
from notifier.delivery_runner import DeliveryRunner, DispatchOptions, pause, retry_delay
from notifier.dispatch_plan import plan_run, split_runs
from notifier.metrics import Metrics
from notifier.models import format_ts
from notifier.senders.apprise_sender import AppriseSender, Sender
from notifier.store.deliveries import DeliveryStore, NewDelivery
from notifier.store.dispatch_stream import DispatchStream, Entry, StreamEvent, stream_id_key
from notifier.store.keys import DISPATCH_GROUP, Keys
from notifier.store.subscriptions import SubscriptionStore
from notifier.subscriptions_file import SubscriptionsFileWatcher

log = logging.getLogger("notifier.dispatcher")


class Dispatcher:
    """Event stream -> deliveries -> notifications. ``run(stop)`` until stopped."""

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
        self.runner = DeliveryRunner(
            self.deliveries,
            self._sender,
            settings,
            metrics,
            self._opts,
            consumer=consumer,
            clock=clock,
            rng=self._rng,
        )
        self.stream = DispatchStream(
            redis, keys, consumer, batch_size=self._opts.batch_size, claim_min_idle=self._opts.claim_min_idle
        )
        self.watcher = (
            SubscriptionsFileWatcher(
                settings.subscriptions_file, self.subscriptions, interval=self._opts.file_poll_interval
            )
            if settings.subscriptions_file is not None
            else None
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop`` is set, then let sends in flight finish (up to the send timeout).

        The loops stop on ``halt``, an event of this run, rather than by cancellation, which redis-py can swallow
        when it lands inside a command. A loop that ends on its own (they retry every Redis error, so only a bug
        ends one) halts the others and its exception is raised: the service sees the dispatcher stop instead of
        running with half of it.
        """
        halt = asyncio.Event()
        loops = [
            asyncio.create_task(self._ingest_loop(halt), name="dispatch-ingest"),
            asyncio.create_task(self.runner.run(halt), name="dispatch-due"),
        ]
        if self.watcher is not None:
            loops.append(asyncio.create_task(self.watcher.run(halt), name="dispatch-subscriptions-file"))
        stopping = asyncio.create_task(stop.wait(), name="dispatch-stop")
        try:
            await asyncio.wait([stopping, *loops], return_when=asyncio.FIRST_COMPLETED)
            halt.set()
            await asyncio.gather(*loops)
            self.runner.close()
            if self.runner.tasks():
                await asyncio.wait(self.runner.tasks(), timeout=self._settings.send_timeout + 1.0)
        finally:
            halt.set()
            stopping.cancel()
            self.runner.close()
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            sending = self.runner.tasks()
            for task in sending:
                task.cancel()
            await asyncio.gather(*sending, return_exceptions=True)
            if self._own_sender:
                await self._sender.aclose()

    def _now(self) -> tuple[float, str]:
        now = self._clock()
        return now, format_ts(datetime.fromtimestamp(now, UTC))

    # -- ingest ------------------------------------------------------------------------------------

    async def _ingest_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        need_group = True
        own_pending = True  # first take back what this consumer name left unacknowledged
        next_claim = 0.0
        claim_every = max(0.05, self._opts.claim_min_idle / 2)
        while not stop.is_set():
            try:
                if need_group:
                    await self.stream.ensure_group()
                    need_group = False
                if own_pending:
                    entries = await self.stream.read("0", block=None)
                    own_pending = bool(entries)
                    await self._handle(entries, contiguous=False)
                    continue
                if time.monotonic() >= next_claim:
                    claimed = await self.stream.autoclaim()
                    await self._handle(claimed, contiguous=False)
                    if len(claimed) < self._opts.batch_size:
                        next_claim = time.monotonic() + claim_every
                    continue
                await self._handle(await self.stream.read(">", block=self._opts.block), contiguous=True)
                failures = 0
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    need_group = True
                    continue
                failures += 1
                log.error("event stream read failed: %s", exc)
                await pause(stop, retry_delay(failures, self._opts.backoff_max, self._rng))
            except (RedisError, OSError) as exc:
                failures += 1
                need_group = True
                log.warning("Redis unavailable for the event stream (%s); retrying", type(exc).__name__)
                await pause(stop, retry_delay(failures, self._opts.backoff_max, self._rng))

    async def _handle(self, entries: builtins.list[Entry], *, contiguous: bool) -> None:
        """Plan the deliveries of ``entries`` and create them with the acknowledgement, atomically."""
        if not entries:
            return
        events: list[StreamEvent] = []
        for sid, parsed in entries:
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
                # A cycle's events are appended in one atomic step: a read that came back short holds all of the
                # last cycle it reached, so only a full read can have stopped inside one.
                forward = not contiguous or (i == len(runs) - 1 and len(entries) >= self._opts.batch_size)
                full = await self.stream.whole_run(run, back=back, forward=forward, contiguous=contiguous)
            plan = plan_run(full, {e.stream_id for e in run}, subs, now=now, now_iso=now_iso)
            for sub_id, problem in plan.template_errors:
                log.warning("template of subscription %s failed, default text sent: %s", sub_id, problem)
            planned.update((n.delivery.id, n) for n in plan.deliveries)
        ids = [sid for sid, _ in entries]
        created = await self.deliveries.create_and_ack(
            list(planned.values()), group=DISPATCH_GROUP, ack_ids=ids, watermark=max(ids, key=stream_id_key)
        )
        self._metrics.events_dispatched.inc(len(events))
        if created:
            self.runner.wake.set()
