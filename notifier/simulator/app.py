"""The simulator's HTTP face: a plain ASGI app serving the Partner API and the ``/_sim`` control surface.

Owns: ``SimulatorApp`` — routing of ``/api/partner/v1/...`` (request counting, injected faults with their
delay and ``Retry-After``, then ``partner.answer``) and of ``/_sim/...`` (``control.handle``, no auth), JSON
encoding, and waking delayed requests when the server closes. A plain ASGI callable keeps every byte of every
answer (404s of unknown paths included) under the simulator's control.

Must not import: httpx, redis, apprise, litestar, or any notifier module outside ``notifier.simulator``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from notifier.simulator import control, partner
from notifier.simulator.partner import Reply, error
from notifier.simulator.state import SimState

PREFIX = "/api/partner/v1"
CONTROL_PREFIX = "/_sim"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class SimulatorApp:
    """ASGI app over ``state``. Setting ``closing`` releases requests sleeping in an injected delay."""

    def __init__(self, state: SimState, *, closing: threading.Event | None = None) -> None:
        self.state = state
        self.closing = closing or threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        query = _query(scope.get("query_string", b""))
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            body = await _read_body(receive)
            reply = control.handle(self.state, method, path[len(CONTROL_PREFIX) :] or "/", query, body)
        elif path.startswith(PREFIX + "/"):
            reply = await self._partner(scope, method, path, query)
        else:
            reply = error(404, "Not found", "not_found")
        await _send(send, reply, head=method == "HEAD")

    async def _partner(self, scope: Scope, method: str, path: str, query: dict[str, str]) -> Reply:
        found = partner.route(path[len(PREFIX) :])
        if found is None:
            return error(404, "Not found", "not_found")
        if method not in ("GET", "HEAD"):
            return error(405, "Method not allowed", "method_not_allowed", (("allow", "GET"),))
        endpoint, path_id = found
        entry = self.state.log.record(endpoint, path, query)
        fault = self.state.faults.take(endpoint)
        if fault is not None and fault.delay > 0:
            await self._sleep(fault.delay)
        if fault is not None and fault.status is not None:
            reply = partner.fault_reply(fault)
        else:
            reply = partner.answer(self.state, endpoint, _bearer(scope), query, path_id)
        self.state.log.finish(entry, reply.status)
        return reply

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.closing.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.05))


def _query(raw: bytes) -> dict[str, str]:
    """Query parameters; a repeated name keeps its first value (as ``URLSearchParams.get`` does)."""
    out: dict[str, str] = {}
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        out.setdefault(name, value)
    return out


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send: Send, reply: Reply, *, head: bool = False) -> None:
    if reply.status == 204:
        payload, kind = b"", b""
    elif isinstance(reply.body, str):
        payload = reply.body.encode()
        kind = b"text/html; charset=utf-8" if reply.body.lstrip().startswith("<") else b"text/plain; charset=utf-8"
    else:
        payload, kind = msgspec.json.encode(reply.body), b"application/json"
    headers = [(b"content-length", str(len(payload)).encode())]
    if kind:
        headers.append((b"content-type", kind))
    headers.extend((name.encode(), value.encode()) for name, value in reply.headers)
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
