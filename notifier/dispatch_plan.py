"""Which deliveries a run of events makes: subscription matching, storm grouping, rendering.

A *run* is the stretch of consecutive stream entries of one poll cycle (same ``batch``); the poller appends a
cycle's events in one atomic step, so every dispatcher that sees any entry of a run sees the same run and
plans the same deliveries (their ids are derived from what they deliver). For each enabled subscription:

- the events of the run it matches (type in ``events`` or ``"*"``; platform and account filters, an empty
  filter list matching everything) are counted;
- more than ``storm_threshold`` of them: one summary delivery per URL that lists them all;
- otherwise one delivery per event and URL, for the entries this dispatcher was handed (``received``).

``after_attempt`` is the retry policy: the delivery after one attempt (sent; failed with the next attempt
``retry_schedule[n] * jitter`` seconds later; dead once the schedule is exhausted).

No I/O and no clock (``now`` is given). Must not import: redis, httpx, litestar, prometheus_client.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from notifier.models import Delivery, DeliveryStatus, Event, Subscription, format_ts
from notifier.render import Message, render, render_event, render_summary
from notifier.senders.urls import mask_url
from notifier.store.deliveries import NewDelivery, Payload, delivery_id, summary_delivery_id
from notifier.store.dispatch_stream import StreamEvent
from notifier.store.events import encode_event

SUMMARY_TYPE = "summary"


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """The JSON body a ``webhook://`` target receives for a storm summary."""

    type: str
    subscription_id: str
    count: int
    events: list[Event]


_encoder = msgspec.json.Encoder()


def matches(sub: Subscription, event: Event) -> bool:
    """Whether ``event`` concerns ``sub`` (ignores ``enabled``)."""
    if "*" not in sub.events and event.type not in sub.events:
        return False
    platforms = sub.filters.platforms
    if platforms and not set(platforms).intersection(event.platforms):
        return False
    accounts = sub.filters.account_ids
    return not (accounts and not set(accounts).intersection(event.account_ids))


@dataclass(frozen=True)
class Plan:
    deliveries: list[NewDelivery]
    #: ``(subscription id, problem)`` for templates that failed at render time (the default text was used).
    template_errors: list[tuple[str, str]]


def plan_run(
    run: Sequence[StreamEvent],
    received: Collection[str],
    subscriptions: Sequence[Subscription],
    *,
    now: float,
    now_iso: str,
) -> Plan:
    """The deliveries for the ``received`` stream ids of ``run``, given the whole run."""
    out: list[NewDelivery] = []
    template_errors: list[tuple[str, str]] = []
    defaults: dict[str, tuple[Message, str]] = {}  # per event: the default text and the JSON body
    for sub in subscriptions:
        if not sub.enabled:
            continue
        matched = [item for item in run if matches(sub, item.event)]
        if not matched:
            continue
        if len(matched) > sub.storm_threshold:
            events = [item.event for item in matched]
            message = render_summary(events, subscription_name=sub.name, templates=sub.templates)
            if message.template_error is not None:
                template_errors.append((sub.id, message.template_error))
            data = _encoder.encode(
                Summary(type=SUMMARY_TYPE, subscription_id=sub.id, count=len(events), events=events)
            ).decode()
            ids = [e.id for e in events]
            for index, url in enumerate(sub.urls):
                did = summary_delivery_id(ids, sub.id, index)
                out.append(_new(did, ids, SUMMARY_TYPE, sub, index, url, message, data, now, now_iso))
            continue
        for item in matched:
            if item.stream_id not in received:
                continue
            event = item.event
            if item.stream_id not in defaults:
                defaults[item.stream_id] = (render_event(event), encode_event(event).decode())
            message, data = defaults[item.stream_id]
            if sub.templates is not None and (sub.templates.title or sub.templates.body):
                message = render(event, sub.templates, default=message)
                if message.template_error is not None:
                    template_errors.append((sub.id, message.template_error))
            for index, url in enumerate(sub.urls):
                did = delivery_id(event.id, sub.id, index)
                out.append(_new(did, [event.id], event.type, sub, index, url, message, data, now, now_iso))
    return Plan(out, template_errors)


def _new(
    did: str,
    event_ids: list[str],
    event_type: str,
    sub: Subscription,
    index: int,
    url: str,
    message: Message,
    data: str,
    now: float,
    now_iso: str,
) -> NewDelivery:
    delivery = Delivery(
        id=did,
        event_ids=event_ids,
        event_type=event_type,
        subscription_id=sub.id,
        url_index=index,
        next_attempt_at=now,
        created_at=now_iso,
        updated_at=now_iso,
        target=mask_url(url),
    )
    payload = Payload(url=url, title=message.title, body=message.body, level=message.level, data=data)
    return NewDelivery(delivery, payload)


def split_runs(entries: Sequence[StreamEvent]) -> list[list[StreamEvent]]:
    """Consecutive entries grouped by batch (an empty batch makes each entry a run of its own)."""
    runs: list[list[StreamEvent]] = []
    for entry in entries:
        if runs and entry.batch and runs[-1][-1].batch == entry.batch:
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


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
