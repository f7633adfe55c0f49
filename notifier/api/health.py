"""Unauthenticated probes: /healthz (the loop answers), /readyz (why the service is or is not ready), /metrics.

Readiness is derived from the work, not from "the process is up": Redis answers a PING, the poller's heartbeat
in Redis says a cycle succeeded within three intervals, and the Partner API did not refuse the key (401/402/403
show as ``partner_api.last_error_code``). The heartbeat is shared, so every replica answers the same. While the
process starts or drains, /readyz is 503 whatever the checks say.

/metrics refreshes the gauges that describe shared state (backlog, dead deliveries, tracked posts,
subscriptions, last successful poll) from Redis, then renders the registry.

Must not import: the poller, the dispatcher, apprise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from litestar import Controller, MediaType, Response, get
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from redis.exceptions import RedisError

from notifier.api.deps import AppDeps, Phase
from notifier.api.schemas import Health, PartnerApiCheck, PollerCheck, Ready, ReadyChecks, RedisCheck
from notifier.errors import AUTH_ERRORS
from notifier.genviral.client import api_key_id
from notifier.store.connect import text
from notifier.store.health import PollerHealth, read_health

log = logging.getLogger("notifier.api")

#: Codes that mean the key cannot use the API now (the poller backs off): not ready.
REFUSED_CODES = frozenset(cls.code for cls in AUTH_ERRORS)
#: How long /readyz waits for Redis (under the 1 s default timeout of a Kubernetes probe).
PROBE_TIMEOUT = 0.8
#: How long /metrics waits for the Redis-derived gauges.
GAUGES_TIMEOUT = 2.0
#: Poller heartbeats read when the process does not know the API key (role api without one).
_MAX_POLLERS = 50
#: The classic text format (Litestar appends the charset).
METRICS_MEDIA_TYPE = CONTENT_TYPE_PLAIN_0_0_4.removesuffix("; charset=utf-8")


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds") if ts else None


async def poller_healths(deps: AppDeps) -> list[PollerHealth]:
    """The heartbeat of this process's API key, or, without a key, every heartbeat under the prefix."""
    if deps.settings.genviral_api_key:
        found = await read_health(deps.redis, deps.keys, api_key_id(deps.settings.genviral_api_key))
        return [found] if found is not None else []
    healths: list[PollerHealth] = []
    async for raw in deps.redis.scan_iter(match=deps.keys.pollers_pattern, count=1000):
        key = text(raw)
        key_id = key[len(deps.keys.prefix) :].split(":")[1]
        found = await read_health(deps.redis, deps.keys, key_id)
        if found is not None:
            healths.append(found)
        if len(healths) >= _MAX_POLLERS:
            break
    return healths


async def _redis_check(deps: AppDeps) -> RedisCheck:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(deps.redis.ping(), PROBE_TIMEOUT)
    except (RedisError, OSError, TimeoutError) as exc:
        return RedisCheck(ok=False, error=type(exc).__name__)
    return RedisCheck(ok=True, latency_ms=round((time.perf_counter() - started) * 1000, 2))


def _poller_check(deps: AppDeps, health: PollerHealth | None, now: float) -> PollerCheck:
    required = deps.needs_poller
    if health is None:
        return PollerCheck(ok=False, required=required, detail="no poll cycle recorded yet")
    interval = health.interval or deps.settings.poll_interval
    fresh = health.fresh(now, interval)
    age = round(now - health.last_success, 3) if health.last_success is not None else None
    if health.last_success is None:
        detail = "no poll cycle has succeeded yet"
    elif not fresh:
        detail = f"last successful poll is older than {3 * interval:g} s (three intervals)"
    else:
        detail = None
    return PollerCheck(
        ok=fresh,
        required=required,
        last_success=_iso(health.last_success),
        age_seconds=age,
        max_age_seconds=3 * interval,
        scope=health.scope or None,
        detail=detail,
    )


def _partner_check(deps: AppDeps, health: PollerHealth | None) -> PartnerApiCheck:
    code = health.last_error_code if health is not None else ""
    return PartnerApiCheck(
        ok=code not in REFUSED_CODES,
        required=deps.needs_poller,
        last_error_code=code or None,
        last_error=(health.last_error or None) if health is not None else None,
        backoff_until=_iso(health.backoff_until) if health is not None else None,
    )


async def readiness_report(deps: AppDeps) -> Ready:
    redis_check = await _redis_check(deps)
    health: PollerHealth | None = None
    if redis_check.ok:
        try:
            healths = await asyncio.wait_for(poller_healths(deps), PROBE_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as exc:
            redis_check = RedisCheck(ok=False, error=type(exc).__name__)
        else:
            health = max(healths, key=lambda h: h.last_attempt or 0.0, default=None)
    now = deps.clock()
    poller = _poller_check(deps, health, now)
    partner = _partner_check(deps, health)
    checks = ReadyChecks(redis=redis_check, poller=poller, partner_api=partner)
    ok = redis_check.ok and all(c.ok for c in (poller, partner) if c.required)
    phase = deps.readiness.phase
    ready = ok and phase == Phase.RUNNING
    return Ready(status="ready" if ready else "not_ready", phase=phase.value, checks=checks)


async def refresh_gauges(deps: AppDeps) -> None:
    """Set the gauges of shared state from Redis; on a Redis failure the previous values stay."""
    m = deps.metrics

    async def read() -> None:
        counts, subs, healths = await asyncio.gather(
            deps.deliveries.counts(), deps.subscriptions.count(), poller_healths(deps)
        )
        scopes = {h.scope for h in healths if h.scope}
        tracked = await asyncio.gather(*(deps.snapshots.tracked_posts(scope) for scope in sorted(scopes)))
        m.delivery_backlog.set(counts["backlog"])
        m.dead_deliveries.set(counts["dead"])
        m.subscriptions.set(subs)
        if scopes:
            m.tracked_posts.set(sum(tracked))
        last = max((h.last_success for h in healths if h.last_success), default=None)
        if last is not None:
            m.last_successful_poll.set(last)

    try:
        await asyncio.wait_for(read(), GAUGES_TIMEOUT)
    except (RedisError, OSError, TimeoutError) as exc:
        log.debug("metrics gauges not refreshed: %s", type(exc).__name__)


_READY_RESPONSES = {
    503: ResponseSpec(data_container=Ready, description="Not ready: the checks say why (body as for 200)."),
}


def health_controller(deps: AppDeps) -> type[Controller]:
    class HealthController(Controller):
        tags = ["health"]

        @get("/healthz", summary="Liveness", description="200 while the process and its event loop answer.")
        async def healthz(self) -> Health:
            return Health(status="ok")

        @get(
            "/readyz",
            summary="Readiness, with the reasons",
            description=(
                "200 when Redis answers, the last poll cycle succeeded within three intervals and the Partner "
                "API accepts the key; 503 otherwise, and while the process starts or drains. `partner_api` "
                "carries the last error code (unauthorized, subscription_required, tier_not_allowed, ...)."
            ),
            responses=_READY_RESPONSES,
        )
        async def readyz(self) -> Response[Ready]:
            report = await readiness_report(deps)
            return Response(report, status_code=200 if report.status == "ready" else 503, media_type=MediaType.JSON)

        @get(
            "/metrics",
            summary="Prometheus metrics",
            description="Text exposition of every `notifier_*` metric.",
            media_type=METRICS_MEDIA_TYPE,
        )
        async def metrics(self) -> Response[bytes]:
            await refresh_gauges(deps)
            return Response(generate_latest(deps.metrics.registry), media_type=METRICS_MEDIA_TYPE)

    return HealthController
