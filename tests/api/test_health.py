"""/healthz and /readyz: readiness derived from Redis, the poller's heartbeat and the Partner API's last answer."""

from __future__ import annotations

import time

import httpx
import redis.asyncio as aioredis
from litestar import Litestar
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from notifier.api import AppDeps, Phase, create_app
from notifier.config import Settings
from notifier.genviral.client import api_key_id
from notifier.senders.apprise_sender import AppriseSender
from notifier.store.embedded import free_port
from notifier.store.health import write_health
from notifier.store.keys import Keys
from tests.api.conftest import API_KEY, build_deps


async def beat(deps: AppDeps, *, age: float = 0.0, code: str = "", message: str = "", key: str = API_KEY) -> None:
    """Write the poller heartbeat as the poller does: a cycle that succeeded ``age`` seconds ago."""
    now = time.time()
    await write_health(
        deps.redis,
        deps.keys,
        api_key_id(key),
        {
            "last_success": repr(now - age),
            "last_attempt": repr(now),
            "last_error_code": code,
            "last_error": message,
            "scope": "ws_1",
            "owner": "test",
            "interval": repr(deps.settings.poll_interval),
            "backoff_until": repr(now + 60) if code else "",
        },
    )


def client_for(app: Litestar) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://testserver")


async def test_healthz_is_ok_without_auth(anon: httpx.AsyncClient) -> None:
    """GET /healthz answers 200 {"status": "ok"} with no credentials."""
    response = await anon.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_redis_answers_and_poll_is_fresh(anon: httpx.AsyncClient, deps: AppDeps) -> None:
    """/readyz is 200 ready when Redis answers and the last cycle succeeded within three intervals."""
    await beat(deps)
    response = await anon.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["phase"] == "running"
    checks = body["checks"]
    assert checks["redis"]["ok"] is True
    assert checks["poller"]["ok"] is True and checks["poller"]["scope"] == "ws_1"
    assert checks["partner_api"] == {
        "ok": True,
        "required": True,
        "last_error_code": None,
        "last_error": None,
        "backoff_until": None,
    }


async def test_not_ready_before_any_cycle(anon: httpx.AsyncClient) -> None:
    """/readyz is 503 while no poll cycle has been recorded, and says so."""
    response = await anon.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["poller"]["detail"] == "no poll cycle recorded yet"


async def test_unauthorized_key_shows_in_partner_api_check(anon: httpx.AsyncClient, deps: AppDeps) -> None:
    """A poller that recorded 401 makes /readyz 503 with partner_api.last_error_code unauthorized."""
    await beat(deps, code="unauthorized", message="Invalid API key")
    response = await anon.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    partner = body["checks"]["partner_api"]
    assert partner["ok"] is False
    assert partner["last_error_code"] == "unauthorized"
    assert partner["last_error"] == "Invalid API key"
    assert partner["backoff_until"] is not None


async def test_transient_error_with_fresh_poll_stays_ready(anon: httpx.AsyncClient, deps: AppDeps) -> None:
    """One timed-out cycle shows its code but keeps the service ready while polls are fresh."""
    await beat(deps, code="timeout", message="read timeout")
    response = await anon.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["partner_api"]["last_error_code"] == "timeout"


async def test_stale_poll_is_not_ready(anon: httpx.AsyncClient, deps: AppDeps) -> None:
    """A last success older than three intervals makes /readyz 503 with the poller check failing."""
    await beat(deps, age=deps.settings.poll_interval * 3 + 5)
    response = await anon.get("/readyz")
    assert response.status_code == 503
    poller = response.json()["checks"]["poller"]
    assert poller["ok"] is False
    assert poller["age_seconds"] > poller["max_age_seconds"]


async def test_not_ready_while_starting_or_draining(anon: httpx.AsyncClient, deps: AppDeps) -> None:
    """With every check green, /readyz is still 503 while the process starts and while it drains."""
    await beat(deps)
    deps.readiness.phase = Phase.STARTING
    starting = await anon.get("/readyz")
    deps.readiness.running()
    running = await anon.get("/readyz")
    deps.readiness.draining()
    draining = await anon.get("/readyz")
    assert [starting.status_code, running.status_code, draining.status_code] == [503, 200, 503]
    assert [starting.json()["phase"], draining.json()["phase"]] == ["starting", "draining"]


async def test_redis_down_is_not_ready(keys: Keys, settings: Settings, sender: AppriseSender) -> None:
    """When Redis does not answer, /readyz is 503 with redis.ok false and /healthz still 200."""
    dead = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    deps = build_deps(dead, keys, settings, sender)
    deps.readiness.running()
    try:
        async with client_for(create_app(deps)) as c:
            ready = await c.get("/readyz")
            alive = await c.get("/healthz")
            metrics = await c.get("/metrics")
    finally:
        await dead.aclose()
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"]["ok"] is False
    assert ready.json()["checks"]["redis"]["error"]
    assert alive.status_code == 200
    assert metrics.status_code == 200


async def test_dispatcher_role_does_not_wait_for_the_poller(
    redis: aioredis.Redis, keys: Keys, settings: Settings, sender: AppriseSender
) -> None:
    """A dispatcher-only process is ready on Redis alone; the poller check is shown as not required."""
    deps = build_deps(redis, keys, settings, sender, admin_api=False, needs_poller=False)
    deps.readiness.running()
    async with client_for(create_app(deps)) as c:
        ready = await c.get("/readyz")
        admin = await c.get("/subscriptions")
    assert ready.status_code == 200
    assert ready.json()["checks"]["poller"] == {
        "ok": False,
        "required": False,
        "last_success": None,
        "age_seconds": None,
        "max_age_seconds": None,
        "scope": None,
        "detail": "no poll cycle recorded yet",
    }
    assert admin.status_code == 404


async def test_process_without_key_reads_the_latest_heartbeat(
    redis: aioredis.Redis, keys: Keys, sender: AppriseSender
) -> None:
    """An api-only process without the API key finds the poller's heartbeat under the key prefix."""
    settings = Settings(admin_token="t", key_prefix=keys.prefix, poll_interval=0.2)
    deps = build_deps(redis, keys, settings, sender)
    deps.readiness.running()
    await beat(deps, code="subscription_required", message="No active plan", key="another-key")
    async with client_for(create_app(deps)) as c:
        ready = await c.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["partner_api"]["last_error_code"] == "subscription_required"
