"""Bearer auth of the admin API: every admin route refuses a missing or wrong token with 401; probes are open."""

from __future__ import annotations

import httpx
import pytest

from notifier.api.auth import token_matches
from tests.api.conftest import ADMIN_TOKEN

ADMIN_ROUTES = [
    ("GET", "/subscriptions"),
    ("POST", "/subscriptions"),
    ("GET", "/subscriptions/x"),
    ("PATCH", "/subscriptions/x"),
    ("DELETE", "/subscriptions/x"),
    ("POST", "/subscriptions/x/test"),
    ("GET", "/events"),
    ("GET", "/deliveries"),
    ("GET", "/deliveries/x"),
    ("POST", "/deliveries/x/retry"),
]
BAD_HEADERS = [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    {"Authorization": f"Basic {ADMIN_TOKEN}"},
    {"Authorization": ADMIN_TOKEN},
    {"Authorization": "Bearer "},
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
@pytest.mark.parametrize("headers", BAD_HEADERS, ids=["missing", "wrong", "longer", "basic", "bare", "empty"])
async def test_admin_routes_need_the_token(
    anon: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    """Without the right bearer token every admin route answers 401 JSON with a Bearer challenge."""
    response = await anon.request(method, path, headers=headers, json={} if method in ("POST", "PATCH") else None)
    assert response.status_code == 401
    assert response.json() == {"status_code": 401, "detail": "missing or invalid bearer token", "extra": None}
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert ADMIN_TOKEN not in response.text


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/schema", "/schema/openapi.json"])
async def test_probes_and_docs_need_no_token(anon: httpx.AsyncClient, path: str) -> None:
    """Health, readiness, metrics and the docs answer without credentials (readiness may say 503)."""
    response = await anon.get(path)
    assert response.status_code in (200, 503)
    assert response.status_code != 401


async def test_token_is_accepted_with_any_scheme_case(anon: httpx.AsyncClient) -> None:
    """The scheme is case-insensitive, as RFC 7235 says: "bearer <token>" is accepted."""
    response = await anon.get("/subscriptions", headers={"Authorization": f"bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200


def test_token_comparison() -> None:
    """token_matches accepts exactly "Bearer <token>" and refuses everything when no token is configured."""
    assert token_matches(f"Bearer {ADMIN_TOKEN}", ADMIN_TOKEN)
    assert not token_matches(f"Bearer {ADMIN_TOKEN[:-1]}", ADMIN_TOKEN)
    assert not token_matches("Bearer ", "")
    assert not token_matches(None, ADMIN_TOKEN)
    assert not token_matches("Bearer ünïcödé", ADMIN_TOKEN)
