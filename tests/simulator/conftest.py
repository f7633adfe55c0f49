"""Fixtures of the simulator tests: one simulator server for the session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from notifier.simulator import SimulatorServer

KEY = "test-key"


@pytest.fixture(scope="session")
def sim_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(api_key=KEY) as server:
        yield server


@pytest.fixture
def sim(sim_server: SimulatorServer) -> SimulatorServer:
    """The session's simulator with empty data, no faults, condition ok and fresh counters."""
    sim_server.state.reset()
    sim_server.state.unauthorized_error_code = None
    sim_server.state.add_key(KEY)
    return sim_server


@pytest.fixture
def api(sim: SimulatorServer) -> Iterator[httpx.Client]:
    """A client of the Partner API with the right key."""
    with httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=5) as client:
        yield client


@pytest.fixture
def control(sim: SimulatorServer) -> Iterator[httpx.Client]:
    """A client of the /_sim control surface."""
    with httpx.Client(base_url=sim.url + "/_sim", timeout=5) as client:
        yield client


@pytest.fixture
def account(sim: SimulatorServer) -> str:
    """One active TikTok account in the default scope."""
    return str(sim.state.add_account("tiktok", username="creator", display_name="Creator")["id"])
