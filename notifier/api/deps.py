"""What the HTTP app is given: ``AppDeps`` (clients, stores, settings) and the ``Readiness`` the service flips.

The app creates no client and owns none: the service (or a test) builds these, hands them to ``create_app``
and closes them after the server stops.

Must not import: the poller, uvicorn, or anything that starts a loop or a process.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

import redis.asyncio as aioredis

from notifier.config import Settings
from notifier.metrics import Metrics
from notifier.models import Subscription
from notifier.store.deliveries import DeliveryStore
from notifier.store.keys import Keys
from notifier.store.snapshots import SnapshotStore
from notifier.store.subscriptions import SubscriptionStore


class Phase(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"


@dataclass
class Readiness:
    """The process's own lifecycle, as /readyz reports it: ready only while ``running``."""

    phase: Phase = Phase.STARTING

    def running(self) -> None:
        self.phase = Phase.RUNNING

    def draining(self) -> None:
        self.phase = Phase.DRAINING


@dataclass(frozen=True)
class TestOutcome:
    """The result of one test notification to the ``url_index``-th URL of a subscription."""

    __test__ = False  # not a pytest test class

    url_index: int
    ok: bool
    error: str | None = None


#: Sends a test notification to every URL of a subscription, now.
TestSender = Callable[[Subscription], Awaitable[list[TestOutcome]]]


@dataclass(frozen=True, kw_only=True)
class AppDeps:
    redis: aioredis.Redis
    keys: Keys
    settings: Settings
    metrics: Metrics
    subscriptions: SubscriptionStore
    deliveries: DeliveryStore
    snapshots: SnapshotStore
    #: ``POST /subscriptions/{id}/test``; ``None`` answers 503.
    send_test: TestSender | None = None
    readiness: Readiness = field(default_factory=Readiness)
    #: Serve the admin API (roles all and api); health and metrics are always served.
    admin_api: bool = True
    #: Whether this process's readiness depends on the poller's heartbeat (not for a dispatcher alone).
    needs_poller: bool = True
    clock: Callable[[], float] = time.time
