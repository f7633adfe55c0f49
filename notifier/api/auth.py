"""Bearer auth of the admin API: ``Authorization: Bearer <NOTIFIER_ADMIN_TOKEN>``, compared in constant time.

A missing, malformed or wrong header gets 401 with ``WWW-Authenticate: Bearer``; the answer never says which.
With no admin token configured every request is refused (the service refuses to start that way anyway).

Must not import: redis, the poller, the dispatcher.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

SECURITY_SCHEME = "bearerAuth"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="notifier"'}


def token_matches(header: str | None, token: str) -> bool:
    """Whether ``header`` is ``Bearer <token>``; the token comparison takes the same time for any guess."""
    if not token or not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))


def bearer_guard(token: str) -> Guard:
    """A Litestar guard admitting only requests that carry ``token``."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        # async: Litestar would run a plain function in a worker thread
        if not token_matches(connection.headers.get("authorization"), token):
            raise NotAuthorizedException(detail="missing or invalid bearer token", headers=dict(_CHALLENGE))

    return guard
