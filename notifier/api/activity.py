"""Admin API: what happened and what was sent. ``GET /events`` (newest first), ``GET /deliveries``, replay.

Events are read straight from the stream with XREVRANGE; a ``type`` filter scans at most ``SCAN_MAX`` entries
per request and hands back ``next_before`` to continue from. Deliveries carry their target URL already masked.

Must not import: the poller, the dispatcher.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.exceptions import ValidationException
from litestar.params import FromPath, QueryParameter

from notifier.api.deps import AppDeps
from notifier.api.responses import Limit, Offset, errors
from notifier.api.schemas import DeliveryPage, EventPage
from notifier.errors import RecordNotFound
from notifier.models import EVENT_TYPES, Delivery, Event
from notifier.store.connect import text
from notifier.store.deliveries import STATUSES
from notifier.store.events import decode_entry

log = logging.getLogger("notifier.api")

#: Stream entries read per XREVRANGE call, and at most per request.
CHUNK = 500
SCAN_MAX = 20_000
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")

EventType = Annotated[
    str | None,
    QueryParameter(name="type", description=f"Only events of this type: {', '.join(EVENT_TYPES)}.", max_length=64),
]
Before = Annotated[
    str | None,
    QueryParameter(
        description="Only events older than this stream id (`next_before` of the previous page).", max_length=64
    ),
]
Status = Annotated[str | None, QueryParameter(description=f"One of {', '.join(STATUSES)}.", max_length=32)]
SubscriptionId = Annotated[
    str | None, QueryParameter(description="Only deliveries of this subscription.", max_length=200)
]


def _invalid(field: str, message: str) -> ValidationException:
    return ValidationException(detail="invalid query", extra=[{"key": field, "message": message, "source": "query"}])


def _check_choice(field: str, value: str | None, allowed: Sequence[str], what: str) -> None:
    """A 422 naming ``field`` when ``value`` is given and not one of ``allowed``."""
    if value is not None and value not in allowed:
        raise _invalid(field, f"unknown {what} {value!r}; valid: {', '.join(allowed)}")


def activity_controllers(deps: AppDeps) -> list[type[Controller]]:
    redis = deps.redis
    stream = deps.keys.events

    async def read_events(event_type: str | None, limit: int, before: str | None) -> EventPage:
        items: list[Event] = []
        upper = f"({before}" if before else "+"
        scanned = 0
        last_id: str | None = None
        while scanned < SCAN_MAX:
            count = CHUNK if event_type else min(CHUNK, limit - len(items))
            entries = await redis.xrevrange(stream, max=upper, min="-", count=count)
            if not entries:
                return EventPage(items=items, next_before=None)
            for raw_id, fields in entries:
                last_id = text(raw_id or b"")
                scanned += 1
                if not fields:
                    continue
                if event_type and text(fields.get(b"type") or b"") != event_type:
                    continue
                try:
                    items.append(decode_entry(fields))
                except (msgspec.DecodeError, ValueError):
                    log.warning("event stream entry %s cannot be read and is skipped", last_id)
                    continue
                if len(items) >= limit:
                    return EventPage(items=items, next_before=last_id)
            if len(entries) < count:
                return EventPage(items=items, next_before=None)
            upper = f"({last_id}"
        return EventPage(items=items, next_before=last_id)

    class EventController(Controller):
        path = "/events"
        tags = ["events"]

        @get(
            "/",
            summary="Recent transitions, newest first",
            description="Filter by `type`; page back with `before` = the `next_before` of the previous answer.",
            responses=errors(422),
        )
        async def list_events(
            self,
            limit: Limit = 50,
            event_type: EventType = None,
            before: Before = None,
        ) -> EventPage:
            _check_choice("type", event_type, EVENT_TYPES, "event type")
            if before is not None and not _STREAM_ID.match(before):
                raise _invalid("before", "must be a stream id such as 1718000000000-0")
            return await read_events(event_type, limit, before)

    class DeliveryController(Controller):
        path = "/deliveries"
        tags = ["deliveries"]

        @get(
            "/",
            summary="Delivery attempts, newest first",
            description="`target` is the URL in its masked form. Filter by `status` and `subscription_id`.",
            responses=errors(422),
        )
        async def list_deliveries(
            self,
            limit: Limit = 50,
            offset: Offset = 0,
            status: Status = None,
            subscription_id: SubscriptionId = None,
        ) -> DeliveryPage:
            _check_choice("status", status, STATUSES, "delivery status")
            items, total = await deps.deliveries.list(
                status=status, subscription_id=subscription_id or None, limit=limit, offset=offset
            )
            return DeliveryPage(items=items, total=total, limit=limit, offset=offset)

        @get("/{delivery_id:str}", summary="Get a delivery", responses=errors(404))
        async def get_delivery(self, delivery_id: FromPath[str]) -> Delivery:
            found = await deps.deliveries.get(delivery_id)
            if found is None:
                raise RecordNotFound("delivery", delivery_id)
            return found

        @post(
            "/{delivery_id:str}/retry",
            summary="Re-queue a dead delivery",
            description="Sends it again now, with a fresh retry budget. 409 unless the delivery is dead.",
            status_code=200,
            responses=errors(404, 409),
        )
        async def retry(self, delivery_id: FromPath[str]) -> Delivery:
            return await deps.deliveries.retry(delivery_id, now=deps.clock())

    return [EventController, DeliveryController]
