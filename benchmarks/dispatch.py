"""Dispatch throughput: notifications per second through the whole dispatcher, against raw HTTP POSTs.

Runs a real Redis (EmbeddedRedis, no persistence) and a local HTTP receiver in a child process, then:

1. raw: httpx.AsyncClient POSTs (keep-alive) to the receiver, the best of a few in-flight counts: the limit;
2. for 1, 10 and 100 subscriptions (each with its own ``json://`` URL on the receiver), publishes events on
   the stream as separate poll cycles and times the dispatcher (default options, real apprise parsing the
   URLs, the pooled json:// path sending) from the first event until every delivery is recorded as sent.

The raw rate is measured again just before each dispatch run and the ratio taken to that figure, so a change
in the machine's speed during the run (it is shared) moves both sides alike.

Also times the sender alone (AppriseSender, no Redis), once on the pooled path and once through apprise's own
``json://`` plugin, which opens a new connection per notification through ``requests`` in a worker thread.
Prints each rate and its ratio to the raw rate (target: >= 0.3).

    uv run python benchmarks/dispatch.py [--notifications 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import tempfile
import time
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from notifier.config import Settings
from notifier.dispatcher import Dispatcher
from notifier.metrics import Metrics
from notifier.models import Event, PostRef, Subscription
from notifier.senders.apprise_sender import AppriseSender, Outgoing
from notifier.store.embedded import EmbeddedRedis
from notifier.store.events import event_fields
from notifier.store.keys import Keys
from notifier.store.subscriptions import encode_subscription

#: In-flight counts tried for the raw rate; the best one is the limit (httpx's pool slows down with many).
RAW_CONCURRENCY = (4, 8, 16, 32)


# -- receiver (child process): a minimal keep-alive HTTP/1.1 server that answers 200 to everything ----------


class _Receiver(asyncio.Protocol):
    count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            close = False
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
                elif name.strip().lower() == "connection" and value.strip().lower() == "close":
                    close = True
            if len(self.buffer) < head_end + 4 + length:
                return
            self.buffer = self.buffer[head_end + 4 + length :]
            if head.startswith("GET /count"):
                body = str(_Receiver.count).encode()
            else:
                _Receiver.count += 1
                body = b""
            self.transport.write(  # type: ignore[attr-defined]
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s"
                % (len(body), b"Connection: close\r\n" if close else b"", body)
            )
            if close:
                self.transport.close()
                return


def _serve(sock: socket.socket) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Receiver, sock=sock, backlog=1024)
        await server.serve_forever()

    asyncio.run(main())


# -- measurements ---------------------------------------------------------------------------------------


async def raw_rate(port: int, total: int, concurrency: int, *, keep_alive: bool = True) -> float:
    body = json.dumps({"version": "1.0", "title": "t" * 40, "message": "m" * 300, "type": "info"}).encode()
    kept = concurrency if keep_alive else 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=kept)
    async with httpx.AsyncClient(limits=limits) as client:
        remaining = total

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                r = await client.post(f"http://127.0.0.1:{port}/raw", content=body)
                r.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


async def sender_rate(port: int, total: int, concurrency: int, *, pooled: bool) -> float:
    """The sender alone, no Redis, no dispatcher: the pooled path, or apprise's json:// plugin."""
    sender = AppriseSender(max_workers=concurrency, pooled_http=pooled)
    message = Outgoing(
        url=f"json://127.0.0.1:{port}/sender", title="t" * 40, body="m" * 300, level="info", message_id="m", data=b"{}"
    )
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            if not (await sender.send(message, time_limit=10)).ok:
                raise RuntimeError("the receiver refused a notification")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await sender.aclose()
    return total / elapsed


def _event(i: int) -> Event:
    return Event(
        id=f"evt_{i}",
        type="post.failed",
        detected_at="2025-03-01T12:00:00.000Z",
        scope="ws_bench",
        post=PostRef(
            id=f"post_{i}",
            caption="Benchmark caption of a reasonable length for a social post, with a few words",
            status="failed",
            scheduled_at="2025-03-01T11:00:00.000Z",
            created_at="2025-03-01T10:00:00.000Z",
            media_type="video",
            account_ids=["acc_1"],
            platforms=["tiktok"],
        ),
        previous={"status": "scheduled"},
        current={"status": "failed", "error_message": "Token expired"},
    )


