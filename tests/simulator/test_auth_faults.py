"""Authentication, the account condition, injected faults and request counters of the simulator."""

from __future__ import annotations

import httpx
import pytest

from notifier.simulator import SimulatorServer

from .conftest import KEY

PATHS = {
    "list_posts": "/posts",
    "get_post": "/posts/11111111-1111-1111-1111-111111111111",
    "list_accounts": "/accounts",
    "list_packs": "/packs",
    "get_pack": "/packs/11111111-1111-1111-1111-111111111111",
}


@pytest.mark.parametrize("path", PATHS.values())
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdC1rZXk=", "Bearer", "test-key"])
def test_missing_or_wrong_key_is_401(sim: SimulatorServer, path: str, header: str | None) -> None:
    """Every endpoint answers 401 {"ok": false, "code": 401, "message"} without error_code to a bad key."""
    headers = {"Authorization": header} if header is not None else {}
    response = httpx.get(sim.base_url + path, headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"ok", "code", "message"} and body["ok"] is False and body["code"] == 401


def test_revoked_key_is_401(sim: SimulatorServer, api: httpx.Client) -> None:
    """A revoked key stops working."""
    assert api.get("/accounts").status_code == 200
    sim.state.revoke_key(KEY)
    response = api.get("/accounts")
    assert response.status_code == 401 and "revoked" in response.json()["message"]


def test_401_error_code_can_be_switched_on(sim: SimulatorServer) -> None:
    """unauthorized_error_code puts an error_code on 401s, for clients that must handle both forms."""
    sim.state.unauthorized_error_code = "unauthorized"
    response = httpx.get(sim.base_url + "/posts", headers={"Authorization": "Bearer nope"})
    assert response.json()["error_code"] == "unauthorized"


@pytest.mark.parametrize("path", PATHS.values())
@pytest.mark.parametrize(
    ("condition", "status", "code"),
    [("subscription_required", 402, "subscription_required"), (403, 403, "tier_not_allowed")],
)
def test_account_condition_applies_to_every_endpoint(
    sim: SimulatorServer, api: httpx.Client, path: str, condition: str | int, status: int, code: str
) -> None:
    """With the condition set, every endpoint answers 402 subscription_required or 403 tier_not_allowed."""
    sim.state.set_condition(condition)
    response = api.get(path)
    assert response.status_code == status
    assert response.json()["error_code"] == code and response.json()["ok"] is False
    sim.state.set_condition("ok")
    assert api.get("/accounts").status_code == 200


