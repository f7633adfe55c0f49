"""Admin API: subscriptions CRUD and ``POST /subscriptions/{id}/test``. URLs are masked in every answer.

Must not import: the poller, the dispatcher (a test notification goes through ``AppDeps.send_test``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import ServiceUnavailableException
from litestar.openapi.spec import Example
from litestar.params import BodyKwarg, FromPath
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from notifier.api.deps import AppDeps
from notifier.api.responses import Limit, Offset, errors
from notifier.api.schemas import SubscriptionPage, TestReport, TestResult, masked, subscription_view
from notifier.errors import RecordNotFound
from notifier.models import EVENT_TYPES, Subscription, SubscriptionInput, SubscriptionPatch
from notifier.store.subscriptions import NAME_MAX, PLATFORMS

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


def subscriptions_controller(deps: AppDeps) -> type[Controller]:
    store = deps.subscriptions

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
            return subscription_view(await store.create(data, now=now()))

        @get("/", summary="List subscriptions", description="Oldest first.", responses=errors(422))
        async def list_subscriptions(self, limit: Limit = 50, offset: Offset = 0) -> SubscriptionPage:
            items, total = await store.list(limit=limit, offset=offset)
            return SubscriptionPage(
                items=[subscription_view(s) for s in items], total=total, limit=limit, offset=offset
            )

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
            return subscription_view(await store.update(sub_id, data, now=now()))

        @delete(
            "/{sub_id:str}",
            summary="Delete a subscription",
            description="409 for a subscription managed as code (`source: config`).",
            status_code=HTTP_204_NO_CONTENT,
            responses=errors(404, 409),
        )
        async def remove(self, sub_id: FromPath[str]) -> None:
            if not await store.delete(sub_id):
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
                results=[TestResult(url=masked(sub.urls[o.url_index]), ok=o.ok, error=o.error) for o in outcomes]
            )

    return SubscriptionController
