"""How every failure becomes a JSON answer: ``{"status_code", "detail", "extra"}``, never a stack trace.

    request validation (body, query, path) ..... 422  extra.errors = [{field, message}]
    InvalidSubscription ........................ 422  extra.errors (URLs in messages already masked)
    malformed JSON, other client errors ........ 400 / 401 / 404 / 405 / 413 as Litestar decides
    RecordNotFound ............................. 404
    ReadOnly, NotReplayable .................... 409
    Redis unreachable .......................... 503
    anything else .............................. 500 "Internal server error" (logged, details withheld)

Must not import: the poller, the dispatcher.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from redis.exceptions import RedisError

from notifier.api.schemas import ErrorBody, FieldError
from notifier.errors import InvalidSubscription, NotReplayable, ReadOnly, RecordNotFound

log = logging.getLogger("notifier.api")

_BACKTICKED = re.compile(r"`([^`]+)`")


def error_response(status: int, detail: str, extra: dict[str, Any] | None = None) -> Response[ErrorBody]:
    return Response(
        ErrorBody(status_code=status, detail=detail, extra=extra),
        status_code=status,
        media_type=MediaType.JSON,
    )


def field_errors_response(errors: list[FieldError]) -> Response[ErrorBody]:
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or "invalid request"
    return error_response(422, detail, {"errors": [{"field": e.field, "message": e.message} for e in errors]})


def _validation_errors(exc: ValidationException) -> list[FieldError]:
    """Litestar's validation ``extra`` as (field, message); a whole-body error names the field it is about."""
    errors: list[FieldError] = []
    items = exc.extra if isinstance(exc.extra, list) else []
    for item in items:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid value"))
        key = str(item.get("key", "") or "")
        if key in ("", "data"):
            named = _BACKTICKED.findall(message)
            key = named[-1] if ("field" in message and named) else "body"
        errors.append(FieldError(key, message))
    return errors


def _on_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[ErrorBody]:
    errors = _validation_errors(exc)
    if not errors:
        return error_response(exc.status_code, exc.detail)
    return field_errors_response(errors)


def _on_invalid(_: Request[Any, Any, Any], exc: InvalidSubscription) -> Response[ErrorBody]:
    return field_errors_response([FieldError(f, m) for f, m in exc.errors])


def _on_not_found(_: Request[Any, Any, Any], exc: RecordNotFound) -> Response[ErrorBody]:
    return error_response(404, f"no {exc.kind} with this id")


def _on_conflict(_: Request[Any, Any, Any], exc: ReadOnly | NotReplayable) -> Response[ErrorBody]:
    return error_response(409, str(exc))


def _on_redis(request: Request[Any, Any, Any], exc: RedisError) -> Response[ErrorBody]:
    log.warning("redis unavailable while serving %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return error_response(503, "storage unavailable, try again shortly")


def _on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    if exc.status_code >= HTTP_500_INTERNAL_SERVER_ERROR:
        return error_response(exc.status_code, "Internal server error" if exc.status_code == 500 else exc.detail)
    response = error_response(exc.status_code, exc.detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.error("unexpected error serving %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "Internal server error")


Handler = Callable[[Request[Any, Any, Any], Any], Response[ErrorBody]]

EXCEPTION_HANDLERS: dict[type[Exception], Handler] = {
    ValidationException: _on_validation,
    InvalidSubscription: _on_invalid,
    RecordNotFound: _on_not_found,
    ReadOnly: _on_conflict,
    NotReplayable: _on_conflict,
    RedisError: _on_redis,
    HTTPException: _on_http,
    Exception: _on_unexpected,
}
