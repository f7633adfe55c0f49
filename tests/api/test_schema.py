"""Schemathesis against /schema/openapi.json, in process: no 5xx and every answer as the schema documents it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from notifier.api import create_app
from notifier.genviral.client import api_key_id
from notifier.models import SubscriptionInput
from notifier.senders.apprise_sender import AppriseSender
from notifier.store.health import write_health
from notifier.store.keys import Keys
from tests.api.conftest import API_KEY, AUTH, build_deps, make_settings
from tests.api.test_activity import DEAD_URL, add_events, make_dead_delivery

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 20, schemathesis.GenerationMode.NEGATIVE: 10}


async def seed_data(redis_url: str, keys: Keys) -> None:
    """A subscription, a few events and a dead delivery, so listings answer with real items."""
    client = aioredis.Redis.from_url(redis_url)
    sender = AppriseSender(max_workers=2)
    try:
        deps = build_deps(client, keys, make_settings(keys), sender)
        await deps.subscriptions.create(
            SubscriptionInput(name="seeded", urls=[DEAD_URL], events=["*"]), now=datetime.now(UTC)
        )
        await add_events(deps, ["post.failed", "post.posted", "account.added"])
        await make_dead_delivery(deps)
        now = repr(time.time())
        await write_health(
            client,
            keys,
            api_key_id(API_KEY),
            {"last_success": now, "last_attempt": now, "interval": "3600", "scope": "ws_1", "last_error_code": ""},
        )
    finally:
        await sender.aclose()
        await client.aclose()


async def drop_keys(redis_url: str, keys: Keys) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match=keys.prefix + "*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


def fuzz(operation: Any, mode: schemathesis.GenerationMode) -> None:
    @seed(20250301)
    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=AUTH)
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        # An operation without parameters or body has no invalid request to generate.
        if mode is not schemathesis.GenerationMode.NEGATIVE:
            raise


def test_schema_fuzzing_finds_no_server_error_and_no_nonconforming_answer(redis_url: str, keys: Keys) -> None:
    """Generated valid and invalid requests to every operation get documented, schema-conforming, non-5xx answers."""
    asyncio.run(seed_data(redis_url, keys))
    # The app's clients are used only from schemathesis's own event loop; its lifespan shutdown closes them there.
    client = aioredis.Redis.from_url(redis_url)
    sender = AppriseSender(max_workers=2)
    deps = build_deps(client, keys, make_settings(keys, send_timeout=1.0), sender)
    deps.readiness.running()
    app = create_app(deps)
    closers: list[Callable[[], Any]] = [client.aclose]
    app.on_shutdown.extend(closers)
    try:
        schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 10
        for operation in operations:
            for mode in EXAMPLES:
                fuzz(operation, mode)
    finally:
        shutdown_lifespans()
        asyncio.run(sender.aclose())
        asyncio.run(drop_keys(redis_url, keys))
