"""Running the simulator: ``SimulatorServer`` (a background thread, for tests, benchmarks and the demo) and
``run_simulator`` (the ``notifier simulate`` command).

Owns: binding the socket before the server thread starts (so the port is known at once and never raced), running
uvicorn quietly on its own thread and event loop (the caller's loop stays free), optional seed data and live mode,
and a clean stop (delayed requests released, live thread joined, socket closed).

Must not import: httpx, redis, apprise, litestar, or any notifier module outside ``notifier.simulator``.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from types import FrameType, TracebackType

import uvicorn

from notifier.simulator.app import PREFIX, SimulatorApp
from notifier.simulator.live import LiveDriver
from notifier.simulator.seed import seed_workspace
from notifier.simulator.state import SimState


class SimulatorServer:
    """The simulated Partner API on ``host`` (loopback) and a free port, served from a background thread.

    ``with SimulatorServer(api_key="k") as sim:`` gives ``sim.base_url`` (ends in ``/api/partner/v1``),
    ``sim.state`` (the ``SimState`` to steer it), ``sim.port`` and ``sim.url`` (root, for ``/_sim``).
    """

    def __init__(
        self,
        api_key: str = "sim-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state: SimState | None = None,
        seed_posts: int = 0,
        seed: int = 0,
        live: bool = False,
        live_interval: float = 2.5,
    ) -> None:
        self.host = host
        self.state = state if state is not None else SimState(api_key)
        if state is not None:
            state.add_key(api_key)
        if seed_posts > 0:
            seed_workspace(self.state, posts=seed_posts, seed=seed)
        self.live = LiveDriver(self.state, interval=live_interval, seed=seed) if live else None
        self._requested_port = port
        self._closing = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def __repr__(self) -> str:  # never shows the key
        return f"SimulatorServer(url={self.url!r})"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + PREFIX

    def start(self, timeout: float = 5.0) -> SimulatorServer:
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto IPPROTO_TCP (not 0), so asyncio sets TCP_NODELAY on accepted connections: without it, a small
        # answer written as headers + body waits ~40 ms for the client's delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._closing.clear()
        config = uvicorn.Config(
            SimulatorApp(self.state, closing=self._closing),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            timeout_graceful_shutdown=2,
            server_header=False,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="simulator-http", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError("the simulator did not start")
            time.sleep(0.005)
        if self.live is not None:
            self.live.start()
        return self

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
        self._closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run_simulator(*, host: str, port: int, api_key: str, seed_posts: int, live: bool) -> int:
    """Serve the simulator until Ctrl-C or SIGTERM; print where it listens and the key it accepts."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    server = SimulatorServer(api_key, host=host, port=port, seed_posts=seed_posts, live=live)
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        print(f"notifier simulate: cannot listen on {host}:{port}: {exc}")
        return 1
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"Simulated Genviral Partner API: {server.base_url}", flush=True)
        print(f"API key (Bearer): {api_key}", flush=True)
        print(f"Control surface: {server.url}/_sim (see docs/simulator.md)", flush=True)
        if live:
            print(f"Live mode: posts change every {server.live.interval if server.live else 0:g} s", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    print("Simulator stopped.", flush=True)
    return 0
