"""GET /accounts, GET /packs and GET /packs/{packId} of the simulator, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from notifier.simulator import SimulatorServer


def test_accounts_of_a_workspace_key(sim: SimulatorServer, api: httpx.Client) -> None:
    """A workspace key sees scope, owner, workspace id and its accounts with every documented field."""
    sim.state.add_account("instagram", type="byo", username="brandhq", display_name="Brand HQ")
    body = api.get("/accounts").json()
    assert (body["ok"], body["code"], body["message"]) == (True, 200, "Accounts retrieved")
    scope = sim.state.default_scope
    data = body["data"]
    assert (data["scope"], data["owner_user_id"], data["workspace_id"]) == (
        "workspace",
        scope.owner_user_id,
        scope.workspace_id,
    )
    [account] = data["accounts"]
    assert set(account) == {"id", "platform", "type", "username", "display_name", "status", "workspace_id"}
    assert (account["platform"], account["type"], account["username"]) == ("instagram", "byo", "brandhq")
    assert account["workspace_id"] == scope.workspace_id


def test_accounts_of_a_personal_key(sim: SimulatorServer) -> None:
    """A personal key answers scope personal with workspace_id null, on the page and on each account."""
    personal = sim.state.add_scope("personal", api_key="personal-key")
    sim.state.add_account("youtube", type="hosted", scope_id=personal.id)
    data = httpx.get(sim.base_url + "/accounts", headers={"Authorization": "Bearer personal-key"}).json()["data"]
    assert (data["scope"], data["owner_user_id"], data["workspace_id"]) == ("personal", personal.owner_user_id, None)
    assert [(a["platform"], a["type"], a["workspace_id"]) for a in data["accounts"]] == [("youtube", "hosted", None)]


def test_accounts_lists_only_active_accounts_in_scope(sim: SimulatorServer, api: httpx.Client) -> None:
    """Inactive accounts and accounts of other scopes are not listed; none at all is an empty array."""
    assert api.get("/accounts").json()["data"]["accounts"] == []
    mine = sim.state.add_account("tiktok")["id"]
    gone = sim.state.add_account("facebook")["id"]
    sim.state.update_account(gone, active=False)
    sim.state.add_account("linkedin", scope_id=sim.state.add_scope("workspace").id)
    assert [a["id"] for a in api.get("/accounts").json()["data"]["accounts"]] == [mine]


def test_account_status_changes_show_up(sim: SimulatorServer, api: httpx.Client) -> None:
    """update_account changes what GET /accounts shows."""
    account = sim.state.add_account("tiktok", username="old")["id"]
    sim.state.update_account(account, username="new", status="expired")
    [shown] = api.get("/accounts").json()["data"]["accounts"]
    assert (shown["username"], shown["status"]) == ("new", "expired")


def _pack_names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()["data"]["packs"]]


def test_packs_page_shape_and_defaults(sim: SimulatorServer, api: httpx.Client) -> None:
    """GET /packs answers packs, total, limit 20 and offset 0 by default, with the summary fields."""
    sim.state.add_pack("Motivation Pack", images=3, preview_image_url="https://cdn.example.com/cover.jpg")
    body = api.get("/packs").json()
    assert (body["ok"], body["code"], body["message"]) == (True, 200, "Packs retrieved")
    data = body["data"]
    assert (data["total"], data["limit"], data["offset"]) == (1, 20, 0)
    [pack] = data["packs"]
    assert set(pack) == {"id", "name", "image_count", "preview_image_url", "is_public", "created_at"}
    assert (pack["image_count"], pack["preview_image_url"]) == (3, "https://cdn.example.com/cover.jpg")


def test_packs_search_is_case_insensitive_partial(sim: SimulatorServer, api: httpx.Client) -> None:
    """search matches any part of the name, whatever the case."""
    for name in ("Motivation Pack", "Daily MOTIVATION", "Product Shots"):
        sim.state.add_pack(name)
    names = _pack_names(api.get("/packs", params={"search": "motiv"}))
    assert sorted(names) == ["Daily MOTIVATION", "Motivation Pack"]


def test_packs_limit_and_offset_page(sim: SimulatorServer, api: httpx.Client) -> None:
    """limit and offset cut the page; total counts every match; newest first."""
    for n in range(5):
        sim.state.add_pack(f"Pack {n}", created_at=f"2026-02-1{n}T09:00:00.000Z")
    response = api.get("/packs", params={"limit": 2, "offset": 1})
    assert _pack_names(response) == ["Pack 3", "Pack 2"]
    assert (response.json()["data"]["total"], response.json()["data"]["offset"]) == (5, 1)


@pytest.mark.parametrize(
    ("name", "value"),
    [("limit", "0"), ("limit", "101"), ("limit", "abc"), ("limit", "2.5"), ("offset", "-1"), ("offset", "x")],
)
def test_packs_invalid_limit_or_offset_is_422(api: httpx.Client, name: str, value: str) -> None:
    """limit outside 1-100, negative or non-integer offset get 422 invalid_query."""
    response = api.get("/packs", params={name: value})
    assert response.status_code == 422
    assert response.json()["error_code"] == "invalid_query" and response.json()["code"] == 422


@pytest.mark.parametrize(
    ("value", "sees_public"),
    [("true", True), ("false", False), ("False", True), ("0", True), ("no", True), ("", True), (None, True)],
)
def test_include_public_only_literal_false_excludes(
    sim: SimulatorServer, api: httpx.Client, value: str | None, sees_public: bool
) -> None:
    """include_public counts only the literal true/false; anything else falls back to true."""
    other = sim.state.add_scope("workspace")
    sim.state.add_pack("Mine")
    sim.state.add_pack("Community", is_public=True, scope_id=other.id)
    sim.state.add_pack("Their secret", scope_id=other.id)
    params = {} if value is None else {"include_public": value}
    names = set(_pack_names(api.get("/packs", params=params)))
    assert names == ({"Mine", "Community"} if sees_public else {"Mine"})


def test_own_public_pack_is_listed_without_include_public(sim: SimulatorServer, api: httpx.Client) -> None:
    """A public pack the scope owns stays listed with include_public=false (it is scope-owned)."""
    sim.state.add_pack("Ours and public", is_public=True)
    assert _pack_names(api.get("/packs", params={"include_public": "false"})) == ["Ours and public"]


def test_get_pack_images_oldest_first(sim: SimulatorServer, api: httpx.Client) -> None:
    """GET /packs/{id} lists images by created_at ascending and image_count equals their number."""
    pack = sim.state.add_pack("Motivation Pack", created_at="2026-02-14T09:00:00.000Z")["id"]
    late = sim.state.add_pack_image(pack, "https://cdn.example.com/02.jpg", created_at="2026-02-15T00:00:00Z")
    early = sim.state.add_pack_image(pack, "https://cdn.example.com/01.jpg", created_at="2026-02-14T10:00:00Z")
    body = api.get(f"/packs/{pack}").json()
    assert (body["code"], body["message"]) == (200, "Pack retrieved")
    data = body["data"]
    assert set(data) == {"id", "name", "image_count", "is_public", "created_at", "images"}
    assert data["images"] == [{"id": early["id"], "url": early["url"]}, {"id": late["id"], "url": late["url"]}]
    assert data["image_count"] == 2 and data["created_at"] == "2026-02-14T09:00:00.000Z"


def test_image_count_follows_added_images(sim: SimulatorServer, api: httpx.Client) -> None:
    """Adding an image raises image_count in the list and in the detail."""
    pack = sim.state.add_pack("Growing", images=2)["id"]
    sim.state.add_pack_image(pack)
    assert api.get("/packs").json()["data"]["packs"][0]["image_count"] == 3
    assert api.get(f"/packs/{pack}").json()["data"]["image_count"] == 3


def test_get_pack_visibility(sim: SimulatorServer, api: httpx.Client) -> None:
    """Another scope's public pack can be fetched; its private pack and unknown ids are 404 not_found."""
    other = sim.state.add_scope("workspace")
    public = sim.state.add_pack("Community", is_public=True, scope_id=other.id)["id"]
    private = sim.state.add_pack("Secret", scope_id=other.id)["id"]
    assert api.get(f"/packs/{public}").status_code == 200
    for pack_id in (private, "11111111-1111-1111-1111-111111111111"):
        response = api.get(f"/packs/{pack_id}")
        assert response.status_code == 404 and response.json()["error_code"] == "not_found"


def test_get_pack_without_id_is_400_missing_pack_id(api: httpx.Client) -> None:
    """GET /packs/ with an empty packId gets 400 missing_pack_id."""
    response = api.get("/packs/")
    assert response.status_code == 400 and response.json()["error_code"] == "missing_pack_id"
