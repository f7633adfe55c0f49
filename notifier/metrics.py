"""Every Prometheus metric of the service, defined once on an injected registry.

Labels are closed sets: ``result``, ``endpoint``, ``code``, ``type``. Never an id or a URL.
Gauges that describe shared state (backlog, dead deliveries, tracked posts, subscriptions) are read from
Redis when /metrics is scraped, so any replica reports the same figures.

Must not import: redis, httpx, litestar, apprise (callers feed values in).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Values of ``notifier_partner_api_requests_total{endpoint}``.
ENDPOINTS = ("list_posts", "get_post", "list_accounts", "list_packs", "get_pack")


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    poll_cycles: Counter
    poll_duration: Histogram
    partner_api_requests: Counter
    partner_api_request_duration: Histogram
    transitions: Counter
    notifications: Counter
    notification_duration: Histogram
    delivery_backlog: Gauge
    dead_deliveries: Gauge
    tracked_posts: Gauge
    subscriptions: Gauge
    last_successful_poll: Gauge
    events_dispatched: Counter
    lease_acquisitions: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        r = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=r,
            poll_cycles=Counter(
                "notifier_poll_cycles",
                "Poll cycles, by result (ok, error, auth_error, fenced, skipped).",
                ["result"],
                registry=r,
            ),
            poll_duration=Histogram(
                "notifier_poll_duration_seconds",
                "Wall time of one poll cycle.",
                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
                registry=r,
            ),
            partner_api_requests=Counter(
                "notifier_partner_api_requests",
                "Partner API requests, by endpoint and HTTP status code (or timeout / connection_error).",
                ["endpoint", "code"],
                registry=r,
            ),
            partner_api_request_duration=Histogram(
                "notifier_partner_api_request_duration_seconds",
                "Partner API request latency.",
                ["endpoint"],
                buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                registry=r,
            ),
            transitions=Counter(
                "notifier_transitions",
                "Transitions detected and written to the event stream, by type.",
                ["type"],
                registry=r,
            ),
            notifications=Counter(
                "notifier_notifications",
                "Notification attempts, by result (sent, retry, dead).",
                ["result"],
                registry=r,
            ),
            notification_duration=Histogram(
                "notifier_notification_duration_seconds",
                "Time to send one notification to one URL.",
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                registry=r,
            ),
            delivery_backlog=Gauge(
                "notifier_delivery_backlog",
                "Deliveries waiting to be sent (pending or awaiting a retry).",
                registry=r,
            ),
            dead_deliveries=Gauge(
                "notifier_dead_deliveries",
                "Deliveries that exhausted their retries (replayable).",
                registry=r,
            ),
            tracked_posts=Gauge("notifier_tracked_posts", "Posts whose state is kept in Redis.", registry=r),
            subscriptions=Gauge("notifier_subscriptions", "Stored subscriptions.", registry=r),
            last_successful_poll=Gauge(
                "notifier_last_successful_poll_timestamp_seconds",
                "Unix time of the last poll cycle that completed.",
                registry=r,
            ),
            events_dispatched=Counter(
                "notifier_events_dispatched",
                "Events read from the stream and matched to subscriptions.",
                registry=r,
            ),
            lease_acquisitions=Counter(
                "notifier_poller_lease_acquisitions",
                "Times this process became the poller of a scope.",
                registry=r,
            ),
        )
