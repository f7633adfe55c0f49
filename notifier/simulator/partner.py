"""The five Partner API endpoints, as the documentation pages describe them, over a ``SimState``.

Owns: the request rules — Bearer authentication (401 without ``error_code``), the account condition (402
``subscription_required`` / 403 ``tier_not_allowed`` on every endpoint), query parsing with the documented quirks
(``/posts``: ``limit`` clamped to 1..100 and 20 when not a number, ``since``/``until`` ISO 8601 or 400
``invalid_since``/``invalid_until``; ``/packs``: ``limit`` 1..100 and ``offset`` >= 0 integers or 422
``invalid_query``, ``include_public`` true unless literally ``false``), 404 ``not_found``, 400
``missing_pack_id``, an unexpected failure as the endpoint's documented 500 code, and the envelopes
``{"ok", "code", "message", "data"}`` / ``{"ok", "code", "message", "error_code"}``.

Pure request -> reply: no sockets, no sleeping (``app`` does both).

Must not import: httpx, redis, apprise, litestar, uvicorn, or any notifier module outside ``notifier.simulator``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from notifier.simulator.records import JsonObj, Scope, parse_iso, to_us
from notifier.simulator.state import SimState
from notifier.simulator.traffic import SERVER_ERROR_CODES, Fault

log = logging.getLogger("notifier.simulator")

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Reply:
    status: int
    body: JsonObj | str
    headers: Headers = ()


def ok(message: str, data: JsonObj) -> Reply:
    return Reply(200, {"ok": True, "code": 200, "message": message, "data": data})


def error(status: int, message: str, error_code: str | None = None, headers: Headers = ()) -> Reply:
    body: JsonObj = {"ok": False, "code": status, "message": message}
    if error_code is not None:
        body["error_code"] = error_code
    return Reply(status, body, headers)


def fault_reply(fault: Fault) -> Reply:
    headers: Headers = (("retry-after", fault.retry_after),) if fault.retry_after is not None else ()
    assert fault.status is not None
    return Reply(fault.status, fault.body if fault.body is not None else fault.envelope(), headers)


_ROUTES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"/posts"), "list_posts"),
    (re.compile(r"/posts/(?P<id>[^/]+)"), "get_post"),
    (re.compile(r"/accounts"), "list_accounts"),
    (re.compile(r"/packs"), "list_packs"),
    (re.compile(r"/packs/(?P<id>[^/]*)"), "get_pack"),
)


def route(subpath: str) -> tuple[str, str | None] | None:
    """Endpoint name and path id of a path below ``/api/partner/v1``, or None."""
    for pattern, endpoint in _ROUTES:
        match = pattern.fullmatch(subpath)
        if match is not None:
            return endpoint, match.groupdict().get("id")
    return None


def answer(state: SimState, endpoint: str, token: str | None, query: Mapping[str, str], path_id: str | None) -> Reply:
    """The reply of one authenticated-or-not request to one endpoint (faults already handled by the caller)."""
    scope, why = state.authenticate(token)
    if scope is None:
        return error(401, why, state.unauthorized_error_code)
    if state.condition == "subscription_required":
        return error(402, "An active Creator, Professional or Business plan is required", "subscription_required")
    if state.condition == "tier_not_allowed":
        return error(403, "The Scheduler tier cannot use the Partner API", "tier_not_allowed")
    try:
        return _HANDLERS[endpoint](state, scope, query, path_id)
    except Exception:
        log.exception("simulator: %s failed", endpoint)
        return error(500, "Unexpected failure", SERVER_ERROR_CODES[endpoint])


# --------------------------------------------------------------------------------------------------
# Query parsing


class _BadQuery(Exception):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply


def posts_limit(raw: str | None) -> int:
    """Default 20; below 1 -> 1; above 100 -> 100; not a number -> 20 (fractions are floored)."""
    if raw is None or not raw.strip():
        return 20
    try:
        value = float(raw)
    except ValueError:
        return 20
    if math.isnan(value):
        return 20
    return 1 if value < 1 else 100 if value > 100 else int(value)


def iso_param(query: Mapping[str, str], name: str) -> int | None:
    """An inclusive ISO 8601 bound in microseconds; empty means absent; unparsable -> 400 ``invalid_<name>``."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return to_us(parse_iso(raw))
    except ValueError:
        raise _BadQuery(error(400, f"{name} must be a valid ISO 8601 timestamp", f"invalid_{name}")) from None


_INT = re.compile(r"[+-]?\d+")


def strict_int(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    """An integer in [low, high] or 422 ``invalid_query`` naming the parameter."""
    raw = query.get(name)
    if raw is None:
        return default
    if _INT.fullmatch(raw.strip()) is None:
        raise _BadQuery(error(422, f"{name} must be an integer", "invalid_query"))
    value = int(raw)
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _BadQuery(error(422, f"{name} must be {bounds}", "invalid_query"))
    return value


# --------------------------------------------------------------------------------------------------
# Handlers


def _list_posts(state: SimState, scope: Scope, query: Mapping[str, str], _: str | None) -> Reply:
    try:
        since = iso_param(query, "since")
        until = iso_param(query, "until")
    except _BadQuery as bad:
        return bad.reply
    status = query.get("status") or None
    data = state.query_posts(
        scope, status=status, limit=posts_limit(query.get("limit")), since_us=since, until_us=until
    )
    return ok("Posts retrieved", data)


def _get_post(state: SimState, scope: Scope, _: Mapping[str, str], post_id: str | None) -> Reply:
    post = state.post_in(scope, post_id or "")
    if post is None:
        return error(404, "Post not found", "not_found")
    return ok("Post retrieved", post)


def _list_accounts(state: SimState, scope: Scope, _: Mapping[str, str], __: str | None) -> Reply:
    return ok("Accounts retrieved", state.accounts_in(scope))


def _list_packs(state: SimState, scope: Scope, query: Mapping[str, str], _: str | None) -> Reply:
    try:
        limit = strict_int(query, "limit", 20, 1, 100)
        offset = strict_int(query, "offset", 0, 0, None)
    except _BadQuery as bad:
        return bad.reply
    include_public = query.get("include_public") != "false"  # only the literal "false" turns it off
    data = state.query_packs(
        scope, search=query.get("search", ""), limit=limit, offset=offset, include_public=include_public
    )
    return ok("Packs retrieved", data)


def _get_pack(state: SimState, scope: Scope, _: Mapping[str, str], pack_id: str | None) -> Reply:
    if not pack_id:
        return error(400, "packId is required", "missing_pack_id")
    pack = state.pack_in(scope, pack_id)
    if pack is None:
        return error(404, "Pack not found", "not_found")
    return ok("Pack retrieved", pack)


_HANDLERS: dict[str, Callable[[SimState, Scope, Mapping[str, str], str | None], Reply]] = {
    "list_posts": _list_posts,
    "get_post": _get_post,
    "list_accounts": _list_accounts,
    "list_packs": _list_packs,
    "get_pack": _get_pack,
}
