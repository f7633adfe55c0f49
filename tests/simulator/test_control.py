"""The /_sim control surface over HTTP, and the server runners."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import httpx

from notifier.simulator import SimulatorServer


def test_control_creates_and_changes_posts(sim: SimulatorServer, api: httpx.Client, control: httpx.Client) -> None:
    """POST /_sim/accounts and /_sim/posts create records; PUT .../deliveries/{account} changes one state."""
    account = control.post("/accounts", json={"platform": "tiktok", "username": "c"})
    assert account.status_code == 201
    account_id = account.json()["id"]
    created = control.post("/posts", json={"status": "scheduled", "caption": "hi", "accounts": [account_id]})
    assert created.status_code == 201
    post_id = created.json()["id"]
    changed = control.put(
        f"/posts/{post_id}/deliveries/{account_id}", json={"status": "failed", "error_message": "Token expired"}
    )
    assert changed.status_code == 200
    control.patch(f"/posts/{post_id}", json={"status": "failed"})
    post = api.get(f"/posts/{post_id}").json()["data"]
    assert post["status"] == "failed"
    assert post["accounts"]["states"][0]["error_message"] == "Token expired"
    assert control.delete(f"/posts/{post_id}").status_code == 204
    assert api.get(f"/posts/{post_id}").status_code == 404


def test_control_condition_faults_and_requests(sim: SimulatorServer, api: httpx.Client, control: httpx.Client) -> None:
    """PUT /_sim/condition, POST /_sim/faults and GET /_sim/requests steer and observe the API."""
    control.put("/condition", json={"condition": "tier_not_allowed"})
    assert api.get("/posts").status_code == 403
    control.put("/condition", json={"condition": "ok"})
    control.post("/faults", json={"endpoint": "list_posts", "status": 503, "retry_after": 2, "times": 1})
    response = api.get("/posts", params={"limit": "3"})
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    observed = control.get("/requests", params={"endpoint": "list_posts", "last": 1}).json()
    assert observed["counts"]["list_posts"] == 2
    assert observed["recent"] == [
        {**observed["recent"][0], "endpoint": "list_posts", "params": {"limit": "3"}, "status": 503}
    ]


def test_control_bad_input_is_400_and_unknown_record_404(control: httpx.Client) -> None:
    """Unknown fields get 400 naming them; unknown ids get 404."""
    bad = control.post("/posts", json={"colour": "red", "accounts": []})
    assert bad.status_code == 400 and "colour" in bad.json()["message"]
    assert control.patch("/posts/nope", json={"status": "posted"}).status_code == 404
    assert control.put("/condition", json={"condition": "broke"}).status_code == 400


def test_control_seed_bulk_and_reset(sim: SimulatorServer, api: httpx.Client, control: httpx.Client) -> None:
    """POST /_sim/seed and /_sim/posts/bulk fill the state; POST /_sim/reset empties it."""
    seeded = control.post("/seed", json={"posts": 12, "seed": 3}).json()
    assert len(seeded["account_ids"]) == 6
    control.post("/posts/bulk", json={"count": 50, "statuses": ["failed"]})
    assert api.get("/posts").json()["data"]["summary"]["total"] == 12 + 1 + 50
    assert control.post("/reset").status_code == 204
    assert api.get("/posts").json()["data"]["summary"]["total"] == 0
    assert api.get("/accounts").status_code == 200


def test_control_packs(sim: SimulatorServer, api: httpx.Client, control: httpx.Client) -> None:
    """Packs and their images can be created, changed and removed through /_sim."""
    pack = control.post("/packs", json={"name": "Motivation Pack", "images": 2}).json()
    image = control.post(f"/packs/{pack['id']}/images", json={"url": "https://cdn.example.com/x.jpg"}).json()
    control.patch(f"/packs/{pack['id']}", json={"name": "Renamed"})
    detail = api.get(f"/packs/{pack['id']}").json()["data"]
    assert (detail["name"], detail["image_count"]) == ("Renamed", 3)
    control.delete(f"/packs/{pack['id']}/images/{image['id']}")
    assert api.get(f"/packs/{pack['id']}").json()["data"]["image_count"] == 2


async def test_server_serves_while_the_test_loop_runs(sim: SimulatorServer) -> None:
    """The server runs on its own thread, so an async test's client can call it from its event loop."""
    sim.state.add_account("tiktok")
    async with httpx.AsyncClient(base_url=sim.base_url, headers={"Authorization": "Bearer test-key"}) as client:
        response = await client.get("/accounts")
    assert len(response.json()["data"]["accounts"]) == 1


def test_state_changes_from_another_thread_while_serving(sim: SimulatorServer, api: httpx.Client) -> None:
    """A thread adding posts while requests run never breaks an answer (the state is locked)."""
    account = sim.state.add_account("tiktok")["id"]
    done = threading.Event()

    def writer() -> None:
        for _ in range(300):
            sim.state.add_post(accounts=[account])
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    statuses = set()
    while not done.is_set():
        statuses.add(api.get("/posts", params={"limit": 100}).status_code)
    thread.join()
    assert statuses <= {200}
    assert api.get("/posts").json()["data"]["summary"]["total"] == 300


def test_server_start_and_stop_twice() -> None:
    """A SimulatorServer can be started and stopped on its own port, and the port is free afterwards."""
    server = SimulatorServer(api_key="k").start()
    port = server.port
    assert httpx.get(server.base_url + "/accounts", headers={"Authorization": "Bearer k"}).status_code == 200
    server.stop()
    with SimulatorServer(api_key="k", port=port) as again:
        assert again.port == port


def test_notifier_simulate_prints_url_and_stops_on_sigterm() -> None:
    """`notifier simulate --port 0` prints the base URL and key, serves, and exits 0 on SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from notifier.cli import main; sys.exit(main())", "simulate",
         "--port", "0", "--api-key", "cli-key", "--seed-posts", "5"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "error"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        base_url = first.rsplit(" ", 1)[-1].strip()
        assert base_url.endswith("/api/partner/v1")
        assert "cli-key" in proc.stdout.readline()
        response = httpx.get(base_url + "/posts", headers={"Authorization": "Bearer cli-key"})
        assert response.json()["data"]["summary"]["total"] == 6
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
