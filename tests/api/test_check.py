"""``notifier check``: one readable line per check, exit 0 / 1 / 2 as DESIGN §2 says, no secret printed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.check import run_check
from notifier.cli import main
from notifier.config import Settings
from notifier.simulator.server import SimulatorServer
from notifier.store.embedded import free_port
from tests.api.conftest import ADMIN_TOKEN, API_KEY


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(api_key=API_KEY) as server:
        server.state.add_account("tiktok", id="acc-tt", username="tt", display_name="TT")
        server.state.add_account("instagram", id="acc-ig", username="ig", display_name="IG")
        yield server


def check(settings: Settings, role: str = "all") -> tuple[int, str]:
    out = io.StringIO()
    code = run_check(settings, role, out=out)
    return code, out.getvalue()


def good(sim: SimulatorServer, redis_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "genviral_api_key": API_KEY,
        "genviral_base_url": sim.base_url,
        "admin_token": ADMIN_TOKEN,
        "redis_url": redis_url,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def line(output: str, name: str) -> str:
    return next(text for text in output.splitlines() if f"  {name}  " in text)


def test_all_good_exits_0_with_scope_and_accounts(sim: SimulatorServer, redis_url: str) -> None:
    """With a working key and Redis every line is ok, the scope and account count show, and the exit is 0."""
    code, output = check(good(sim, redis_url))
    assert code == 0, output
    assert output.splitlines()[-1] == "all checks passed"
    assert "2 account(s)" in output and "instagram, tiktok" in output
    assert "redis 6." in output or "redis 7." in output
    assert all(text.startswith(("ok", "all")) for text in output.splitlines())
    assert API_KEY not in output and ADMIN_TOKEN not in output


def test_missing_api_key_exits_2_naming_it(redis_url: str) -> None:
    """Without the API key the configuration line names NOTIFIER_GENVIRAL_API_KEY and the exit is 2."""
    code, output = check(Settings(admin_token=ADMIN_TOKEN, redis_url=redis_url))
    assert code == 2
    assert "NOTIFIER_GENVIRAL_API_KEY" in output
    assert "skip" in output


def test_role_decides_what_is_required(sim: SimulatorServer, redis_url: str) -> None:
    """A poller does not need the admin token: check --role poller passes where --role all fails."""
    settings = good(sim, redis_url, admin_token="")
    assert check(settings, "poller")[0] == 0
    code, output = check(settings, "all")
    assert code == 2 and "NOTIFIER_ADMIN_TOKEN" in output


def test_refused_key_exits_1_with_the_error_code(sim: SimulatorServer, redis_url: str) -> None:
    """A key the Partner API refuses prints its error code (unauthorized) and exits 1."""
    code, output = check(good(sim, redis_url, genviral_api_key="gv_wrong_key_123456"))
    assert code == 1
    assert "unauthorized" in line(output, "partner api")
    assert "gv_wrong_key_123456" not in output


def test_unreachable_redis_exits_1_without_password(sim: SimulatorServer) -> None:
    """A Redis that does not answer fails its line (host and port shown, password never) and exits 1."""
    url = f"redis://default:RedisPw-123@127.0.0.1:{free_port()}/0"
    code, output = check(good(sim, url))
    assert code == 1
    assert f"127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}/0" in line(output, "redis")
    assert "RedisPw-123" not in output


def test_embedded_redis_is_reported(sim: SimulatorServer) -> None:
    """With NOTIFIER_REDIS_URL unset the redis line says an embedded redis-server would be started."""
    code, output = check(good(sim, ""))
    assert code == 0
    assert "embedded" in line(output, "redis")


def test_bad_subscriptions_file_exits_2(sim: SimulatorServer, redis_url: str, tmp_path: Path) -> None:
    """A subscriptions file with an invalid subscription is a configuration error naming the file."""
    path = tmp_path / "subs.yaml"
    path.write_text("- name: x\n  urls: ['json://127.0.0.1:9/h']\n  events: ['post.nope']\n")
    code, output = check(good(sim, redis_url, subscriptions_file=path))
    assert code == 2
    assert "NOTIFIER_SUBSCRIPTIONS_FILE" in output and "post.nope" in output


def test_cli_exit_codes(
    sim: SimulatorServer, redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`notifier check` through the CLI: 0 when all is well, 2 for a bad setting value naming the variable."""
    for name in ("NOTIFIER_CONFIG", "NOTIFIER_SUBSCRIPTIONS_FILE", "NOTIFIER_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOTIFIER_GENVIRAL_API_KEY", API_KEY)
    monkeypatch.setenv("NOTIFIER_GENVIRAL_BASE_URL", sim.base_url)
    monkeypatch.setenv("NOTIFIER_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("NOTIFIER_REDIS_URL", redis_url)
    monkeypatch.setenv("NOTIFIER_POLL_INTERVAL", "30")
    assert main(["check"]) == 0
    monkeypatch.setenv("NOTIFIER_POLL_INTERVAL", "often")
    assert main(["check"]) == 2
    assert "NOTIFIER_POLL_INTERVAL" in capsys.readouterr().err
