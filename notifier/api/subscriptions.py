"""Admin API: subscriptions CRUD and ``POST /subscriptions/{id}/test``. URLs are masked in every answer.

Must not import: the poller, the dispatcher (a test notification goes through ``AppDeps.send_test``).
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import ServiceUnavailableException
from litestar.openapi.spec import Example
from litestar.params import BodyKwarg, FromPath
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from notifier.api.deps import AppDeps
from notifier.api.responses import Limit, Offset, errors
from notifier.api.schemas import SubscriptionPage, TestReport, TestResult, subscription_view
from notifier.errors import RecordNotFound, StoreError
from notifier.models import EVENT_TYPES, Subscription, SubscriptionInput, SubscriptionPatch
from notifier.senders.urls import mask_url
from notifier.store.subscriptions import NAME_MAX, PLATFORMS, decode_subscription

log = logging.getLogger("notifier.api")

_EXAMPLE = {
    "name": "TikTok failures to Slack",
    "urls": ["slack://T000/B000/XXXX"],
    "events": ["post.failed", "delivery.failed"],
    "filters": {"platforms": ["tiktok"], "account_ids": []},
    "enabled": True,
}
CreateBody = Annotated[
    SubscriptionInput,
    BodyKwarg(media_type=RequestEncodingType.JSON, examples=[Example(summary="Failures to Slack", value=_EXAMPLE)]),
]
PatchBody = Annotated[
    SubscriptionPatch,
    BodyKwarg(
        media_type=RequestEncodingType.JSON,
        examples=[
            Example(summary="Pause", value={"enabled": False}),
            Example(summary="All events", value={"events": ["*"]}),
        ],
    ),
]

_BODY_RULES = (
    f"`name`: 1-{NAME_MAX} characters. `urls`: apprise URLs (answers show them masked). "
    f"`events`: one or more of `*`, {', '.join(f'`{t}`' for t in EVENT_TYPES)}. "
    f"`filters.platforms`: any of {', '.join(PLATFORMS)} (empty: all)."
)


#: A digest of the subscriptions hash, computed in Redis: a few bytes over the wire instead of the whole hash.
_DIGEST = """
return redis.sha1hex(table.concat(redis.call('HGETALL', KEYS[1]), '\\0'))
"""


class Listing:
    """The subscriptions as a listing shows them: decoded, oldest first, URLs masked.

    Rebuilt only when the digest of the stored hash changes, and the digest is asked for at most every
    ``FRESH_FOR`` seconds: a busy listing costs no Redis round trip at all. A write through this process
    forgets the listing at once (read-your-writes); a write made elsewhere (another replica, the subscriptions
    file) shows within ``FRESH_FOR`` seconds. ``GET /subscriptions/{id}`` always reads Redis.
    """

    FRESH_FOR = 0.5

    def __init__(self, deps: AppDeps) -> None:
        self._redis = deps.redis
        self._key = deps.keys.subscriptions
        self._digest_script = deps.redis.register_script(_DIGEST)
        self._digest: bytes | None = None
        self._checked_at = -math.inf
        self._generation = 0
        self._views: list[Subscription] = []

    def forget(self) -> None:
        """Drop the listing (after a write): the next page reads Redis, and no read begun before it is kept."""
        self._generation += 1
        self._digest, self._checked_at = None, -math.inf

    async def page(self, limit: int, offset: int) -> tuple[list[Subscription], int]:
        views = self._views
        if time.monotonic() - self._checked_at > self.FRESH_FOR:
            generation, checked_at = self._generation, time.monotonic()
            digest: bytes = await self._digest_script(keys=[self._key])
            views = await self._load() if digest != self._digest else views
            if generation == self._generation:
                # The digest was read before the listing: a write in between changes it, so the next check rebuilds.
                self._views, self._digest, self._checked_at = views, digest, checked_at
        return views[offset : offset + limit], len(views)

    async def _load(self) -> list[Subscription]:
        raw: dict[bytes, bytes] = await self._redis.hgetall(self._key)  # type: ignore[assignment]
        views: list[Subscription] = []
        for sub_id, value in raw.items():
            try:
                views.append(subscription_view(decode_subscription(value)))
            except (msgspec.DecodeError, StoreError) as exc:
                log.error("subscription %s cannot be read and is skipped: %s", sub_id.decode(errors="replace"), exc)
        views.sort(key=lambda sub: (sub.created_at, sub.id))
        return views


def subscriptions_controller(deps: AppDeps) -> type[Controller]:
    store = deps.subscriptions
    listing = Listing(deps)

    def now() -> datetime:
        return datetime.fromtimestamp(deps.clock(), UTC)

    async def found(sub_id: FromPath[str]) -> Subscription:
        sub = await store.get(sub_id)
        if sub is None:
            raise RecordNotFound("subscription", sub_id)
        return sub

    class SubscriptionController(Controller):
        path = "/subscriptions"
        tags = ["subscriptions"]

        @post(
            "/",
            summary="Create a subscription",
            description=_BODY_RULES,
            status_code=HTTP_201_CREATED,
            responses=errors(400, 413, 422),
        )
        async def create(self, data: CreateBody) -> Subscription:
            created = await store.create(data, now=now())
            listing.forget()
            return subscription_view(created)

        @get("/", summary="List subscriptions", description="Oldest first.", responses=errors(422))
        async def list_subscriptions(self, limit: Limit = 50, offset: Offset = 0) -> SubscriptionPage:
            items, total = await listing.page(limit, offset)
            return SubscriptionPage(items=items, total=total, limit=limit, offset=offset)

        @get("/{sub_id:str}", summary="Get a subscription", responses=errors(404))
        async def get_subscription(self, sub_id: FromPath[str]) -> Subscription:
            return subscription_view(await found(sub_id))

        @patch(
            "/{sub_id:str}",
            summary="Update a subscription",
            description="Fields left out keep their value. " + _BODY_RULES,
            responses=errors(400, 404, 409, 413, 422),
        )
        async def update(self, sub_id: FromPath[str], data: PatchBody) -> Subscription:
            try:
                updated = await store.update(sub_id, data, now=now())
            finally:
                listing.forget()
            return subscription_view(updated)

        @delete(
            "/{sub_id:str}",
            summary="Delete a subscription",
            description="409 for a subscription managed as code (`source: config`).",
            status_code=HTTP_204_NO_CONTENT,
            responses=errors(404, 409),
        )
        async def remove(self, sub_id: FromPath[str]) -> None:
            try:
                deleted = await store.delete(sub_id)
            finally:
                listing.forget()
            if not deleted:
                raise RecordNotFound("subscription", sub_id)

        @post(
            "/{sub_id:str}/test",
            summary="Send a test notification now",
            description="One result per URL (masked); a failed send is `ok: false` with the reason, not an error.",
            status_code=200,
            responses=errors(404),
        )
        async def send_test(self, sub_id: FromPath[str]) -> TestReport:
            sub = await found(sub_id)
            if deps.send_test is None:
                raise ServiceUnavailableException(detail="this process cannot send notifications")
            outcomes = await deps.send_test(sub)
            return TestReport(
                results=[TestResult(url=mask_url(sub.urls[o.url_index]), ok=o.ok, error=o.error) for o in outcomes]
            )

    return SubscriptionController
