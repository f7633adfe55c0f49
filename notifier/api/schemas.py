"""The shapes the HTTP API answers with (request bodies are ``SubscriptionInput`` / ``SubscriptionPatch``).

Every struct here is what a response carries, so every apprise URL in one is already masked: build them only
through ``subscription_view`` (and friends), never from a stored record directly.

Must not import: redis, the poller, the dispatcher.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from notifier.models import Delivery, Event, Subscription
from notifier.senders.urls import mask_url


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every error: a status, a sentence, and (for 422) the fields at fault."""

    status_code: int
    detail: str
    extra: dict[str, Any] | None = None


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class Health(msgspec.Struct):
    status: Annotated[str, msgspec.Meta(examples=["ok"])]


class RedisCheck(msgspec.Struct, kw_only=True):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class PollerCheck(msgspec.Struct, kw_only=True):
    ok: bool
    #: Whether this process's readiness depends on this check.
    required: bool = True
    last_success: str | None = None
    age_seconds: float | None = None
    max_age_seconds: float | None = None
    scope: str | None = None
    detail: str | None = None


class PartnerApiCheck(msgspec.Struct, kw_only=True):
    ok: bool
    required: bool = True
    #: unauthorized, subscription_required, tier_not_allowed, server_error, timeout, connection_error, ...
    last_error_code: str | None = None
    last_error: str | None = None
    backoff_until: str | None = None


class ReadyChecks(msgspec.Struct, kw_only=True):
    redis: RedisCheck
    poller: PollerCheck
    partner_api: PartnerApiCheck


class Ready(msgspec.Struct, kw_only=True):
    status: Annotated[str, msgspec.Meta(examples=["ready", "not_ready"])]
    #: starting, running or draining (ready only while running).
    phase: str
    checks: ReadyChecks


class SubscriptionPage(msgspec.Struct, kw_only=True):
    items: list[Subscription]
    total: int
    limit: int
    offset: int


class TestResult(msgspec.Struct, kw_only=True):
    __test__ = False  # not a pytest test class
    url: str
    ok: bool
    error: str | None = None


class TestReport(msgspec.Struct, kw_only=True):
    __test__ = False
    results: list[TestResult]


class EventPage(msgspec.Struct, kw_only=True):
    items: list[Event]
    #: Pass as ``before`` to read older events; ``null`` when there are none.
    next_before: str | None = None


class DeliveryPage(msgspec.Struct, kw_only=True):
    items: list[Delivery]
    total: int
    limit: int
    offset: int


def subscription_view(sub: Subscription) -> Subscription:
    """``sub`` as a response shows it: every URL masked."""
    return msgspec.structs.replace(sub, urls=[mask_url(u) for u in sub.urls])
