"""OpenAPI documentation of the error answers each admin route can give (see ``notifier.api.errors``).

Must not import: redis, the poller, the dispatcher.
"""

from __future__ import annotations

from typing import Annotated

from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from notifier.api.schemas import ErrorBody

_DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "Missing or invalid bearer token.",
    404: "No record with this id.",
    409: "Conflict: the record is managed as code (read-only), or not in a state that allows this.",
    413: "The request body is larger than the limit.",
    422: "Validation failed: `extra.errors` lists each field at fault and why.",
    500: "Internal server error (details are logged, never returned).",
    503: "Redis (or the sender) is unavailable; try again shortly.",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """Response specs for ``codes`` plus 401, 500 and 503, which any admin route may answer."""
    wanted = sorted({401, 500, 503, *codes})
    return {code: ResponseSpec(data_container=ErrorBody, description=_DESCRIPTIONS[code]) for code in wanted}


#: ``limit`` / ``offset`` pagination parameters.
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Page size (1-500).")]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000, description="How many items to skip.")]
