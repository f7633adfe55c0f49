"""The ``/_sim`` control surface: the ``SimState`` methods over HTTP, for tests and demos in other processes.

Owns: the route table below (JSON bodies are the keyword arguments of the same-named ``SimState`` method), and
the mapping of errors: unknown record -> 404, bad field or value -> 400. No auth: the simulator listens on
loopback and exists for testing.

    GET    /_sim/state                          counts, condition, faults, scopes
    POST   /_sim/reset                          empty data, no faults, condition ok (keys stay)
    POST   /_sim/seed                           {"posts": 20, "seed": 0} a realistic workspace
    GET    /_sim/posts?status=&limit=           every post of every scope, newest first
    POST   /_sim/posts                          add_post
    POST   /_sim/posts/bulk                     add_posts_bulk {"count": 5000, ...} -> {"ids": [...]}
    GET|PATCH|DELETE /_sim/posts/{id}           post / update_post / delete_post
    PUT|PATCH|DELETE /_sim/posts/{id}/deliveries/{account_id}   set_delivery / remove_delivery
    GET|POST /_sim/accounts; GET|PATCH|DELETE /_sim/accounts/{id}
    GET|POST /_sim/packs;    GET|PATCH|DELETE /_sim/packs/{id}
    POST   /_sim/packs/{id}/images; DELETE /_sim/packs/{id}/images/{image_id}
    GET|PUT /_sim/condition                     {"condition": "ok|subscription_required|tier_not_allowed"}
    GET|POST|DELETE /_sim/faults[?endpoint=]    inject_fault {"endpoint", "status", "error_code", "retry_after",
                                                "delay", "times", "message", "body"} / clear_faults
    GET|DELETE /_sim/requests?endpoint=&last=   {"counts": {...}, "recent": [...]} / reset_requests
    POST   /_sim/scopes                         add_scope {"kind", "owner_user_id", "workspace_id", "api_key"}
    POST   /_sim/keys; POST /_sim/keys/revoke   add_key {"api_key", "scope_id"} / revoke_key {"api_key"}

Must not import: httpx, redis, apprise, litestar, uvicorn, or any notifier module outside ``notifier.simulator``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from notifier.simulator.partner import Reply, error
from notifier.simulator.records import JsonObj, Scope
from notifier.simulator.seed import seed_workspace
from notifier.simulator.state import SimState

Handler = Callable[[SimState, dict[str, str], Mapping[str, str], Any], Any]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def _route(methods: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for method in methods.split("|"):
            _ROUTES.append((method, re.compile(pattern.replace("{id}", "(?P<id>[^/]+)")), fn))
        return fn

    return register


def handle(state: SimState, method: str, path: str, query: Mapping[str, str], raw: bytes) -> Reply:
    """Answer one control request. ``path`` is below ``/_sim``."""
    allowed = False
    for route_method, pattern, fn in _ROUTES:
        match = pattern.fullmatch(path.rstrip("/") or "/")
        if match is None:
            continue
        if route_method != method:
            allowed = True
            continue
        try:
            body = msgspec.json.decode(raw) if raw.strip() else {}
            result = fn(state, match.groupdict(), query, body)
        except KeyError as exc:
            return error(404, str(exc.args[0]) if exc.args else "not found", "not_found")
        except (ValueError, TypeError, msgspec.DecodeError) as exc:
            return error(400, str(exc), "bad_request")
        if result is None:
            return Reply(204, "")
        status = 201 if method == "POST" else 200
        return Reply(status, result if isinstance(result, dict) else {"items": result})
    if allowed:
        return error(405, "Method not allowed", "method_not_allowed")
    return error(404, f"no control route {method} /_sim{path}", "not_found")


def _kwargs(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body


def _scope_json(scope: Scope) -> JsonObj:
    return {
        "id": scope.id,
        "kind": scope.kind,
        "owner_user_id": scope.owner_user_id,
        "workspace_id": scope.workspace_id,
    }


@_route("GET", "/state")
def _state(state: SimState, _: dict[str, str], __: Mapping[str, str], ___: Any) -> Any:
    with state.lock:
        scopes = [_scope_json(s) for s in state.scopes.values()]
    return {
        "scopes": scopes,
        "default_scope_id": state.default_scope.id,
        "accounts": len(state.accounts),
        "posts": state.post_count(),
        "packs": len(state.packs),
        "condition": state.condition,
        "faults": state.pending_faults(),
        "requests": state.request_counts(),
    }


@_route("POST", "/reset")
def _reset(state: SimState, _: dict[str, str], __: Mapping[str, str], ___: Any) -> Any:
    state.reset()


@_route("POST", "/seed")
def _seed(state: SimState, _: dict[str, str], __: Mapping[str, str], body: Any) -> Any:
    return seed_workspace(state, **_kwargs(body)).to_json()


# ---- posts


@_route("GET", "/posts")
def _posts(state: SimState, _: dict[str, str], query: Mapping[str, str], __: Any) -> Any:
    limit = query.get("limit")
    return state.posts(status=query.get("status") or None, limit=int(limit) if limit else None)


@_route("POST", "/posts")
def _add_post(state: SimState, _: dict[str, str], __: Mapping[str, str], body: Any) -> Any:
    return state.add_post(**_kwargs(body))


@_route("POST", "/posts/bulk")
def _bulk(state: SimState, _: dict[str, str], __: Mapping[str, str], body: Any) -> Any:
    return {"ids": state.add_posts_bulk(**_kwargs(body))}


@_route("GET", "/posts/{id}")
def _post(state: SimState, ids: dict[str, str], _: Mapping[str, str], __: Any) -> Any:
    return state.post(ids["id"])


@_route("PATCH", "/posts/{id}")
def _update_post(state: SimState, ids: dict[str, str], _: Mapping[str, str], body: Any) -> Any:
    return state.update_post(ids["id"], **_kwargs(body))


@_route("DELETE", "/posts/{id}")
def _delete_post(state: SimState, ids: dict[str, str], _: Mapping[str, str], __: Any) -> Any:
    state.delete_post(ids["id"])


@_route("PUT|PATCH", r"/posts/{id}/deliveries/(?P<account_id>[^/]+)")
def _set_delivery(state: SimState, ids: dict[str, str], _: Mapping[str, str], body: Any) -> Any:
    return state.set_delivery(ids["id"], ids["account_id"], **_kwargs(body))


@_route("DELETE", r"/posts/{id}/deliveries/(?P<account_id>[^/]+)")
def _remove_delivery(state: SimState, ids: dict[str, str], _: Mapping[str, str], __: Any) -> Any:
    return state.remove_delivery(ids["id"], ids["account_id"])


# ---- accounts


@_route("GET", "/accounts")
def _accounts(state: SimState, _: dict[str, str], __: Mapping[str, str], ___: Any) -> Any:
    return state.all_accounts()


@_route("POST", "/accounts")
def _add_account(state: SimState, _: dict[str, str], __: Mapping[str, str], body: Any) -> Any:
    return state.add_account(**_kwargs(body))


@_route("GET", "/accounts/{id}")
def _account(state: SimState, ids: dict[str, str], _: Mapping[str, str], __: Any) -> Any:
    return state.account(ids["id"])


@_route("PATCH", "/accounts/{id}")
def _update_account(state: SimState, ids: dict[str, str], _: Mapping[str, str], body: Any) -> Any:
    return state.update_account(ids["id"], **_kwargs(body))


@_route("DELETE", "/accounts/{id}")
def _remove_account(state: SimState, ids: dict[str, str], _: Mapping[str, str], __: Any) -> Any:
    state.remove_account(ids["id"])


# ---- packs


@_route("GET", "/packs")
def _packs(state: SimState, _: dict[str, str], __: Mapping[str, str], ___: Any) -> Any:
    return state.all_packs()


@_route("POST", "/packs")
def _add_pack(state: SimState, _: dict[str, str], __: Mapping[str, str], body: Any) -> Any:
    return state.add_pack(**_kwargs(body))


@_route("GET", "/packs/{id}")
def _pack(state: SimState, ids: dict[str, str], _: Mapping[str, str], __: Any) -> Any:
    return state.pack(ids["id"])


@_route("PATCH", "/packs/{id}")
def _update_pack(state: SimState, ids: dict[str, str], _: Mapping[str, str], body: Any) -> Any:
    return state.update_pack(ids["id"], **_kwargs(body))


@_route("DELETE", "/packs/{id}")
def _delete_pack(state: SimState, ids: dict[str, str], _: Mapping[str, str], __: Any) -> Any:
    state.delete_pack(ids["id"])


@_route("POST", "/packs/{id}/images")
def _add_image(state: SimState, ids: dict[str, str], _: Mapping[str, str], body: Any) -> Any:
    return state.add_pack_image(ids["id"], **_kwargs(body))


@_route("DELETE", r"/packs/{id}/images/(?P<image_id>[^/]+)")
def _remove_image(state: SimState, ids: dict[str, str], _: Mapping[str, str], __: Any) -> Any:
    state.remove_pack_image(ids["id"], ids["image_id"])


# ---- condition, faults, requests, scopes, keys


@_route("GET", "/condition")
def _condition(state: SimState, _: dict[str, str], __: Mapping[str, str], ___: Any) -> Any:
    return {"condition": state.condition, "unauthorized_error_code": state.unauthorized_error_code}


@_route("PUT", "/condition")
def _set_condition(state: SimState, _: dict[str, str], __: Mapping[str, str], body: Any) -> Any:
    values = _kwargs(body)
    if "condition" in values:
        state.set_condition(values["condition"])
    if "unauthorized_error_code" in values:
        state.unauthorized_error_code = values["unauthorized_error_code"]
    return _condition(state, {}, {}, None)


@_route("GET", "/faults")
def _faults(state: SimState, _: dict[str, str], __: Mapping[str, str], ___: Any) -> Any:
    return state.pending_faults()


@_route("POST", "/faults")
def _inject(state: SimState, _: dict[str, str], __: Mapping[str, str], body: Any) -> Any:
    state.inject_fault(**_kwargs(body))
    return {"faults": state.pending_faults()}


@_route("DELETE", "/faults")
def _clear(state: SimState, _: dict[str, str], query: Mapping[str, str], __: Any) -> Any:
    state.clear_faults(query.get("endpoint") or None)


@_route("GET", "/requests")
def _requests(state: SimState, _: dict[str, str], query: Mapping[str, str], __: Any) -> Any:
    last = query.get("last")
    endpoint = query.get("endpoint") or None
    return {
        "counts": state.request_counts(),
        "recent": state.recent_requests(endpoint, int(last) if last else None),
    }


@_route("DELETE", "/requests")
def _reset_requests(state: SimState, _: dict[str, str], __: Mapping[str, str], ___: Any) -> Any:
    state.reset_requests()


@_route("POST", "/scopes")
def _add_scope(state: SimState, _: dict[str, str], __: Mapping[str, str], body: Any) -> Any:
    return _scope_json(state.add_scope(**_kwargs(body)))


@_route("POST", "/keys")
def _add_key(state: SimState, _: dict[str, str], __: Mapping[str, str], body: Any) -> Any:
    values = _kwargs(body)
    state.add_key(_api_key(values), values.get("scope_id"))


@_route("POST", "/keys/revoke")
def _revoke_key(state: SimState, _: dict[str, str], __: Mapping[str, str], body: Any) -> Any:
    state.revoke_key(_api_key(_kwargs(body)))


def _api_key(values: dict[str, Any]) -> str:
    key = values.get("api_key")
    if not isinstance(key, str) or not key:
        raise ValueError("api_key (a non-empty string) is required")
    return key
