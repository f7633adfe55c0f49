"""Facts of DESIGN.md that several test folders check against (kept here once)."""

from __future__ import annotations

#: DESIGN §6: the metrics /metrics must export, "at least".
DESIGN_METRICS: frozenset[str] = frozenset(
    {
        "notifier_poll_cycles_total",
        "notifier_poll_duration_seconds",
        "notifier_partner_api_requests_total",
        "notifier_partner_api_request_duration_seconds",
        "notifier_transitions_total",
        "notifier_notifications_total",
        "notifier_notification_duration_seconds",
        "notifier_delivery_backlog",
        "notifier_dead_deliveries",
        "notifier_tracked_posts",
        "notifier_subscriptions",
        "notifier_last_successful_poll_timestamp_seconds",
    }
)