async def dispatch_rate(redis_url: str, port: int, subscriptions: int, notifications: int, run: int) -> float:
    client = aioredis.Redis.from_url(redis_url)
    keys = Keys(f"bench{run}:")
    events = max(1, notifications // subscriptions)
    total = events * subscriptions
    for i in range(subscriptions):
        sub = Subscription(id=f"s{i}", name=f"bench {i}", urls=[f"json://127.0.0.1:{port}/sub/{i}"], events=["*"])
        await client.hset(keys.subscriptions, sub.id, encode_subscription(sub))
    metrics = Metrics.create()
    dispatcher = Dispatcher(client, keys, Settings(), metrics, consumer="bench")
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await asyncio.sleep(0.5)  # group created, loops idle
    started = time.perf_counter()
    async with client.pipeline(transaction=False) as pipe:
        for i in range(events):
            pipe.xadd(keys.events, event_fields(_event(i), batch=f"cycle{i}"))
        await pipe.execute()
    while (metrics.registry.get_sample_value("notifier_notifications_total", {"result": "sent"}) or 0) < total:
        failed = metrics.registry.get_sample_value("notifier_notifications_total", {"result": "retry"}) or 0
        if failed:
            raise RuntimeError(f"{failed:.0f} notifications failed during the benchmark")
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    await client.aclose()
    return total / elapsed


async def best_raw(port: int, total: int, concurrencies: tuple[int, ...], *, verbose: bool = False) -> float:
    rates = {c: await raw_rate(port, total, c) for c in concurrencies}
    best = max(rates, key=lambda c: rates[c])
    if verbose:
        tried = ", ".join(f"{c}: {r:.0f}" for c, r in rates.items())
        print(f"raw httpx POSTs:                {rates[best]:8.0f} /s  (keep-alive, {best} in flight; tried {tried})")
    return rates[best]


async def main(notifications: int, raw_total: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)  # connections wait in the backlog until the child serves them
    port = sock.getsockname()[1]
    receiver = multiprocessing.get_context("spawn").Process(target=_serve, args=(sock,), daemon=True)
    receiver.start()
    sock.close()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), persist=False).start()
        try:
            await raw_rate(port, 200, 4)  # warm-up
            raw = await best_raw(port, raw_total, RAW_CONCURRENCY, verbose=True)
            fresh = await raw_rate(port, raw_total // 2, 4, keep_alive=False)
            print(f"raw httpx, new connection each: {fresh:8.0f} /s  ratio {fresh / raw:.2f}")
            alone = max([await sender_rate(port, raw_total // 2, c, pooled=True) for c in (4, 64)])
            print(f"sender alone, pooled json://:   {alone:8.0f} /s  ratio {alone / raw:.2f}  (no Redis, no dispatch)")
            plugin = max([await sender_rate(port, raw_total // 2, c, pooled=False) for c in (4, 64)])
            print(f"sender alone, apprise's plugin: {plugin:8.0f} /s  ratio {plugin / raw:.2f}  (new connection each)")
            for run, subs in enumerate((1, 10, 100)):
                raw = await best_raw(port, raw_total, (4, 8))
                rate = await dispatch_rate(server.url, port, subs, notifications, run)
                print(
                    f"dispatch, {subs:3d} subscription(s):   {rate:8.0f} /s  ratio to raw {rate / raw:.2f}"
                    f"  (raw just before: {raw:.0f} /s)"
                )
        finally:
            server.stop()
            receiver.terminate()
            receiver.join()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notifications", type=int, default=3000, help="notifications per dispatch run")
    parser.add_argument("--raw", type=int, default=3000, help="raw POSTs to time per in-flight count")
    args = parser.parse_args()
    asyncio.run(main(args.notifications, args.raw))
