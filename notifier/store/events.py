"""The event stream's entry format: how an ``Event`` is written to and read from ``{p}events``.

Each stream entry has the fields ``id`` (event id), ``type``, ``scope``, ``batch`` (the poll cycle that found
it: events of one cycle share it, which is how storm protection groups them) and ``event`` (the Event as
JSON).
The poller appends entries inside its atomic snapshot write (``store.snapshots``); the dispatcher reads them
through the ``dispatchers`` consumer group; ``GET /events`` reads them newest first.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from notifier.models import Event

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_event_json(data: bytes | str) -> Event:
    return _decoder.decode(data)


def event_fields(event: Event, batch: str = "") -> dict[str, bytes | str]:
    """The stream entry fields for ``event``, found by poll cycle ``batch``."""
    return {"id": event.id, "type": event.type, "scope": event.scope, "batch": batch, "event": encode_event(event)}


def decode_entry(fields: Mapping[bytes | str, bytes | str]) -> Event:
    """The Event stored in a stream entry (as returned by XRANGE / XREADGROUP)."""
    raw = fields.get(b"event", fields.get("event"))
    if raw is None:
        raise ValueError("stream entry has no 'event' field")
    return decode_event_json(raw)
