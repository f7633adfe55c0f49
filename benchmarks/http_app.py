"""HTTP throughput of the app on loopback, against a bare Litestar hello-world served the same way.

Both servers run in child processes under uvicorn (one worker, same options); the app has a real Redis
(EmbeddedRedis, no persistence) holding 100 subscriptions. A small keep-alive HTTP/1.1 load generator (raw
asyncio streams, much lighter than an HTTP client library, so the generator is not the limit) drives
``--connections`` connections for ``--seconds`` per target, in ``--rounds`` interleaved rounds (so a burst of
load from elsewhere on the machine hits every target alike), and prints for each target its best round's
requests/s, that round's latency percentiles, and the ratio to hello-world's best.
Target: GET /subscriptions >= 0.5 of hello-world.

    uv run python benchmarks/http_app.py [--seconds 3] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

TOKEN = "bench-admin-token"
ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------------ servers


def _serve(app: object, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")


def serve_hello(port: int) -> None:
    from litestar import Litestar, get

    @get("/", sync_to_thread=False)
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    _serve(Litestar([hello], logging_config=None, debug=False), port)


def serve_app(port: int, redis_url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    from notifier.api import AppDeps, create_app
    from notifier.config import Settings
    from notifier.metrics import Metrics
    from notifier.store.deliveries import DeliveryStore
    from notifier.store.keys import Keys
    from notifier.store.snapshots import SnapshotStore
    from notifier.store.subscriptions import SubscriptionStore

    redis = aioredis.Redis.from_url(redis_url)
    keys = Keys(prefix)
    settings = Settings(admin_token=TOKEN, genviral_api_key="bench-key", key_prefix=prefix, redis_url=redis_url)
    deps = AppDeps(
        redis=redis,
        keys=keys,
        settings=settings,
        metrics=Metrics.create(),
        subscriptions=SubscriptionStore(redis, keys),
        deliveries=DeliveryStore(redis, keys),
        snapshots=SnapshotStore(redis, keys),
    )
    deps.readiness.running()
    app = create_app(deps)
    app.on_shutdown.append(redis.aclose)
    _serve(app, port)


def start_server(args: list[str], port: int) -> subprocess.Popen[bytes]:
    import httpx

    proc = subprocess.Popen([sys.executable, __file__, "--serve", *args, "--port", str(port)], cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0)
            return proc
        except httpx.TransportError:
            if proc.poll() is not None:
                raise RuntimeError(f"server {args[0]} exited with {proc.returncode}") from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server {args[0]} did not start")


# ------------------------------------------------------------------------------------------------ load


async def _one_connection(port: int, request: bytes, until: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise RuntimeError("response without content-length")
            await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"unexpected status {status}")
            latencies.append(time.perf_counter() - started)
            done += 1
    finally:
        writer.close()
        await writer.wait_closed()
    return done


async def load(port: int, path: str, *, seconds: float, connections: int, auth: bool) -> tuple[float, list[float]]:
    headers = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: bench\r\nAccept: */*\r\n"
    if auth:
        headers += f"Authorization: Bearer {TOKEN}\r\n"
    request = (headers + "\r\n").encode()
    warm: list[float] = []
    await asyncio.gather(*(_one_connection(port, request, time.perf_counter() + 0.5, warm) for _ in range(connections)))
    latencies: list[float] = []
    started = time.perf_counter()
    until = started + seconds
    counts = await asyncio.gather(*(_one_connection(port, request, until, latencies) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return sum(counts) / elapsed, latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


# ------------------------------------------------------------------------------------------------ main


async def seed(redis_url: str, prefix: str, n: int) -> None:
    import redis.asyncio as aioredis

    from notifier.models import SubscriptionInput
    from notifier.store.keys import Keys
    from notifier.store.subscriptions import SubscriptionStore

    client = aioredis.Redis.from_url(redis_url)
    store = SubscriptionStore(client, Keys(prefix))
    try:
        for i in range(n):
            urls = [f"slack://T{i:08d}/B{i:08d}/XXXXXXXXXXXX{i:04d}", f"json://hooks.example.com/n/{i}?token=t{i}"]
            await store.create(
                SubscriptionInput(name=f"subscription {i}", urls=urls, events=["post.failed", "delivery.failed"]),
                now=datetime.now(UTC),
            )
    finally:
        await client.aclose()


def free_port() -> int:
    from notifier.store.embedded import free_port as free

    return free()


def _unshadow_stdlib_http() -> None:
    """This file is named http.py: drop its directory from sys.path so ``import http`` finds the stdlib."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]


def main() -> int:
    _unshadow_stdlib_http()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        if args.serve[0] == "hello":
            serve_hello(args.port)
        else:
            serve_app(args.port, args.serve[1], args.serve[2])
        return 0

    from notifier.store.embedded import EmbeddedRedis

    prefix = "bench:"
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), persist=False) as redis:
        asyncio.run(seed(redis.url, prefix, args.subscriptions))
        hello_port, app_port = free_port(), free_port()
        servers = [
            start_server(["hello"], hello_port),
            start_server(["app", redis.url, prefix], app_port),
        ]
        try:
            targets = [
                ("hello-world GET /", hello_port, "/", False),
                ("GET /healthz", app_port, "/healthz", False),
                ("GET /metrics", app_port, "/metrics", False),
                ("GET /subscriptions (50 of 100)", app_port, "/subscriptions", True),
                ("GET /subscriptions?limit=100", app_port, "/subscriptions?limit=100", True),
            ]
            print(
                f"loopback, {args.connections} keep-alive connections, {args.rounds} rounds of {args.seconds:g} s "
                f"per target, {os.cpu_count()} CPUs; one uvicorn worker per server\n"
            )
            best: dict[str, tuple[float, list[float]]] = {}
            for _ in range(args.rounds):
                for label, port, path, auth in targets:
                    rate, latencies = asyncio.run(
                        load(port, path, seconds=args.seconds, connections=args.connections, auth=auth)
                    )
                    if label not in best or rate > best[label][0]:
                        best[label] = (rate, latencies)
            base = best[targets[0][0]][0]
            print(f"{'target':<34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs hello':>10}")
            for label, *_ in targets:
                rate, latencies = best[label]
                print(
                    f"{label:<34}{rate:>10.0f}{pct(latencies, 0.5):>9.2f}{pct(latencies, 0.99):>9.2f}"
                    f"{rate / base:>10.2f}"
                )
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait(10)
    print("\ntarget: GET /subscriptions >= 0.50 of hello-world")
    return 0


if __name__ == "__main__":
    sys.exit(main())
