"""The event stream as the dispatchers read it: one consumer group, takeover of stuck entries, whole cycles.

``DispatchStream`` wraps the consumer-group commands for one consumer: ``ensure_group`` (a new group starts
at the dispatch watermark, the highest stream id whose deliveries were already created, or at the start of
the stream: nothing written before the group existed is skipped, nothing done is done again), ``read``
(XREADGROUP: ``">"`` for new entries, ``"0"`` for this consumer's own unacknowledged ones), ``autoclaim``
(XAUTOCLAIM of entries another consumer left pending longer than ``claim_min_idle``) and ``whole_run``,
which grows a run of entries to all the consecutive entries of its poll cycle (the poller appends one
cycle in one atomic step, so they are adjacent in the stream).

Entries are returned as ``StreamEvent``; one that cannot be decoded comes back as ``None`` so the caller can
acknowledge it without delivering.

Must not import: httpx, apprise, litestar, prometheus_client, the poller or the dispatcher.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from notifier.models import Event
from notifier.store.connect import text
from notifier.store.events import decode_entry
from notifier.store.keys import DISPATCH_GROUP, Keys

log = logging.getLogger("notifier.dispatcher")

Entry = tuple[str, "StreamEvent | None"]


@dataclass(frozen=True)
class StreamEvent:
    """One entry of the event stream."""

    stream_id: str
    batch: str
    event: Event


class DispatchStream:
    def __init__(
        self, redis: aioredis.Redis, keys: Keys, consumer: str, *, batch_size: int, claim_min_idle: float
    ) -> None:
        self._redis = redis
        self._keys = keys
        self.consumer = consumer
        self._batch_size = batch_size
        self._min_idle_ms = max(1, int(claim_min_idle * 1000))
        self._claim_cursor = "0-0"

    async def ensure_group(self) -> None:
        start = await self._redis.get(self._keys.dispatch_watermark)
        first = text(start) if start else "0"
        try:
            await self._redis.xgroup_create(self._keys.events, DISPATCH_GROUP, id=first, mkstream=True)
            log.info("created consumer group %s at %s", DISPATCH_GROUP, first)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, start: str, *, block: float | None) -> list[Entry]:
        block_ms = int(block * 1000) if block is not None else None
        reply: Any = await self._redis.xreadgroup(
            DISPATCH_GROUP, self.consumer, {self._keys.events: start}, count=self._batch_size, block=block_ms
        )
        if not reply:
            return []
        return [_entry(sid, fields) for sid, fields in reply[0][1]]

    async def autoclaim(self) -> list[Entry]:
        reply: Any = await self._redis.xautoclaim(
            self._keys.events,
            DISPATCH_GROUP,
            self.consumer,
            min_idle_time=self._min_idle_ms,
            start_id=self._claim_cursor,
            count=self._batch_size,
        )
        self._claim_cursor = text(reply[0]) if reply else "0-0"
        entries = [_entry(sid, fields) for sid, fields in (reply[1] if reply else [])]
        entries += [(text(sid), None) for sid in (reply[2] if reply and len(reply) > 2 else [])]
        if entries:
            log.info("took over %d event(s) left pending by another dispatcher", len(entries))
        return entries

    async def whole_run(
        self, run: list[StreamEvent], *, back: bool, forward: bool, contiguous: bool
    ) -> list[StreamEvent]:
        """``run`` grown to every consecutive stream entry of its batch (``contiguous``: no gaps inside)."""
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
                _, parsed = _entry(sid, fields)
                if parsed is None or parsed.batch != batch:
                    return found
                found.append(parsed)
            if len(page) < count:
                return found
            start = text(page[-1][0])
            count = min(count * 2, 1024)


def _entry(sid: bytes | str, fields: Any) -> Entry:
    stream_id = text(sid)
    if not fields:
        return stream_id, None
    try:
        event = decode_entry(fields)
    except (ValueError, msgspec.DecodeError):
        return stream_id, None
    batch = fields.get(b"batch", fields.get("batch", b""))
    return stream_id, StreamEvent(stream_id=stream_id, batch=text(batch), event=event)


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """Sort key of a stream id (``ms-seq``)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
