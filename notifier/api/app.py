"""``create_app(deps)``: the Litestar app of one process, built from injected dependencies (no module globals).

Routes: /healthz, /readyz, /metrics, /schema (OpenAPI with a docs UI; the JSON at /schema/openapi.json) without
auth; with ``deps.admin_api``, the admin API under bearer auth (/subscriptions, /events, /deliveries). Bodies
are limited to ``MAX_BODY_BYTES`` (413 beyond); every error is JSON (``notifier.api.errors``).

Must not import: the poller, the dispatcher, uvicorn.
"""

from __future__ import annotations

from litestar import Litestar, Router

from notifier.api.activity import activity_controllers
from notifier.api.auth import SECURITY_SCHEME, bearer_guard
from notifier.api.deps import AppDeps
from notifier.api.errors import EXCEPTION_HANDLERS
from notifier.api.health import health_controller
from notifier.api.openapi import StructSchema, openapi_config
from notifier.api.subscriptions import subscriptions_controller

#: Largest request body accepted (a subscription is a few hundred bytes).
MAX_BODY_BYTES = 64 * 1024


def create_app(deps: AppDeps) -> Litestar:
    """The HTTP app over ``deps``; the caller owns (and closes) every client in them."""
    handlers: list[Router | type] = [health_controller(deps)]
    if deps.admin_api:
        admin = Router(
            path="/",
            route_handlers=[subscriptions_controller(deps), *activity_controllers(deps)],
            guards=[bearer_guard(deps.settings.admin_token)],
            security=[{SECURITY_SCHEME: []}],
        )
        handlers.append(admin)
    return Litestar(
        route_handlers=handlers,
        openapi_config=openapi_config(),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=MAX_BODY_BYTES,
        plugins=[StructSchema()],
        logging_config=None,
        debug=False,
    )
