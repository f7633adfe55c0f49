"""A simulated Genviral Partner API, faithful to the documentation pages and stateful.

Used by the tests, the benchmarks and ``notifier demo``; ``notifier simulate`` serves it alone. Start with
``SimulatorServer`` (a background-thread server) and steer it through ``SimState`` (or ``/_sim`` over HTTP);
``seed_workspace`` fills it with realistic data and ``LiveDriver`` makes posts change on their own.
See docs/simulator.md.

Must not import: httpx, redis, apprise, litestar, or any notifier module outside ``notifier.simulator``.
"""

from notifier.simulator.app import PREFIX, SimulatorApp
from notifier.simulator.live import LiveDriver
from notifier.simulator.records import ENDPOINTS
from notifier.simulator.seed import SeedInfo, seed_workspace
from notifier.simulator.server import SimulatorServer, run_simulator
from notifier.simulator.state import SimState

__all__ = [
    "ENDPOINTS",
    "PREFIX",
    "LiveDriver",
    "SeedInfo",
    "SimState",
    "SimulatorApp",
    "SimulatorServer",
    "run_simulator",
    "seed_workspace",
]
