"""The service as operators run it: ``notifier serve`` / ``demo`` as real processes, against the simulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from notifier.config import Settings
from notifier.errors import ConfigError
from notifier.service import check_settings
from notifier.simulator.server import SimulatorServer
from notifier.store.embedded import free_port
from notifier.store.keys import Keys
from tests.api.conftest import ADMIN_TOKEN, API_KEY, AUTH, Receiver

pytestmark = pytest.mark.slow


def clean_env(**settings: str) -> dict[str, str]:
    """The current environment without any NOTIFIER_ variable, plus ``settings`` (names without the prefix)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update({f"NOTIFIER_{k.upper()}": v for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    out: Path
    err: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait for the exit code (the test fails if the process hangs)."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        return self.wait_exit(sig, timeout)

    def wait_exit(self, sig: int, timeout: float = 15.0) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(f"did not exit after {sig!r}:\n{self.stderr()[-3000:]}") from None


def start(tmp_path: Path, name: str, args: list[str], env: dict[str, str], port: int) -> Proc:
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    with out.open("wb") as o, err.open("wb") as e:
        popen = subprocess.Popen(
            [sys.executable, "-m", "notifier.cli", *args], stdout=o, stderr=e, env=env, cwd=tmp_path
        )
    return Proc(popen, out, err, port)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait()


def wait_for(proc: Proc, path: str, status: int, *, limit: float = 30.0, headers: dict[str, str] | None = None) -> None:
    """Poll ``path`` until it answers ``status``; fail with the process's log if it exits or never does."""
    deadline = time.monotonic() + limit
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise AssertionError(f"exited with {proc.popen.returncode}:\n{proc.stderr()[-3000:]}")
        try:
            response = httpx.get(proc.url + path, timeout=2.0, headers=headers)
            if response.status_code == status:
                return
            last = f"{response.status_code} {response.text[:500]}"
        except httpx.TransportError as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise AssertionError(f"{path} never answered {status} (last: {last}):\n{proc.stderr()[-3000:]}")


def redis_children(parent: int) -> list[int]:
    """Pids of the redis-server processes started by ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.partition(") ")
        if "redis-server" in name and int(rest.split()[1]) == parent:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().partition(") ")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(api_key=API_KEY) as server:
        server.state.add_account("tiktok", id="acc-tt", username="tt", display_name="TT")
        server.state.add_post(id="post-svc-1", status="scheduled", caption="watch me", accounts=["acc-tt"])
        yield server


def test_serve_all_with_embedded_redis_gets_ready_and_stops_on_sigterm(
    tmp_path: Path, sim: SimulatorServer, procs: list[Proc]
) -> None:
    """serve (role all, embedded Redis) answers /healthz, turns ready, and on SIGTERM exits 0, Redis stopped."""
    port = free_port()
    env = clean_env(
        genviral_api_key=API_KEY,
        genviral_base_url=sim.base_url,
        admin_token=ADMIN_TOKEN,
        data_dir=str(tmp_path / "data"),
        poll_interval="0.2",
        host="127.0.0.1",
        port=str(port),
    )
    proc = start(tmp_path, "serve", ["serve"], env, port)
    procs.append(proc)
    wait_for(proc, "/healthz", 200)
    wait_for(proc, "/readyz", 200)
    children = redis_children(proc.popen.pid)
    assert len(children) == 1, "the embedded redis-server is not running"
    assert httpx.get(proc.url + "/subscriptions", headers=AUTH).status_code == 200

    sigterm_at = time.monotonic()
    code = proc.stop(signal.SIGTERM)
    took = time.monotonic() - sigterm_at
    assert code == 0, proc.stderr()[-3000:]
    assert took < 10.0
    assert not alive(children[0])
    log = proc.stderr()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(r["message"].startswith("serving role all") for r in records)
    assert API_KEY not in log and ADMIN_TOKEN not in log


def test_roles_split_across_processes(
    tmp_path: Path, sim: SimulatorServer, redis_url: str, keys: Keys, receiver: Receiver, procs: list[Proc]
) -> None:
    """api, poller and dispatcher run as three processes on one Redis and together deliver a transition."""
    common = {
        "redis_url": redis_url,
        "key_prefix": keys.prefix,
        "poll_interval": "0.2",
        "host": "127.0.0.1",
        "genviral_base_url": sim.base_url,
        "log_level": "warning",
    }
    ports = {role: free_port() for role in ("api", "poller", "dispatcher")}
    secrets = {"api": {"admin_token": ADMIN_TOKEN}, "poller": {"genviral_api_key": API_KEY}, "dispatcher": {}}
    by_role: dict[str, Proc] = {}
    for role, port in ports.items():
        env = clean_env(**common, **secrets[role], port=str(port))
        by_role[role] = start(tmp_path, role, ["serve", "--role", role], env, port)
        procs.append(by_role[role])
    for proc in by_role.values():
        wait_for(proc, "/healthz", 200)
    wait_for(by_role["api"], "/readyz", 200)
    wait_for(by_role["dispatcher"], "/readyz", 200)
    assert httpx.get(by_role["poller"].url + "/subscriptions", headers=AUTH).status_code == 404

    created = httpx.post(
        by_role["api"].url + "/subscriptions",
        headers=AUTH,
        json={"name": "all", "urls": [receiver.url("json", "/roles")], "events": ["post.failed"]},
    )
    assert created.status_code == 201
    sim.state.update_post("post-svc-1", status="failed")
    deadline = time.monotonic() + 30
    while not receiver.bodies and time.monotonic() < deadline:
        time.sleep(0.1)
    assert receiver.bodies, by_role["dispatcher"].stderr()[-2000:]
    assert "post.failed" in receiver.bodies[0].decode()
    metrics = httpx.get(by_role["poller"].url + "/metrics").text
    assert 'notifier_poll_cycles_total{result="ok"}' in metrics
    for proc in by_role.values():
        proc.popen.send_signal(signal.SIGTERM)
    for proc in by_role.values():
        assert proc.wait_exit(signal.SIGTERM) == 0, proc.stderr()[-2000:]


def test_serve_without_a_required_setting_exits_2(tmp_path: Path) -> None:
    """serve refuses to start without a setting its role needs: exit 2 naming the variable, nothing started."""
    env = clean_env(genviral_api_key=API_KEY, data_dir=str(tmp_path / "data"), port=str(free_port()))
    result = subprocess.run(
        [sys.executable, "-m", "notifier.cli", "serve"], env=env, capture_output=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "NOTIFIER_ADMIN_TOKEN" in result.stderr.decode()
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("role", "given", "missing"),
    [
        ("all", {"admin_token": "t"}, "NOTIFIER_GENVIRAL_API_KEY"),
        ("all", {"genviral_api_key": "k"}, "NOTIFIER_ADMIN_TOKEN"),
        ("api", {"genviral_api_key": "k"}, "NOTIFIER_ADMIN_TOKEN"),
        ("poller", {"admin_token": "t"}, "NOTIFIER_GENVIRAL_API_KEY"),
    ],
)
def test_each_role_requires_its_settings(role: str, given: dict[str, str], missing: str) -> None:
    """Each role names the setting it cannot run without; the dispatcher alone needs neither secret."""
    with pytest.raises(ConfigError) as info:
        check_settings(Settings(**given), role)
    assert info.value.setting == missing
    check_settings(Settings(), "dispatcher")


def test_demo_prints_notifications_and_stops_on_ctrl_c(tmp_path: Path, procs: list[Proc]) -> None:
    """demo needs no settings, prints the docs and metrics URLs and the token, then notifications; SIGINT exits 0."""
    port = free_port()
    proc = start(tmp_path, "demo", ["demo", "--port", str(port)], clean_env(), port)
    procs.append(proc)
    deadline = time.monotonic() + 30
    while "Press Ctrl-C" not in proc.stdout():
        assert proc.popen.poll() is None, proc.stderr()[-3000:]
        assert time.monotonic() < deadline, proc.stderr()[-3000:]
        time.sleep(0.05)
    banner = proc.stdout()
    assert f"http://127.0.0.1:{port}/schema" in banner
    assert f"http://127.0.0.1:{port}/metrics" in banner
    token = next(line.split()[-1] for line in banner.splitlines() if "admin token" in line)
    assert httpx.get(proc.url + "/subscriptions", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    shown_at = time.monotonic()
    while "\n== [" not in proc.stdout():
        assert proc.popen.poll() is None, proc.stderr()[-3000:]
        assert time.monotonic() - shown_at < 10.0, "no notification within 10 s of the banner"
        time.sleep(0.05)
    assert "Post:" in proc.stdout().split("\n== [", 1)[1]

    assert proc.stop(signal.SIGINT) == 0, proc.stderr()[-3000:]
    assert "demo stopped" in proc.stderr()
    assert "Traceback" not in proc.stderr()