def test_bad_key_is_401_even_without_subscription(sim: SimulatorServer) -> None:
    """Authentication is checked before the subscription: a wrong key gets 401, not 402."""
    sim.state.set_condition("subscription_required")
    assert httpx.get(sim.base_url + "/posts", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_fault_for_the_next_n_requests(sim: SimulatorServer, api: httpx.Client) -> None:
    """A fault with times=2 answers the next two requests, then the endpoint is normal again."""
    sim.state.inject_fault("list_accounts", 500, times=2)
    statuses = [api.get("/accounts").status_code for _ in range(3)]
    assert statuses == [500, 500, 200]


def test_500_fault_carries_the_documented_error_code(sim: SimulatorServer, api: httpx.Client) -> None:
    """A 500 without error_code uses the endpoint's documented one (list_failed, get_failed, ...)."""
    expected = {
        "list_posts": "list_failed",
        "get_post": "get_failed",
        "list_accounts": "accounts_failed",
        "list_packs": "packs_list_failed",
        "get_pack": "pack_get_failed",
    }
    for endpoint, path in PATHS.items():
        sim.state.inject_fault(endpoint, 500, times=1)
        body = api.get(path).json()
        assert (body["ok"], body["code"], body["error_code"]) == (False, 500, expected[endpoint])


def test_fault_with_retry_after(sim: SimulatorServer, api: httpx.Client) -> None:
    """A 429 fault sends its Retry-After header and error code."""
    sim.state.inject_fault("list_posts", 429, error_code="rate_limited", retry_after=7, times=1)
    response = api.get("/posts")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["error_code"] == "rate_limited"


def test_fault_until_cleared(sim: SimulatorServer, api: httpx.Client) -> None:
    """A fault without a count lasts until cleared."""
    sim.state.inject_fault("get_pack", 503)
    assert [api.get(PATHS["get_pack"]).status_code for _ in range(3)] == [503, 503, 503]
    sim.state.clear_faults("get_pack")
    assert api.get(PATHS["get_pack"]).status_code == 404


def test_faults_queue_in_order(sim: SimulatorServer, api: httpx.Client) -> None:
    """Faults of one endpoint are served first in, first out."""
    sim.state.inject_fault("list_packs", 502, times=1)
    sim.state.inject_fault("list_packs", 504, times=1)
    assert [api.get("/packs").status_code for _ in range(3)] == [502, 504, 200]


def test_fault_with_raw_body(sim: SimulatorServer, api: httpx.Client) -> None:
    """A fault may answer a non-JSON body, as a proxy in front of the API would."""
    sim.state.inject_fault("list_posts", 502, body="<html>Bad Gateway</html>", times=1)
    response = api.get("/posts")
    assert response.status_code == 502 and response.text == "<html>Bad Gateway</html>"
    assert response.headers["content-type"].startswith("text/html")


def test_fault_delay_outlasts_a_short_client_timeout(sim: SimulatorServer) -> None:
    """A delayed fault holds the answer back, so a client with a short timeout times out."""
    sim.state.inject_fault("list_accounts", 500, delay=3, times=1)
    with (
        httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=0.2) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.get("/accounts")
    sim.state.clear_faults()


def test_delay_only_fault_then_normal_answer(sim: SimulatorServer, api: httpx.Client) -> None:
    """A fault with status None only delays: the request is then answered normally."""
    sim.state.inject_fault("list_accounts", None, delay=0.1, times=1)
    assert api.get("/accounts").status_code == 200
    assert sim.state.recent_requests("list_accounts")[-1]["status"] == 200


def test_request_counters_and_recent_params(sim: SimulatorServer, api: httpx.Client) -> None:
    """Each endpoint counts its requests (refused ones too) and the last requests keep their query params."""
    api.get("/posts", params={"status": "failed", "limit": "5"})
    api.get("/posts", params={"until": "2025-01-01T00:00:00Z"})
    httpx.get(sim.base_url + "/accounts")
    api.get(PATHS["get_pack"])
    assert sim.state.request_counts() == {
        "list_posts": 2,
        "get_post": 0,
        "list_accounts": 1,
        "list_packs": 0,
        "get_pack": 1,
    }
    last_two = sim.state.recent_requests("list_posts", last=2)
    assert [r["params"] for r in last_two] == [{"status": "failed", "limit": "5"}, {"until": "2025-01-01T00:00:00Z"}]
    assert sim.state.recent_requests("list_accounts")[0]["status"] == 401
    sim.state.reset_requests()
    assert sim.state.request_count() == 0


def test_unknown_paths_are_404_and_not_counted(sim: SimulatorServer, api: httpx.Client) -> None:
    """Paths outside the five endpoints get a 404 envelope and count for no endpoint."""
    response = api.get("/nope")
    assert response.status_code == 404 and response.json()["error_code"] == "not_found"
    assert sim.state.request_count() == 0


def test_wrong_method_is_405(api: httpx.Client) -> None:
    """The endpoints are read-only: POST gets 405."""
    assert api.post("/posts", json={}).status_code == 405


def test_fault_on_unknown_endpoint_is_refused(sim: SimulatorServer) -> None:
    """inject_fault names the valid endpoints when given another."""
    with pytest.raises(ValueError, match="list_posts"):
        sim.state.inject_fault("posts", 500)
